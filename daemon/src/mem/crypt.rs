//! Memory at rest (`[mem.encryption] encrypt = true`): the files of `mem_knowledge/` encrypted
//! with XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`), a 256-bit key and a random
//! 24-byte nonce per record.
//!
//! On disk a record is one line: `enc1:` then base64 (standard, padded) of
//! `nonce (24 bytes) || ciphertext || tag (16 bytes)`, then `\n`. The associated data is
//! the file's kind (`memd mem_knowledge/decisions.jsonl`, ...), so a record moved to
//! another file does not authenticate.
//! - The two logs (`decisions.jsonl`, `core_memory_updates.txt` and its archives) hold
//!   one record per append (the whole lines of one decision or outcome): appending stays
//!   an append, and a torn last record (a crash mid-write) fails to authenticate and is
//!   skipped like a torn plain line.
//! - The documents (`parameter_updates.json`, `learned_strategies.json`) are one record,
//!   written atomically as before.
//!
//! A line without the prefix is plain text (JSON starts with `{`, the text log with `[`),
//! so reading tells plain from encrypted per line; [`super::store::MemoryStore::open_at_rest`]
//! converts a directory at start when `encrypt` changes.
//!
//! The key: the systemd credential `memd-memory-key` (`$CREDENTIALS_DIRECTORY`, from
//! `LoadCredential=` or `LoadCredentialEncrypted=`) when there is one, else `key_file`
//! (default `{data_dir}/memory.key`, mode 0600 or 0400, else refused). Either holds 64
//! hex digits (what memd writes), base64 of 32 bytes, or 32 raw bytes. The key is never
//! logged or shown; errors name where it came from.
//!
//! Rotating the key (`mem.key.rotate`, a key file only: a credential is systemd's to
//! replace): a new key is written to `{key_file}.next`, every file is re-encrypted with it
//! (each atomically, by rename), then `.next` is renamed over the key file. Cut short at
//! any step, each file is wholly under one of the two keys and both keys are on disk:
//! the next start finishes the rotation ([`super::store::prepare`]). A backup holds the
//! key file of its own time, so backups made before a rotation stay readable.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The prefix of an encrypted record (format version 1).
pub const PREFIX: &[u8] = b"enc1:";
/// The systemd credential's name: `LoadCredential=memd-memory-key:/etc/memd/memory.key`.
pub const CREDENTIAL: &str = "memd-memory-key";
/// The key file's name in the data directory when `key_file` is not set.
pub const DEFAULT_KEY_FILE: &str = "memory.key";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// `[mem.encryption]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRestSettings {
    pub encrypt: bool,
    /// Absolute; `{data_dir}/memory.key` unless set.
    pub key_file: PathBuf,
}

impl AtRestSettings {
    /// Plain files, the key (if ever needed to decrypt) in the default place.
    pub fn plain(data_dir: &Path) -> AtRestSettings {
        AtRestSettings {
            encrypt: false,
            key_file: data_dir.join(DEFAULT_KEY_FILE),
        }
    }
}

/// Where the key came from: named in errors and logs (the key itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Credential(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "the key from {}", p.display()),
            KeySource::Credential(p) => write!(
                f,
                "the key from the systemd credential {CREDENTIAL} ({})",
                p.display()
            ),
        }
    }
}

/// The memory's key, ready to use.
pub struct Key {
    cipher: XChaCha20Poly1305,
    source: KeySource,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub fn from_bytes(bytes: &[u8; 32], source: KeySource) -> Key {
        Key {
            cipher: XChaCha20Poly1305::new(bytes.into()),
            source,
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The same key, now read from `path` (the rotation's `.next` renamed into place).
    pub fn moved_to(self, path: &Path) -> Key {
        Key {
            cipher: self.cipher,
            source: KeySource::File(path.to_path_buf()),
        }
    }
}

/// Where a rotation keeps the new key until every file is re-encrypted with it.
pub fn next_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_os_string();
    name.push(".next");
    PathBuf::from(name)
}

/// A rotation's new key, when one was left by a rotation cut short: `None` when there is
/// none, or when it was cut short before the key was whole on disk (then no file had
/// been re-encrypted yet, and the stray file is removed).
pub fn unfinished_rotation_key(key_file: &Path) -> Result<Option<Key>, String> {
    let next = next_key_path(key_file);
    if !next.exists() {
        return Ok(None);
    }
    match read_key(&next, KeySource::File(next.clone())) {
        Ok(key) => Ok(Some(key)),
        Err(e) => {
            tracing::warn!(file = %next.display(), error = %e, "a key rotation was cut short before its new key was written: nothing was re-encrypted; removing it");
            std::fs::remove_file(&next)
                .map_err(|e| format!("cannot remove {}: {e}", next.display()))?;
            Ok(None)
        }
    }
}

/// Makes the rotation's new key the key: `.next` renamed over `key_file`, durably.
pub fn install_next_key(key_file: &Path) -> Result<(), String> {
    let next = next_key_path(key_file);
    let installed = (|| -> std::io::Result<()> {
        std::fs::rename(&next, key_file)?;
        if let Some(dir) = key_file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    installed.map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            next.display(),
            key_file.display()
        )
    })
}

/// The key's 32 bytes from a key file's content.
fn parse_key(content: &[u8]) -> Option<[u8; 32]> {
    if content.len() == 32 {
        return content.try_into().ok();
    }
    let text = std::str::from_utf8(content).ok()?.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        BASE64.decode(text).ok()?
    };
    bytes.try_into().ok()
}

/// Refuses a key file that others than its owner could read or write.
pub fn check_mode(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("key file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("key file {} is not a file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != 0o600 && mode != 0o400 {
        return Err(format!(
            "key file {} has mode {mode:04o}; it must be 0600 or 0400 (chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

fn read_key(path: &Path, source: KeySource) -> Result<Key, String> {
    let content = std::fs::read(path).map_err(|e| format!("cannot read {source}: {e}"))?;
    let bytes = parse_key(&content).ok_or_else(|| {
        format!(
            "{source} is not a 256-bit key (64 hex digits, base64 of 32 bytes, or 32 raw bytes)"
        )
    })?;
    Ok(Key::from_bytes(&bytes, source))
}

/// The systemd credential's path, when memd runs with one.
fn credential_path() -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty())?;
    let path = Path::new(&dir).join(CREDENTIAL);
    path.exists().then_some(path)
}

/// The key, if there is one: the systemd credential (its access is systemd's: the
/// directory is the service's alone), else `key_file` when it exists (mode checked).
pub fn find_key(settings: &AtRestSettings) -> Result<Option<Key>, String> {
    if let Some(path) = credential_path() {
        return read_key(&path, KeySource::Credential(path.clone())).map(Some);
    }
    match std::fs::symlink_metadata(&settings.key_file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => {
            check_mode(&settings.key_file)?;
            let source = KeySource::File(settings.key_file.clone());
            read_key(&settings.key_file, source).map(Some)
        }
    }
}

/// Writes a fresh random key to `path` (0600, never over an existing file).
pub fn create_key(path: &Path) -> Result<Key, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random source for a key: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // The umask cannot have added bits, but be exact.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(hex.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    written.map_err(|e| format!("cannot create the key file {}: {e}", path.display()))?;
    Ok(Key::from_bytes(&bytes, KeySource::File(path.to_path_buf())))
}

/// Whether `bytes` (a line or a document) is an encrypted record.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(PREFIX)
}

/// Why a record could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Encrypted, and the memory has no key (`encrypt` is off).
    NoKey,
    /// Not base64, or too short: torn.
    Damaged,
    /// Does not authenticate: torn, tampered with, or another key.
    Auth,
}

fn aad(kind: &str) -> Vec<u8> {
    format!("memd mem_knowledge/{kind}").into_bytes()
}

/// Reads and writes the memory's records: plain, or encrypted with the key.
#[derive(Debug, Clone, Default)]
pub struct Codec {
    key: Option<Arc<Key>>,
}

impl Codec {
    pub fn plain() -> Codec {
        Codec { key: None }
    }

    pub fn encrypted(key: Key) -> Codec {
        Codec {
            key: Some(Arc::new(key)),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    pub fn key_source(&self) -> Option<&KeySource> {
        self.key.as_deref().map(Key::source)
    }

    /// `plain` as written to a file of `kind`: itself when plain, else one encrypted
    /// record ending in `\n`.
    pub fn seal<'a>(&self, kind: &str, plain: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(key) = &self.key else {
            return Cow::Borrowed(plain);
        };
        let mut nonce = XNonce::default();
        getrandom::fill(nonce.as_mut_slice()).expect("the OS random source works");
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad(kind),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length memd writes");
        let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        let mut out = Vec::with_capacity(PREFIX.len() + raw.len() * 4 / 3 + 5);
        out.extend_from_slice(PREFIX);
        out.extend_from_slice(BASE64.encode(&raw).as_bytes());
        out.push(b'\n');
        Cow::Owned(out)
    }

    /// What a record of a file of `kind` holds: a plain one as it is, an encrypted one
    /// decrypted (trailing whitespace around it is ignored).
    pub fn open<'a>(&self, kind: &str, record: &'a [u8]) -> Result<Cow<'a, [u8]>, OpenError> {
        if !is_sealed(record) {
            return Ok(Cow::Borrowed(record));
        }
        let key = self.key.as_ref().ok_or(OpenError::NoKey)?;
        let body = record[PREFIX.len()..].trim_ascii_end();
        let raw = BASE64.decode(body).map_err(|_| OpenError::Damaged)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Damaged);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError::Damaged)?;
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad(kind),
                },
            )
            .map(Cow::Owned)
            .map_err(|_| OpenError::Auth)
    }

    /// Why `path` (a file of `kind`) cannot be read, for an error message.
    pub fn describe(&self, path: &Path, error: OpenError) -> String {
        match (error, self.key_source()) {
            (OpenError::NoKey, _) | (_, None) => format!(
                "{}: encrypted, but memd has no key for the memory ([mem.encryption] encrypt is off)",
                path.display()
            ),
            (OpenError::Damaged, Some(_)) => {
                format!("{}: a damaged encrypted record", path.display())
            }
            (OpenError::Auth, Some(source)) => format!(
                "{}: cannot decrypt with {source} (wrong key?)",
                path.display()
            ),
        }
    }

    /// A whole document (`parameter_updates.json`, `learned_strategies.json`): its plain
    /// bytes and whether it was plain on disk; `None` when absent.
    pub fn read_doc(&self, path: &Path, kind: &str) -> Result<Option<(Vec<u8>, bool)>, String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let plain = !is_sealed(&bytes);
        let opened = self
            .open(kind, &bytes)
            .map_err(|e| self.describe(path, e))?;
        Ok(Some((opened.into_owned(), plain)))
    }

    /// Writes a whole document atomically, 0600, encrypted when the memory is.
    pub fn write_doc(&self, path: &Path, kind: &str, bytes: &[u8]) -> anyhow::Result<()> {
        crate::datadir::write_atomic(path, &self.seal(kind, bytes), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_bytes(&[byte; 32], KeySource::File("/k".into()))
    }

    #[test]
    fn records_round_trip_and_are_bound_to_their_file() {
        let codec = Codec::encrypted(key(7));
        let plain = b"{\"kind\":\"decision\",\"strategy\":\"momentum\"}\n";
        let sealed = codec.seal("decisions.jsonl", plain).into_owned();
        assert!(sealed.starts_with(b"enc1:") && sealed.ends_with(b"\n"));
        assert_eq!(sealed.iter().filter(|b| **b == b'\n').count(), 1);
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(!text.contains("momentum") && !text.contains("kind"));
        let line = &sealed[..sealed.len() - 1];
        assert_eq!(&*codec.open("decisions.jsonl", line).unwrap(), plain);
        // Another file's kind, another key, no key, a torn record.
        assert_eq!(
            codec.open("core_memory_updates.txt", line),
            Err(OpenError::Auth)
        );
        assert_eq!(
            Codec::encrypted(key(8)).open("decisions.jsonl", line),
            Err(OpenError::Auth)
        );
        assert_eq!(
            Codec::plain().open("decisions.jsonl", line),
            Err(OpenError::NoKey)
        );
        assert!(
            codec
                .open("decisions.jsonl", &line[..line.len() - 9])
                .is_err()
        );
        assert!(codec.open("decisions.jsonl", &line[..20]).is_err());
        // Two seals of the same text differ (a fresh nonce each).
        assert_ne!(codec.seal("decisions.jsonl", plain), sealed.as_slice());
        // Plain records pass through.
        assert_eq!(&*codec.open("decisions.jsonl", b"{}").unwrap(), b"{}");
        assert_eq!(&*Codec::plain().seal("decisions.jsonl", b"{}\n"), b"{}\n");
    }

    #[test]
    fn key_files_hex_base64_or_raw() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_key(format!("{hex}\n").as_bytes()), Some(bytes));
        assert_eq!(parse_key(hex.to_uppercase().as_bytes()), Some(bytes));
        assert_eq!(
            parse_key(format!("{}\n", BASE64.encode(bytes)).as_bytes()),
            Some(bytes)
        );
        assert_eq!(parse_key(&bytes), Some(bytes));
        assert_eq!(parse_key(b"too short"), None);
        assert_eq!(parse_key(&hex.as_bytes()[..62]), None);
    }

    #[test]
    fn created_keys_are_0600_and_readable_and_bad_modes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.key");
        let created = create_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(create_key(&path).is_err(), "never over an existing key");
        let settings = AtRestSettings {
            encrypt: true,
            key_file: path.clone(),
        };
        let found = find_key(&settings).unwrap().unwrap();
        let sealed = Codec::encrypted(created).seal("x", b"hello").into_owned();
        assert_eq!(
            &*Codec::encrypted(found).open("x", &sealed).unwrap(),
            b"hello"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(find_key(&settings).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = find_key(&settings).unwrap_err();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("0644"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(find_key(&settings).unwrap().is_none());
        std::fs::write(&path, b"not a key").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = find_key(&settings).unwrap_err();
        assert!(err.contains("not a 256-bit key"), "{err}");
        assert!(
            !err.contains("not a key"),
            "the content is never shown: {err}"
        );
    }
}
