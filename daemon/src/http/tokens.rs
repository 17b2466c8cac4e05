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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewToken {
    token: String,
    issued_at: DateTime<Utc>,
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

    /// Whether a presented secret is the webhook's (compared in constant time).
    pub fn is_webhook_secret(&self, presented: &str) -> bool {
        let file = self.file.read().expect("tokens lock");
        file.webhook
            .as_deref()
            .is_some_and(|known| bool::from(known.as_bytes().ct_eq(presented.as_bytes())))
    }

    /// A new view-only token, saved before it is answered.
    pub fn issue_view(&self) -> anyhow::Result<String> {
        let mut file = self.file.write().expect("tokens lock");
        let token = crate::freqtrade::random_hex(TOKEN_BYTES);
        let mut next = file.clone();
        next.view.push(ViewToken {
            token: token.clone(),
            issued_at: Utc::now(),
        });
        write(&self.path, &next)?;
        *file = next;
        Ok(token)
    }
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
        let view = tokens.issue_view().unwrap();
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
}
