//! The fleet: the servers memctl knows, by name (`~/.config/memctl/fleet.toml`).
//!
//! Each server is a name and either an SSH destination (reached through `ssh -T DEST
//! memctl bridge`, see `mem_protocol::ssh`) or a socket on this machine. `memctl server
//! add|remove|list` edit and read the file; `--server NAME` picks one for any command,
//! `--server all` every one for the read-only commands. The file is written whole to a
//! temporary file and renamed, so a crash never leaves half of it.

use anyhow::{Context, bail};
use mem_protocol::Endpoint;
use mem_protocol::ssh::SshEndpoint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `fleet.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// In the order they were added: the order of every list and of the TUI's rows.
    #[serde(default, rename = "server")]
    pub servers: Vec<Server>,
}

/// One server of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: String,
    /// `user@host` or a `Host` of `~/.ssh/config`; absent for a daemon on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// memd's socket: on the server for SSH (default: the bridge's default there), here
    /// otherwise (default: this user's daemon's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Extra arguments for `ssh` (`["-p", "2222"]`, `["-F", "/path/ssh_config"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_options: Vec<String>,
    /// The command that runs memctl on the server (default `memctl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memctl: Option<String>,
}

impl Server {
    /// Where this server's daemon is reached.
    pub fn endpoint(&self) -> Endpoint {
        match &self.ssh {
            Some(destination) => Endpoint::Ssh(SshEndpoint {
                destination: destination.clone(),
                socket: self.socket.clone(),
                ssh_options: self.ssh_options.clone(),
                remote_memctl: self.memctl.clone(),
            }),
            None => Endpoint::Socket(
                self.socket
                    .clone()
                    .unwrap_or_else(mem_protocol::paths::default_client_socket),
            ),
        }
    }
}

/// A failed connection in the words the fleet's lists use: "authentication refused",
/// "memd not running there", "protocol version differs ...".
pub fn connection_state(error: &mem_protocol::ClientError) -> String {
    use mem_protocol::ClientError;
    match error {
        ClientError::Ssh {
            failure, detail, ..
        } if detail.is_empty() => failure.to_string(),
        ClientError::Ssh {
            failure, detail, ..
        } => format!("{failure}: {detail}"),
        ClientError::ProtocolVersion { server, client } => {
            format!("protocol version differs (memd {server}, memctl {client})")
        }
        other => other.to_string(),
    }
}

/// A name that reads well in a column and cannot be mistaken for a flag or `all`.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name == "all" {
        bail!("`all` means every server (`--server all`); choose another name");
    }
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        bail!(
            "bad server name {name:?}: use up to 32 letters, digits, '-', '_' or '.', not starting with '-'"
        );
    }
    Ok(())
}

/// Where the fleet is kept: `$XDG_CONFIG_HOME/memctl/fleet.toml`, else
/// `~/.config/memctl/fleet.toml`.
pub fn path() -> Option<PathBuf> {
    crate::config_dir().map(|d| d.join("fleet.toml"))
}

impl Fleet {
    /// The fleet at [`path`]; empty when there is no file yet.
    pub fn load() -> anyhow::Result<Fleet> {
        match path() {
            Some(path) => Fleet::load_from(&path),
            None => Ok(Fleet::default()),
        }
    }

    pub fn load_from(path: &Path) -> anyhow::Result<Fleet> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fleet::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let fleet: Fleet =
            toml::from_str(&text).with_context(|| format!("bad fleet file {}", path.display()))?;
        let mut seen = std::collections::HashSet::new();
        for server in &fleet.servers {
            check_name(&server.name).with_context(|| format!("in {}", path.display()))?;
            if !seen.insert(&server.name) {
                bail!(
                    "{}: server {:?} is listed twice",
                    path.display(),
                    server.name
                );
            }
        }
        Ok(fleet)
    }

    /// Writes the fleet to `path` (temporary file, fsync, rename).
    pub fn save_to(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().context("the fleet file has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let text = format!(
            "# memctl's servers: `memctl server add|remove|list`; see docs/fleet.md.\n{}",
            toml::to_string(self)?
        );
        let tmp = path.with_extension("toml.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        Ok(())
    }

    pub fn get(&self, name: &str) -> anyhow::Result<&Server> {
        self.servers.iter().find(|s| s.name == name).with_context(|| {
            let known: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
            if known.is_empty() {
                format!("no server {name:?}: none is known yet (`memctl server add NAME SSH-DESTINATION`)")
            } else {
                format!("no server {name:?}; known: {}", known.join(", "))
            }
        })
    }

    /// Adds `server`, or replaces the one of the same name.
    pub fn add(&mut self, server: Server) -> anyhow::Result<()> {
        check_name(&server.name)?;
        if server.ssh.is_none() && server.socket.is_none() {
            bail!(
                "server {:?} needs an SSH destination or --socket",
                server.name
            );
        }
        match self.servers.iter_mut().find(|s| s.name == server.name) {
            Some(existing) => *existing = server,
            None => self.servers.push(server),
        }
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> anyhow::Result<Server> {
        self.get(name)?;
        let at = self
            .servers
            .iter()
            .position(|s| s.name == name)
            .expect("found above");
        Ok(self.servers.remove(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(name: &str, dest: &str) -> Server {
        Server {
            name: name.into(),
            ssh: Some(dest.into()),
            socket: None,
            ssh_options: vec![],
            memctl: None,
        }
    }

    #[test]
    fn servers_are_added_replaced_removed_and_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memctl/fleet.toml");
        let mut fleet = Fleet::load_from(&path).unwrap();
        assert!(fleet.servers.is_empty());
        fleet.add(ssh("web2", "trader@web2")).unwrap();
        fleet.add(ssh("web1", "trader@web1")).unwrap();
        fleet
            .add(Server {
                socket: Some("/run/memd/memd.sock".into()),
                ..ssh("web2", "root@web2")
            })
            .unwrap();
        fleet.save_to(&path).unwrap();
        let again = Fleet::load_from(&path).unwrap();
        assert_eq!(again, fleet);
        assert_eq!(again.servers[0].ssh.as_deref(), Some("root@web2"));
        assert_eq!(again.servers[1].name, "web1");
        assert!(
            matches!(again.get("web2").unwrap().endpoint(), Endpoint::Ssh(s) if s.socket.is_some())
        );
        let err = again.get("db").unwrap_err().to_string();
        assert!(err.contains("known: web2, web1"), "{err}");
        fleet.remove("web2").unwrap();
        assert_eq!(fleet.servers.len(), 1);
    }

    #[test]
    fn bad_names_and_servers_without_a_way_in_are_refused() {
        let mut fleet = Fleet::default();
        for bad in ["all", "", "-x", "a b", "x/y"] {
            assert!(fleet.add(ssh(bad, "h")).is_err(), "{bad:?}");
        }
        let mut nowhere = ssh("n", "h");
        nowhere.ssh = None;
        assert!(fleet.add(nowhere).is_err());
    }

    #[test]
    fn a_fleet_file_naming_a_server_twice_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.toml");
        std::fs::write(
            &path,
            "[[server]]\nname = \"a\"\nssh = \"h\"\n[[server]]\nname = \"a\"\nssh = \"g\"\n",
        )
        .unwrap();
        let err = format!("{:#}", Fleet::load_from(&path).unwrap_err());
        assert!(err.contains("\"a\" is listed twice"), "{err}");
    }
}
