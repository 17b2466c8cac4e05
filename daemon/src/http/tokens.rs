//! The HTTP API's bearer tokens: one control token made on first start, and view-only
//! tokens issued for dashboards; and the TradingView webhook's secret (TradingView sends
//! no headers: the secret is in the alert's body or URL), made on first start too, or
//! added to an older file that has none. They live in `{data_dir}/http/tokens.json`
//! (0600, its directory 0700); memd never logs them.

use crate::datadir;
use anyhow::Context;
use chrono::{DateTime, Utc};
use mem_protocol::methods::Access;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use subtle::ConstantTimeEq;

/// 256 bits, hex.
const TOKEN_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    control: String,
    #[serde(default)]
    view: Vec<ViewToken>,
    /// The TradingView webhook's secret (absent in files of older versions: made then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    /// The webhook's secret before its last rotation, still accepted until its time (the
    /// grace period for the alerts that carry it to be changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_previous: Option<PreviousSecret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewToken {
    token: String,
    issued_at: DateTime<Utc>,
    /// How `memctl http token list|rotate|revoke` names it (files of older versions have
    /// none: `view-N` by its place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviousSecret {
    secret: String,
    until: DateTime<Utc>,
}

/// One credential as `http.tokens.list` shows it: never its value.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEntry {
    pub name: String,
    /// `control`, `view` or `webhook`.
    pub scope: &'static str,
    pub issued_at: Option<DateTime<Utc>>,
    /// The webhook's previous secret is accepted until then.
    pub previous_until: Option<DateTime<Utc>>,
}

/// The names that are not view tokens'.
const CONTROL: &str = "control";
const WEBHOOK: &str = "webhook";

impl ViewToken {
    fn name(&self, place: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("view-{}", place + 1))
    }
}

/// The tokens, as the file holds them.
pub struct Tokens {
    path: PathBuf,
    file: RwLock<TokensFile>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens {{ path: {:?}, <redacted> }}", self.path)
    }
}

impl Tokens {
    /// Reads `data_dir/http/tokens.json`, making it (with a new control token) if absent.
    pub fn open(data_dir: &Path) -> anyhow::Result<Tokens> {
        let dir = data_dir.join("http");
        datadir::ensure_dir(&dir, 0o700)?;
        let path = dir.join("tokens.json");
        let mut file: TokensFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a tokens file (remove it to make a new control token)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let file = TokensFile {
                    control: crate::freqtrade::random_hex(TOKEN_BYTES),
                    view: Vec::new(),
                    webhook: Some(crate::freqtrade::random_hex(TOKEN_BYTES)),
                    webhook_previous: None,
                };
                write(&path, &file)?;
                tracing::info!(file = %path.display(), "made the HTTP API's control token and webhook secret (memctl http token [--webhook] shows them)");
                file
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
                );
            }
        };
        if file.webhook.is_none() {
            file.webhook = Some(crate::freqtrade::random_hex(TOKEN_BYTES));
            write(&path, &file)?;
            tracing::info!(file = %path.display(), "made the TradingView webhook's secret (memctl http token --webhook shows it)");
        }
        Ok(Tokens {
            path,
            file: RwLock::new(file),
        })
    }

    /// The access a presented token grants, if any (compared in constant time).
    pub fn access_of(&self, presented: &str) -> Option<Access> {
        let file = self.file.read().expect("tokens lock");
        let matches = |known: &str| bool::from(known.as_bytes().ct_eq(presented.as_bytes()));
        if matches(&file.control) {
            return Some(Access::Control);
        }
        file.view
            .iter()
            .any(|v| matches(&v.token))
            .then_some(Access::View)
    }

    /// The control token.
    pub fn control(&self) -> String {
        self.file.read().expect("tokens lock").control.clone()
    }

    /// The TradingView webhook's secret.
    pub fn webhook_secret(&self) -> String {
        self.file
            .read()
            .expect("tokens lock")
            .webhook
            .clone()
            .expect("made when the file is opened")
    }

    /// Whether a presented secret is the webhook's, or its previous one within the grace
    /// period of its rotation (compared in constant time).
    pub fn is_webhook_secret(&self, presented: &str) -> bool {
        let file = self.file.read().expect("tokens lock");
        let matches = |known: &str| bool::from(known.as_bytes().ct_eq(presented.as_bytes()));
        let previous = file
            .webhook_previous
            .as_ref()
            .is_some_and(|p| Utc::now() < p.until && matches(&p.secret));
        file.webhook.as_deref().is_some_and(matches) | previous
    }

    /// A new view-only token named `name` (default `view-N`), saved before it is answered.
    pub fn issue_view(&self, name: Option<&str>) -> anyhow::Result<String> {
        self.change(|file| {
            let name = match name {
                Some(name) => name.to_string(),
                None => (file.view.len() + 1..)
                    .map(|n| format!("view-{n}"))
                    .find(|n| !names(file).contains(n))
                    .expect("a free name"),
            };
            if name.is_empty() || name == CONTROL || name == WEBHOOK || names(file).contains(&name)
            {
                anyhow::bail!("a token is already named {name:?} (memctl http token list)");
            }
            let token = crate::freqtrade::random_hex(TOKEN_BYTES);
            file.view.push(ViewToken {
                token: token.clone(),
                issued_at: Utc::now(),
                name: Some(name),
            });
            Ok(token)
        })
    }

    /// Every credential's name and scope, never a value.
    pub fn list(&self) -> Vec<TokenEntry> {
        let file = self.file.read().expect("tokens lock");
        let mut out = vec![TokenEntry {
            name: CONTROL.into(),
            scope: CONTROL,
            issued_at: None,
            previous_until: None,
        }];
        out.extend(file.view.iter().enumerate().map(|(i, v)| TokenEntry {
            name: v.name(i),
            scope: "view",
            issued_at: Some(v.issued_at),
            previous_until: None,
        }));
        out.push(TokenEntry {
            name: WEBHOOK.into(),
            scope: WEBHOOK,
            issued_at: None,
            previous_until: file
                .webhook_previous
                .as_ref()
                .map(|p| p.until)
                .filter(|until| Utc::now() < *until),
        });
        out
    }

    /// A new value for the credential `name` (`control`, `webhook` or a view token's),
    /// saved before it is answered: the old one is refused from then on, but the webhook's,
    /// accepted `grace` longer. Answers the new value and the scope.
    pub fn rotate(
        &self,
        name: &str,
        grace: chrono::Duration,
    ) -> anyhow::Result<(String, &'static str)> {
        self.change(|file| {
            let fresh = crate::freqtrade::random_hex(TOKEN_BYTES);
            let scope = match name {
                CONTROL => {
                    file.control = fresh.clone();
                    CONTROL
                }
                WEBHOOK => {
                    let old = file.webhook.replace(fresh.clone());
                    file.webhook_previous = old.map(|secret| PreviousSecret {
                        secret,
                        until: Utc::now() + grace,
                    });
                    WEBHOOK
                }
                view => {
                    let place = view_place(file, view)?;
                    file.view[place].token = fresh.clone();
                    file.view[place].issued_at = Utc::now();
                    "view"
                }
            };
            Ok((fresh, scope))
        })
    }

    /// Removes the view token `name`: refused from now on. The control token and the
    /// webhook's secret can only be rotated.
    pub fn revoke(&self, name: &str) -> anyhow::Result<()> {
        if name == CONTROL || name == WEBHOOK {
            anyhow::bail!(
                "the {name} credential cannot be revoked, only rotated (memctl http token rotate {name})"
            );
        }
        self.change(|file| {
            let place = view_place(file, name)?;
            // The others keep the names they were listed by (an unnamed one's is its place).
            for (i, v) in file.view.iter_mut().enumerate() {
                v.name = Some(v.name(i));
            }
            file.view.remove(place);
            Ok(())
        })
    }

    /// Changes a copy of the file, saves it, then makes it the one answered.
    fn change<T>(&self, f: impl FnOnce(&mut TokensFile) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut file = self.file.write().expect("tokens lock");
        let mut next = file.clone();
        let answer = f(&mut next)?;
        write(&self.path, &next)?;
        *file = next;
        Ok(answer)
    }
}

fn names(file: &TokensFile) -> Vec<String> {
    file.view
        .iter()
        .enumerate()
        .map(|(i, v)| v.name(i))
        .collect()
}

fn view_place(file: &TokensFile, name: &str) -> anyhow::Result<usize> {
    names(file)
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| anyhow::anyhow!("no token is named {name:?} (memctl http token list)"))
}

fn write(path: &Path, file: &TokensFile) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(file).expect("tokens serialize");
    datadir::write_atomic(path, &bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_kept_private_and_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::open(dir.path()).unwrap();
        let control = tokens.control();
        assert_eq!(control.len(), 64);
        let view = tokens.issue_view(None).unwrap();
        assert_eq!(tokens.access_of(&control), Some(Access::Control));
        assert_eq!(tokens.access_of(&view), Some(Access::View));
        assert_eq!(tokens.access_of(""), None);
        assert_eq!(tokens.access_of(&control[..63]), None);
        let file = dir.path().join("http/tokens.json");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Tokens::open(dir.path()).unwrap();
        assert_eq!(again.control(), control);
        assert_eq!(again.access_of(&view), Some(Access::View));
        assert!(!format!("{again:?}").contains(&control));
        let secret = again.webhook_secret();
        assert_eq!(secret, tokens.webhook_secret(), "kept");
        assert_eq!(secret.len(), 64);
        assert!(again.is_webhook_secret(&secret));
        assert!(!again.is_webhook_secret(&secret[..63]) && !again.is_webhook_secret(""));
        assert_eq!(
            again.access_of(&secret),
            None,
            "the webhook secret is no bearer token"
        );
        assert!(!again.is_webhook_secret(&control));
    }

    #[test]
    fn an_older_file_gets_a_webhook_secret_and_keeps_its_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("http/tokens.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let control = "ab".repeat(32);
        std::fs::write(&file, format!(r#"{{"control": "{control}", "view": []}}"#)).unwrap();
        let tokens = Tokens::open(dir.path()).unwrap();
        assert_eq!(tokens.control(), control);
        let secret = tokens.webhook_secret();
        assert_eq!(secret.len(), 64);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(Tokens::open(dir.path()).unwrap().webhook_secret(), secret);
    }

    #[test]
    fn tokens_are_listed_by_name_rotated_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::open(dir.path()).unwrap();
        let control = tokens.control();
        let first = tokens.issue_view(None).unwrap();
        let board = tokens.issue_view(Some("wallboard")).unwrap();
        assert!(
            tokens.issue_view(Some("wallboard")).is_err(),
            "a name is one token's"
        );
        assert!(tokens.issue_view(Some("control")).is_err());
        let listed: Vec<(String, &str)> = tokens
            .list()
            .into_iter()
            .map(|t| (t.name, t.scope))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("control".to_string(), "control"),
                ("view-1".to_string(), "view"),
                ("wallboard".to_string(), "view"),
                ("webhook".to_string(), "webhook"),
            ]
        );
        assert!(
            !format!("{:?}", tokens.list()).contains(&first),
            "no value listed"
        );

        // Rotated: the old value refused at once, the new one works; kept on disk.
        let (new_control, scope) = tokens.rotate("control", chrono::Duration::zero()).unwrap();
        assert_eq!(scope, "control");
        assert_eq!(tokens.access_of(&control), None);
        assert_eq!(tokens.access_of(&new_control), Some(Access::Control));
        let (new_board, _) = tokens
            .rotate("wallboard", chrono::Duration::zero())
            .unwrap();
        assert_eq!(tokens.access_of(&board), None);
        assert_eq!(tokens.access_of(&new_board), Some(Access::View));
        // Revoked: refused; the others keep their names.
        tokens.revoke("view-1").unwrap();
        assert_eq!(tokens.access_of(&first), None);
        assert!(tokens.revoke("view-1").is_err());
        assert!(tokens.revoke("control").is_err() && tokens.revoke("webhook").is_err());
        let again = Tokens::open(dir.path()).unwrap();
        assert_eq!(again.access_of(&new_control), Some(Access::Control));
        assert_eq!(again.access_of(&new_board), Some(Access::View));
        assert_eq!(again.access_of(&first), None);
        assert_eq!(
            again
                .list()
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            vec!["control", "wallboard", "webhook"]
        );
        assert!(again.rotate("nobody", chrono::Duration::zero()).is_err());
    }

    #[test]
    fn the_webhooks_old_secret_is_accepted_for_its_grace_period_only() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::open(dir.path()).unwrap();
        let old = tokens.webhook_secret();
        let (new, _) = tokens
            .rotate("webhook", chrono::Duration::hours(1))
            .unwrap();
        assert!(tokens.is_webhook_secret(&new) && tokens.is_webhook_secret(&old));
        let until = tokens
            .list()
            .last()
            .unwrap()
            .previous_until
            .expect("listed");
        assert!(until > Utc::now() + chrono::Duration::minutes(59));
        // Rotated again with no grace: only the newest is accepted.
        let (newest, _) = tokens.rotate("webhook", chrono::Duration::zero()).unwrap();
        assert!(tokens.is_webhook_secret(&newest));
        assert!(!tokens.is_webhook_secret(&new) && !tokens.is_webhook_secret(&old));
        assert_eq!(tokens.list().last().unwrap().previous_until, None);
    }
}
