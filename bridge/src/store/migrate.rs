//! Schema 1 -> 2: sealing the secrets of a database written in clear.
//!
//! sled never changes a value where it lies: a replaced or removed value stays in its
//! log segment until sled happens to reuse the segment, so sealing the records in place
//! would leave the passwords readable in the files for a long time. The conversion
//! therefore copies everything, sealed where needed, into a fresh database beside the
//! old one (`<name>.sealing`), swaps the folders (the old one becomes
//! `<name>.cleartext`), then overwrites the old files with zeros and removes them.
//! Every step may be interrupted by a crash: [`finish_interrupted`], at the next start,
//! completes the swap or discards an unfinished copy.
//!
//! Nothing is lost: the old folder is given up only once the copy is complete and on
//! disk, and every tree is copied (trees this code does not know unchanged).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::crypt::Cipher;
use super::{meta_keys, StoreError, INBOX, LOGINS, META, SCHEMA_VERSION, TXN_IDS};

type Result<T> = std::result::Result<T, StoreError>;

fn failed(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(format!("{what} {}: {e}", path.display()))
}

/// `<folder>.<suffix>` beside the database folder.
fn sibling(path: &Path, suffix: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| failed("the database path does not name a folder:", path, "no name"))?;
    let mut name = OsString::from(name);
    name.push(".");
    name.push(suffix);
    Ok(path.with_file_name(name))
}

/// Where an unfinished conversion writes its copy.
pub(super) fn sealing_path(path: &Path) -> Result<PathBuf> {
    sibling(path, "sealing")
}

/// Where the database in clear waits to be wiped after the swap.
pub(super) fn cleartext_path(path: &Path) -> Result<PathBuf> {
    sibling(path, "cleartext")
}

/// Completes or undoes a conversion a crash interrupted (before the database opens).
pub(super) fn finish_interrupted(path: &Path) -> Result<()> {
    let sealing = sealing_path(path)?;
    let cleartext = cleartext_path(path)?;
    if cleartext.exists() {
        // The copy was complete before the old folder was moved aside.
        if !path.exists() {
            let from = if sealing.exists() {
                &sealing
            } else {
                &cleartext
            };
            std::fs::rename(from, path).map_err(|e| failed("cannot move back", from, e))?;
            sync_parent(path)?;
            if from == &cleartext {
                return Ok(());
            }
        }
        tracing::info!("removing the database in clear left by an interrupted conversion");
        wipe(&cleartext)?;
    } else if sealing.exists() {
        tracing::info!("discarding an unfinished conversion of the database");
        std::fs::remove_dir_all(&sealing).map_err(|e| failed("cannot remove", &sealing, e))?;
    }
    Ok(())
}

/// Converts the schema-1 database at `path` (not open) to schema 2 under `cipher`.
pub(super) fn seal_database(path: &Path, cipher: &Cipher) -> Result<()> {
    let sealing = sealing_path(path)?;
    let cleartext = cleartext_path(path)?;
    tracing::info!(
        "encrypting the stored credentials of {} (a one-time conversion)",
        path.display()
    );
    super::create_private_dir(&sealing).map_err(|e| failed("cannot create", &sealing, e))?;
    {
        // Closed by the caller a moment ago.
        let old = super::reopen(path)?;
        let new = sled::Config::new().path(&sealing).open()?;
        copy_sealed(&old, &new, cipher)?;
        new.flush()?;
    }
    super::key_check::write_file(&sealing, cipher)?;
    sync_tree(&sealing)?;
    std::fs::rename(path, &cleartext).map_err(|e| failed("cannot move aside", path, e))?;
    std::fs::rename(&sealing, path).map_err(|e| failed("cannot move into place", &sealing, e))?;
    sync_parent(path)?;
    wipe(&cleartext)?;
    tracing::info!("the stored credentials are encrypted; the database in clear is wiped");
    Ok(())
}

fn copy_sealed(old: &sled::Db, new: &sled::Db, cipher: &Cipher) -> Result<()> {
    for name in old.tree_names() {
        let from = old.open_tree(&name)?;
        let to = new.open_tree(&name)?;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for kv in from.iter() {
            let (k, v) = kv?;
            let value = match &name[..] {
                n if n == INBOX.as_bytes() => cipher.seal(INBOX, &k, &v)?,
                n if n == LOGINS.as_bytes() => cipher.seal(LOGINS, &k, &v)?,
                n if n == META.as_bytes() && &k[..] == meta_keys::MEDIA_KEY.as_bytes() => {
                    cipher.seal(META, &k, &v)?
                }
                // `at_ms` then the body's digest, keyed from now on.
                n if n == TXN_IDS.as_bytes() && v.len() > 8 => {
                    let mut keyed = v[..8].to_vec();
                    keyed.extend_from_slice(&cipher.keyed_digest(&v[8..]));
                    keyed
                }
                _ => v.to_vec(),
            };
            batch.insert(k, value);
            in_batch += 1;
            if in_batch == 1000 {
                to.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
            }
        }
        to.apply_batch(batch)?;
        if to.len() != from.len() {
            return Err(StoreError::Migration(format!(
                "the copy of {} has {} records instead of {}",
                String::from_utf8_lossy(&name),
                to.len(),
                from.len()
            )));
        }
    }
    // sled's id counter is not part of the data: new ids must stay above every id the
    // old database gave (inbox keys, outbox transaction ids the homeserver remembers).
    let old_meta = old.open_tree(META)?;
    let id_base = super::id_base(&old_meta)? + old.generate_id()? + 1;
    let meta = new.open_tree(META)?;
    meta.insert(meta_keys::ID_BASE, &id_base.to_be_bytes())?;
    super::key_check::write_meta(&meta, cipher)?;
    meta.insert(meta_keys::SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
    Ok(())
}

/// Overwrites every file under `dir` with zeros, then removes the folder. (On
/// copy-on-write file systems and flash the old blocks may survive on the medium; the
/// files no longer hold them.)
fn wipe(dir: &Path) -> Result<()> {
    fn zero_files(dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                zero_files(&entry.path())?;
            } else if kind.is_file() {
                let mut file = std::fs::OpenOptions::new().write(true).open(entry.path())?;
                let mut left = file.metadata()?.len();
                let zeros = vec![0u8; 64 * 1024];
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    file.write_all(&zeros[..n])?;
                    left -= n as u64;
                }
                file.sync_all()?;
            }
        }
        Ok(())
    }
    zero_files(dir).map_err(|e| failed("cannot overwrite", dir, e))?;
    std::fs::remove_dir_all(dir).map_err(|e| failed("cannot remove", dir, e))?;
    sync_parent(dir)
}

/// Makes the names of every file under `dir` durable (sled syncs their contents).
fn sync_tree(dir: &Path) -> Result<()> {
    fn sync(dir: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                sync(&entry.path())?;
            }
        }
        std::fs::File::open(dir)?.sync_all()
    }
    sync(dir).map_err(|e| failed("cannot sync", dir, e))
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed("cannot sync", parent, e))
}

#[cfg(test)]
mod tests {
    use super::super::secrets_tests::{files_containing, login, login_event};
    use super::super::*;
    use super::*;
    use crate::model::{ChatId, MessageKind};
    use crate::model::{OutboxEntry, OutboxItem};

    const STORED: &str = "Stored-Pw-1001";
    const WAITING: &str = "Waiting-Pw-2002";
    const HANDLED: &str = "Handled-Pw-3003";
    const MEDIA_KEY: [u8; 32] = [0x5a; 32];
    /// A transaction body's SHA-256, stored as it was in schema 1.
    const DIGEST: [u8; 32] = [
        0x8e, 0x17, 0xa4, 0x52, 0x3d, 0xc0, 0x69, 0xf1, 0x0b, 0x94, 0x2e, 0x7a, 0xd3, 0x45, 0xbc,
        0x06, 0x71, 0xe8, 0x1f, 0x9d, 0x63, 0x2a, 0xc5, 0x58, 0xf7, 0x80, 0x3e, 0xb1, 0x4c, 0x15,
        0xda, 0x97,
    ];

    /// What the bridge wrote before the secrets were sealed (schema 1): values in clear,
    /// one `login` event handled and removed (its bytes left in sled's log), one waiting.
    /// Returns the last id sled gave.
    fn write_schema_1(path: &Path) -> u64 {
        let db = sled::Config::new().path(path).open().unwrap();
        let meta = db.open_tree("meta").unwrap();
        meta.insert("schema", &1u32.to_be_bytes()).unwrap();
        meta.insert("instance", "0123456789ab").unwrap();
        meta.insert("media_key", &MEDIA_KEY).unwrap();
        let logins = db.open_tree("logins").unwrap();
        let record = login("@a:x", NetworkId::Icq, "1001", STORED);
        logins
            .insert(key(&["@a:x", "icq"]), encode(&record))
            .unwrap();
        let inbox = db.open_tree("inbox").unwrap();
        let handled = db.generate_id().unwrap();
        inbox
            .insert(handled.to_be_bytes(), login_event("$h", HANDLED))
            .unwrap();
        db.flush().unwrap();
        inbox.remove(handled.to_be_bytes()).unwrap();
        let waiting = db.generate_id().unwrap();
        inbox
            .insert(waiting.to_be_bytes(), login_event("$w", WAITING))
            .unwrap();
        let outbox = db.open_tree("outbox").unwrap();
        let entry = OutboxEntry {
            user: "@a:x".into(),
            network: NetworkId::Icq,
            chat: ChatId::Direct("1002".into()),
            txn_id: String::new(),
            received_ms: 1,
            parts_done: 0,
            item: OutboxItem::Message {
                from: "1002".into(),
                kind: MessageKind::Text,
                plain: "hello from 1002".into(),
                html: None,
                sent_at: None,
                offline: false,
            },
        };
        let mut k = Store::conversation_key("@a:x", NetworkId::Icq, &entry.chat);
        k.push(0xFF);
        let id = db.generate_id().unwrap();
        k.extend_from_slice(&id.to_be_bytes());
        outbox.insert(k, encode(&entry)).unwrap();
        let mut record = 5u64.to_be_bytes().to_vec();
        record.extend_from_slice(&DIGEST);
        db.open_tree("txn_ids")
            .unwrap()
            .insert("t1", record)
            .unwrap();
        let mut age = 5u64.to_be_bytes().to_vec();
        age.extend_from_slice(b"t1");
        db.open_tree("txn_ids_by_age")
            .unwrap()
            .insert(age, &[])
            .unwrap();
        db.open_tree("buddies")
            .unwrap()
            .insert(
                key(&["@a:x", "icq", "1002"]),
                &b"{\"v\":1,\"id\":\"1002\",\"display_name\":null,\"groups\":[]}"[..],
            )
            .unwrap();
        db.flush().unwrap();
        id
    }

    fn assert_no_password_under(dir: &Path) {
        for secret in [STORED, WAITING, HANDLED] {
            let found = files_containing(dir, secret);
            assert!(found.is_empty(), "{secret:?} still in {found:?}");
        }
        assert!(!holds_digest(dir), "the digest in clear is still there");
    }

    fn holds_digest(dir: &Path) -> bool {
        super::super::secrets_tests::all_files(dir)
            .iter()
            .any(|f| std::fs::read(f).unwrap().windows(32).any(|w| w == DIGEST))
    }

    /// Everything the schema-1 database held, read through the converted store.
    fn assert_converted(store: &Store, last_old_id: u64) {
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
        assert_eq!(store.instance, "0123456789ab");
        assert_eq!(
            store.media_key().unwrap(),
            MEDIA_KEY,
            "media links stay valid"
        );
        let logins = store.logins().unwrap();
        assert_eq!(logins, vec![login("@a:x", NetworkId::Icq, "1001", STORED)]);
        let pending = store.inbox_pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].1, login_event("$w", WAITING));
        let queues = store.outbox_summary().unwrap();
        assert_eq!(queues.len(), 1);
        assert_eq!(store.buddies("@a:x", NetworkId::Icq).unwrap().len(), 1);
        assert_eq!(
            store.accept_transaction("t1", &DIGEST, &[], 6).unwrap(),
            Accepted::Repeat,
            "the transaction is still known"
        );
        // New ids stay above the old ones (sled's counter restarts in a fresh database).
        let id = store.inbox_push(b"{}").unwrap();
        assert!(id > last_old_id, "{id} <= {last_old_id}");
        store.inbox_done(id).unwrap();
        let mut entry = store
            .outbox_first(&queues[0].conversation)
            .unwrap()
            .unwrap()
            .1;
        let k = store.outbox_push(&mut entry).unwrap();
        let n: u64 = entry.txn_id.rsplit('.').next().unwrap().parse().unwrap();
        assert!(n > last_old_id, "transaction id {} reused", entry.txn_id);
        store.outbox_done(&k, &entry.txn_id, &[], 0).unwrap();
    }

    #[test]
    fn a_database_in_clear_is_converted_and_its_passwords_leave_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let last = write_schema_1(&db);
        // The scan finds what is there (the removed entry included), so it can fail.
        for secret in [STORED, WAITING, HANDLED] {
            assert!(
                !files_containing(&db, secret).is_empty(),
                "{secret:?} not written"
            );
        }
        assert!(holds_digest(&db), "the digest is written");
        {
            let store = Store::open_in(dir.path()).unwrap();
            assert_converted(&store, last);
        }
        assert_no_password_under(dir.path());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "only the database and its key remain: {names:?}"
        );
        // Opened again: no second conversion, the same data.
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(store.logins().unwrap()[0].password, STORED);
    }

    #[test]
    fn a_conversion_interrupted_at_any_step_completes_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let sealing = sealing_path(&db).unwrap();
        let cleartext = cleartext_path(&db).unwrap();
        let copy = |from: &Path, to: &Path| {
            std::fs::create_dir_all(to).unwrap();
            for file in super::super::secrets_tests::all_files(from) {
                let target = to.join(file.strip_prefix(from).unwrap());
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(&file, target).unwrap();
            }
        };
        let last = write_schema_1(&db);
        let original = dir.path().join("original");
        copy(&db, &original);

        // 1. A crash while copying: an unfinished copy beside the database in clear.
        copy(&original, &sealing);
        assert_converted(&Store::open_in(dir.path()).unwrap(), last);
        assert!(!sealing.exists());
        let converted = dir.path().join("converted");
        copy(&db, &converted);

        // 2. A crash between moving the old folder aside and the copy into place.
        std::fs::remove_dir_all(&db).unwrap();
        copy(&converted, &sealing);
        copy(&original, &cleartext);
        assert_converted(&Store::open_in(dir.path()).unwrap(), last);
        assert!(!sealing.exists() && !cleartext.exists());

        // 3. A crash before the old folder was wiped.
        copy(&original, &cleartext);
        assert_converted(&Store::open_in(dir.path()).unwrap(), last);
        assert!(!cleartext.exists());

        std::fs::remove_dir_all(&original).unwrap();
        std::fs::remove_dir_all(&converted).unwrap();
        assert_no_password_under(dir.path());
    }

    #[test]
    fn a_database_in_clear_is_converted_with_the_key_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let last = write_schema_1(&db);
        let file = dir.path().join("db.key");
        let keys = KeySource::text(&file, &"07".repeat(32));
        assert_converted(&Store::open_retrying(&db, &keys).unwrap(), last);
        assert!(!file.exists(), "no key file made");
        assert!(matches!(
            Store::open_in(dir.path()),
            Err(StoreError::KeyMissing { .. })
        ));
        assert_no_password_under(dir.path());
    }
}
