//! Whether a key is the database's: a constant sealed under it, kept twice. The file
//! `key-check` in the database folder is read before sled opens the database (sled
//! rewrites some of its files at every open, so a refused key leaves the folder exactly
//! as it was); `meta/key_check` travels with the data and decides when the file is
//! missing.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::crypt::Cipher;
use super::key::KeySource;
use super::{meta_keys, StoreError, META};

type Result<T> = std::result::Result<T, StoreError>;

const FILE: &str = "key-check";
const TEXT: &[u8] = b"retrobridge database key";

fn file(db: &Path) -> PathBuf {
    db.join(FILE)
}

fn verify(cipher: &Cipher, tree: &str, name: &[u8], sealed: &[u8], keys: &KeySource) -> Result<()> {
    match cipher.open(tree, name, sealed) {
        Some(text) if text == TEXT => Ok(()),
        _ => Err(StoreError::WrongKey {
            from: keys.describe(),
        }),
    }
}

/// The sealed constant in the database folder, if there is one.
pub(super) fn read_file(db: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(file(db)) {
        Ok(sealed) => Ok(Some(sealed)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::File(format!(
            "cannot read {}: {e}",
            file(db).display()
        ))),
    }
}

pub(super) fn verify_file(cipher: &Cipher, sealed: &[u8], keys: &KeySource) -> Result<()> {
    verify(cipher, FILE, b"", sealed, keys)
}

/// Writes the file (whole or not at all: a torn file would read as a wrong key).
pub(super) fn write_file(db: &Path, cipher: &Cipher) -> Result<()> {
    let target = file(db);
    let temporary = db.join(format!("{FILE}.new"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&temporary)?;
        f.write_all(
            &cipher
                .seal(FILE, b"", TEXT)
                .map_err(std::io::Error::other)?,
        )?;
        f.sync_all()?;
        std::fs::rename(&temporary, &target)?;
        std::fs::File::open(db)?.sync_all()
    };
    write().map_err(|e| StoreError::File(format!("cannot write {}: {e}", target.display())))
}

pub(super) fn write_meta(meta: &sled::Tree, cipher: &Cipher) -> Result<()> {
    let name = meta_keys::KEY_CHECK.as_bytes();
    meta.insert(name, cipher.seal(META, name, TEXT)?)?;
    Ok(())
}

pub(super) fn verify_meta(meta: &sled::Tree, cipher: &Cipher, keys: &KeySource) -> Result<()> {
    let name = meta_keys::KEY_CHECK.as_bytes();
    let sealed = meta.get(name)?.ok_or_else(|| StoreError::Corrupt {
        tree: META,
        error: "the key check record is missing".into(),
    })?;
    verify(cipher, META, name, &sealed, keys)
}
