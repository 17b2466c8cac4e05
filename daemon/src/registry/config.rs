//! `[registry]`: where the strategy registry lives. `files` (the default) keeps it under
//! `registry_dir`; `postgres` keeps it in a PostgreSQL database that several servers'
//! daemons can share (issue 27).
//!
//! The database's password never sits in the URL (which is printed, in errors and by
//! `--check-config`): it comes from `password_file` (0600), else from the systemd
//! credential `memd-registry-password` (`LoadCredential=`), else there is none (peer or
//! trust authentication, or the server's own `.pgpass`).

use crate::alerts::config::Secret;
use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The systemd credential holding the database's password, if `password_file` is not set.
pub const PASSWORD_CREDENTIAL: &str = "memd-registry-password";

/// `[registry]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default)]
    pub backend: BackendName,
    /// `postgres://user@host:port/database` (no password).
    pub url: Option<String>,
    pub password_file: Option<PathBuf>,
    /// This server's name in the shared registry's audit (default: the host name).
    pub server: Option<String>,
}

/// `[registry] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    #[default]
    Files,
    Postgres,
}

/// Where the registry lives, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// Files under `registry_dir`.
    Files,
    Postgres(PostgresSettings),
}

/// A PostgreSQL registry: the URL without a password, the password apart.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresSettings {
    pub url: String,
    pub password: Option<Secret>,
    /// This server's name in the audit.
    pub server: String,
}

impl RegistryConfig {
    /// Checks the section; `credentials` is systemd's `$CREDENTIALS_DIRECTORY`, if set.
    pub fn backend(&self, credentials: Option<&Path>) -> anyhow::Result<Backend> {
        match self.backend {
            BackendName::Files => {
                if self.url.is_some() || self.password_file.is_some() {
                    bail!(
                        "[registry] url and password_file are for backend = \"postgres\"; the backend is files"
                    );
                }
                Ok(Backend::Files)
            }
            BackendName::Postgres => {
                let url = self
                    .url
                    .clone()
                    .context("[registry] backend = \"postgres\" needs url = \"postgres://USER@HOST:PORT/DATABASE\"")?;
                check_url(&url)?;
                let password = match &self.password_file {
                    Some(file) => Some(read_password(file)?),
                    None => match credentials.map(|d| d.join(PASSWORD_CREDENTIAL)) {
                        Some(file) if file.exists() => Some(read_password(&file)?),
                        _ => None,
                    },
                };
                let server = match &self.server {
                    Some(name) if name.trim().is_empty() => {
                        bail!(
                            "[registry] server is empty: name this server, or leave it out for the host name"
                        )
                    }
                    Some(name) => name.trim().to_string(),
                    None => sysinfo::System::host_name()
                        .ok()
                        .unwrap_or_else(|| "memd".into()),
                };
                Ok(Backend::Postgres(PostgresSettings {
                    url,
                    password,
                    server,
                }))
            }
        }
    }
}

/// A `postgres://` (or `postgresql://`) URL with no password in it.
fn check_url(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"));
    let Some(rest) = rest else {
        bail!(
            "[registry] url must start with postgres://, not {:?}",
            scheme_of(url)
        );
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((user_info, _)) = authority.rsplit_once('@')
        && user_info.contains(':')
    {
        bail!(
            "[registry] url has a password in it: move it to password_file (0600) or the systemd credential {PASSWORD_CREDENTIAL}, and write the url as postgres://USER@HOST..."
        );
    }
    if url.contains("password=") {
        bail!(
            "[registry] url has a password parameter: move it to password_file (0600) or the systemd credential {PASSWORD_CREDENTIAL}"
        );
    }
    Ok(())
}

/// What comes before `://`, for the message (never the rest, which may hold a secret).
fn scheme_of(url: &str) -> &str {
    url.split_once("://")
        .map_or("(no scheme)", |(scheme, _)| scheme)
}

fn read_password(file: &Path) -> anyhow::Result<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let what = || format!("[registry] password_file {}", file.display());
    let meta = std::fs::metadata(file).with_context(what)?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!("{} is readable by others: chmod 600 it", what());
    }
    let text = std::fs::read_to_string(file).with_context(what)?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("{} is empty", what());
    }
    Ok(Secret::new(password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn parse(text: &str) -> RegistryConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn files_by_default_and_postgres_with_a_url_and_a_password_file() {
        assert_eq!(
            RegistryConfig::default().backend(None).unwrap(),
            Backend::Files
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pg-password");
        std::fs::write(&file, "s3cret-pw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = parse(&format!(
            "backend = \"postgres\"\nurl = \"postgres://memd@db.internal:5432/registry\"\npassword_file = \"{}\"\nserver = \"trader-01\"",
            file.display()
        ));
        let Backend::Postgres(pg) = config.backend(None).unwrap() else {
            panic!("postgres")
        };
        assert_eq!(pg.url, "postgres://memd@db.internal:5432/registry");
        assert_eq!(pg.password.as_ref().map(Secret::expose), Some("s3cret-pw"));
        assert_eq!(pg.server, "trader-01");
        assert!(!format!("{pg:?}").contains("s3cret"), "{pg:?}");

        // Without password_file: the systemd credential, if there is one.
        let config = parse("backend = \"postgres\"\nurl = \"postgres://memd@db/registry\"");
        let Backend::Postgres(pg) = config.backend(None).unwrap() else {
            panic!("postgres")
        };
        assert!(pg.password.is_none() && !pg.server.is_empty());
        std::fs::copy(&file, dir.path().join(PASSWORD_CREDENTIAL)).unwrap();
        let Backend::Postgres(pg) = config.backend(Some(dir.path())).unwrap() else {
            panic!("postgres")
        };
        assert_eq!(pg.password.as_ref().map(Secret::expose), Some("s3cret-pw"));
    }

    #[test]
    fn bad_sections_are_refused_naming_what_to_change_and_no_secret() {
        let refused = |text: &str| parse(text).backend(None).expect_err(text).to_string();
        let e = refused("backend = \"postgres\"");
        assert!(e.contains("needs url"), "{e}");
        let e = refused("backend = \"postgres\"\nurl = \"postgres://memd:hunter2@db/registry\"");
        assert!(
            e.contains("password in it") && !e.contains("hunter2"),
            "{e}"
        );
        let e = refused(
            "backend = \"postgres\"\nurl = \"postgres://memd@db/registry?password=hunter2\"",
        );
        assert!(
            e.contains("password parameter") && !e.contains("hunter2"),
            "{e}"
        );
        let e = refused("backend = \"postgres\"\nurl = \"mysql://memd:hunter2@db/registry\"");
        assert!(e.contains("postgres://") && !e.contains("hunter2"), "{e}");
        let e = refused("url = \"postgres://memd@db/registry\"");
        assert!(e.contains("backend = \"postgres\""), "{e}");
        let e = refused("backend = \"postgres\"\nurl = \"postgres://memd@db/r\"\nserver = \" \"");
        assert!(e.contains("server is empty"), "{e}");
        assert!(toml::from_str::<RegistryConfig>("backend = \"mongo\"").is_err());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pg-password");
        std::fs::write(&file, "hunter2").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "backend = \"postgres\"\nurl = \"postgres://memd@db/registry\"\npassword_file = \"{}\"",
            file.display()
        );
        let e = refused(&text);
        assert!(
            e.contains("readable by others") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
