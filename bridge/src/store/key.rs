//! The database key: 32 random bytes kept outside the database, in the environment
//! (`RETROBRIDGE_DATABASE_KEY`) or in a key file the bridge creates with mode 0600 on
//! first run. The key of an existing encrypted database is never created afresh: a
//! missing key is an error, since a new key would make the stored records unreadable.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use zeroize::Zeroizing;

use super::StoreError;

/// The environment variable that holds the key (it wins over the key file).
pub const KEY_ENV: &str = "RETROBRIDGE_DATABASE_KEY";
pub(super) const KEY_LEN: usize = 32;

/// The key itself; wiped from memory when dropped, never printed.
pub struct DatabaseKey(Zeroizing<[u8; KEY_LEN]>);

impl DatabaseKey {
    pub(super) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn random() -> Result<DatabaseKey, StoreError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(key.as_mut()).map_err(|e| StoreError::random(&e))?;
        Ok(DatabaseKey(key))
    }

    /// 64 hex digits, or base64 of 32 bytes (surrounding white space ignored).
    fn parse(text: &str) -> Result<DatabaseKey, String> {
        let text = text.trim();
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            for (i, byte) in key.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex digits");
            }
            return Ok(DatabaseKey(key));
        }
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for engine in engines {
            let mut decoded = Zeroizing::new(Vec::new());
            if engine.decode_vec(text, &mut decoded).is_ok() && decoded.len() == KEY_LEN {
                key.copy_from_slice(&decoded);
                return Ok(DatabaseKey(key));
            }
        }
        Err(format!(
            "it is not {KEY_LEN} bytes written as {} hex digits or in base64",
            2 * KEY_LEN
        ))
    }

    fn to_hex(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(2 * KEY_LEN + 1));
        for b in self.0.iter() {
            text.push_str(&format!("{b:02x}"));
        }
        text
    }
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Where the key comes from: the environment variable when it is set, else the key file.
pub struct KeySource {
    file: PathBuf,
    env: Option<Zeroizing<String>>,
}

impl KeySource {
    /// The key file, unless `RETROBRIDGE_DATABASE_KEY` is set.
    pub fn from_env(file: &Path) -> KeySource {
        let env = std::env::var(KEY_ENV).ok().map(Zeroizing::new);
        KeySource {
            file: file.to_owned(),
            env,
        }
    }

    /// Only the key file (tests; the environment is ignored).
    pub fn file(file: &Path) -> KeySource {
        KeySource {
            file: file.to_owned(),
            env: None,
        }
    }

    /// A key given as text, as in the environment variable (tests).
    pub fn text(file: &Path, text: &str) -> KeySource {
        KeySource {
            file: file.to_owned(),
            env: Some(Zeroizing::new(text.to_owned())),
        }
    }

    /// Where the key comes from, for messages.
    pub fn describe(&self) -> String {
        match self.env {
            Some(_) => KEY_ENV.to_owned(),
            None => format!("the key file {}", self.file.display()),
        }
    }

    /// The key of an existing encrypted database; an error when there is none.
    pub(super) fn existing(&self) -> Result<DatabaseKey, StoreError> {
        self.load()?.ok_or_else(|| StoreError::KeyMissing {
            file: self.file.clone(),
        })
    }

    /// The key, created (in the key file) when there is none yet. Only for a database
    /// that holds no encrypted records.
    pub(super) fn existing_or_new(&self) -> Result<DatabaseKey, StoreError> {
        if let Some(key) = self.load()? {
            return Ok(key);
        }
        let key = DatabaseKey::random()?;
        self.create_file(&key).map_err(|e| StoreError::KeyFile {
            file: self.file.clone(),
            error: format!("cannot create it: {e}"),
        })?;
        tracing::info!(
            "created the database key file {} (keep it: without it the stored logins cannot be read)",
            self.file.display()
        );
        Ok(key)
    }

    fn load(&self) -> Result<Option<DatabaseKey>, StoreError> {
        if let Some(text) = &self.env {
            return DatabaseKey::parse(text)
                .map(Some)
                .map_err(|error| StoreError::BadKey {
                    from: self.describe(),
                    error,
                });
        }
        let text = match std::fs::read(&self.file) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::KeyFile {
                    file: self.file.clone(),
                    error: format!("cannot read it: {e}"),
                })
            }
        };
        warn_if_readable_by_others(&self.file);
        let text = std::str::from_utf8(&text).map_err(|_| StoreError::BadKey {
            from: self.describe(),
            error: "it is not text".into(),
        })?;
        DatabaseKey::parse(text)
            .map(Some)
            .map_err(|error| StoreError::BadKey {
                from: self.describe(),
                error,
            })
    }

    /// Writes a new key file: owner-only from the start, never replacing a file.
    fn create_file(&self, key: &DatabaseKey) -> std::io::Result<()> {
        if let Some(parent) = self.file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.file)?;
        let mut text = key.to_hex();
        text.push('\n');
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        // The file's name durable too, before any record is sealed under the key.
        if let Some(parent) = self.file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }
}

fn warn_if_readable_by_others(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "the database key file {} can be read by other users: `chmod 600` it",
                    file.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_keys_are_read() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let key = DatabaseKey::parse(&format!("  {hex}\n")).unwrap();
        assert_eq!(key.bytes()[..3], [0x00, 0x11, 0x22]);
        assert_eq!(key.bytes()[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode(key.bytes());
        assert_eq!(DatabaseKey::parse(&b64).unwrap().bytes(), key.bytes());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.bytes());
        assert_eq!(DatabaseKey::parse(&b64).unwrap().bytes(), key.bytes());
        for bad in [
            "",
            "abcd",
            &hex[..62],
            &format!("{hex}00"),
            "not a key at all!",
        ] {
            assert!(DatabaseKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format!("{key:?}"), "DatabaseKey(..)");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("db.key");
        let source = KeySource::file(&file);
        assert!(matches!(
            source.existing(),
            Err(StoreError::KeyMissing { .. })
        ));
        assert!(!file.exists(), "a missing key is not created by `existing`");
        let key = source.existing_or_new().unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = source.existing_or_new().unwrap();
        assert_eq!(key.bytes(), again.bytes(), "the file is read, not replaced");
        assert_eq!(source.existing().unwrap().bytes(), key.bytes());
    }

    #[test]
    fn the_environment_wins_and_a_bad_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.key");
        let source = KeySource::text(&file, &"ab".repeat(32));
        assert_eq!(source.existing_or_new().unwrap().bytes(), &[0xab; 32]);
        assert!(
            !file.exists(),
            "no key file when the environment has the key"
        );
        let bad = KeySource::text(&file, "0123");
        let e = bad.existing().unwrap_err().to_string();
        assert!(e.contains(KEY_ENV) && e.contains("64 hex digits"), "{e}");
        std::fs::write(&file, "garbage\n").unwrap();
        let e = KeySource::file(&file).existing().unwrap_err().to_string();
        assert!(e.contains(&file.display().to_string()), "{e}");
    }
}
