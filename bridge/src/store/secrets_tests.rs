//! The store's secrets on disk: what the files hold after use, and what a wrong key, a
//! missing key or a changed record get.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

/// The encodings of `secret` a file could plausibly hold it in.
fn encodings(secret: &str) -> Vec<Vec<u8>> {
    let utf16le: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = secret.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{:?}", secret.as_bytes());
    vec![
        secret.as_bytes().to_vec(),
        utf16le,
        utf16be,
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        debug.trim_matches(['[', ']']).as_bytes().to_vec(),
    ]
}

/// Every file under `dir` (recursively) that holds `secret` in any of its encodings.
pub(super) fn files_containing(dir: &Path, secret: &str) -> Vec<PathBuf> {
    let needles = encodings(secret);
    let mut found = Vec::new();
    for file in all_files(dir) {
        let bytes = std::fs::read(&file).unwrap();
        if needles
            .iter()
            .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
        {
            found.push(file);
        }
    }
    found
}

pub(super) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            files.extend(all_files(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// The bytes of every file under `dir`, by path.
pub(super) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    all_files(dir)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
        .collect()
}

/// The files that differ between two snapshots (added, removed or changed).
pub(super) fn changed(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<PathBuf> {
    let mut paths: Vec<&PathBuf> = before.keys().chain(after.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| before.get(*p) != after.get(*p))
        .cloned()
        .collect()
}

pub(super) fn login(user: &str, network: NetworkId, id: &str, password: &str) -> LoginRecord {
    LoginRecord {
        user: user.into(),
        network,
        legacy_id: id.into(),
        password: password.into(),
        space_room: None,
        stopped: None,
        proven: true,
        presence: None,
    }
}

pub(super) fn login_event(event_id: &str, password: &str) -> Vec<u8> {
    serde_json::json!({
        "type": "m.room.message",
        "room_id": "!m:x",
        "sender": "@a:x",
        "event_id": event_id,
        "content": { "msgtype": "m.text", "body": format!("login icq 1001 {password}") },
    })
    .to_string()
    .into_bytes()
}

const PASSWORD: &str = "Hunter-Two-42";
const TYPED: &str = "Typed-In-Room-7";
/// The SHA-256 of the transaction's body, as the endpoint gives it.
const DIGEST: [u8; 32] = [
    0x3b, 0x91, 0x0c, 0x7e, 0x55, 0xa2, 0x18, 0xf4, 0x60, 0x2d, 0xc9, 0x87, 0x11, 0xbe, 0x4a, 0x93,
    0xe7, 0x06, 0x5c, 0xd1, 0x2f, 0x88, 0x73, 0x9a, 0xb4, 0x41, 0xfe, 0x0d, 0x6b, 0xc3, 0x29, 0x57,
];

/// A database in use: a login stored, a `login` command received (handled and still
/// waiting), the media key made.
async fn used_database(dir: &Path) -> Vec<u8> {
    let store = Store::open_in(dir).unwrap();
    store
        .put_login(&login("@a:x", NetworkId::Icq, "1001", PASSWORD))
        .unwrap();
    let handled = login_event("$1", PASSWORD);
    let waiting = login_event("$2", TYPED);
    let events = [
        IncomingEvent {
            event_id: Some("$1"),
            bytes: &handled,
        },
        IncomingEvent {
            event_id: Some("$2"),
            bytes: &waiting,
        },
    ];
    let Accepted::New(ids) = store.accept_transaction("t1", &DIGEST, &events, 1).unwrap() else {
        panic!("new transaction")
    };
    store.inbox_done(ids[0].0).unwrap();
    let media_key = store.media_key().unwrap();
    store.flush().await.unwrap();
    media_key
}

#[tokio::test]
async fn no_secret_reaches_the_files_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let media_key = used_database(dir.path()).await;
    for secret in [PASSWORD, TYPED, "login icq 1001"] {
        let found = files_containing(dir.path(), secret);
        assert!(found.is_empty(), "{secret:?} found in {found:?}");
    }
    for (what, secret) in [
        ("the media key", &media_key[..]),
        ("the body's digest", &DIGEST),
    ] {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        for file in all_files(&dir.path().join("db")) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(32).any(|w| w == secret)
                    && !bytes.windows(64).any(|w| w == hex.as_bytes()),
                "{what} is in {file:?}"
            );
        }
    }
    // The secrets are all there for the bridge.
    let store = Store::open_in(dir.path()).unwrap();
    assert_eq!(store.logins().unwrap()[0].password, PASSWORD);
    let pending = store.inbox_pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1, login_event("$2", TYPED));
    assert_eq!(
        store.inbox_get(pending[0].0).unwrap().unwrap(),
        pending[0].1
    );
    assert_eq!(store.media_key().unwrap(), media_key);
    assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
    // Repeats are still recognised by their (keyed) digest.
    assert_eq!(
        store.accept_transaction("t1", &DIGEST, &[], 2).unwrap(),
        Accepted::Repeat
    );
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    used_database(dir.path()).await;
    let db = dir.path().join("db");
    let before = snapshot(dir.path());
    let wrong = KeySource::text(&dir.path().join("db.key"), &"42".repeat(32));
    let e = Store::open(&db, &wrong)
        .err()
        .expect("a wrong key is refused");
    assert!(matches!(e, StoreError::WrongKey { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains(KEY_ENV)
            && message.contains("not the key")
            && message.contains("nothing was changed"),
        "{message}"
    );
    let after = snapshot(dir.path());
    assert!(
        changed(&before, &after).is_empty(),
        "changed: {:?}",
        changed(&before, &after)
    );
    // The right key still opens everything.
    let store = Store::open_in(dir.path()).unwrap();
    assert_eq!(store.logins().unwrap()[0].password, PASSWORD);
    assert_eq!(store.inbox_pending().unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_key_file_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    used_database(dir.path()).await;
    let key_file = dir.path().join("db.key");
    let kept = dir.path().join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let before = snapshot(dir.path());
    let e = Store::open_in(dir.path()).err().expect("no key, no store");
    assert!(matches!(e, StoreError::KeyMissing { .. }), "{e}");
    assert!(
        e.to_string().contains(&key_file.display().to_string()),
        "the message names the file: {e}"
    );
    assert!(
        !key_file.exists(),
        "a new key was made for an encrypted database"
    );
    let after = snapshot(dir.path());
    assert!(
        changed(&before, &after).is_empty(),
        "changed: {:?}",
        changed(&before, &after)
    );
    std::fs::rename(&kept, &key_file).unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    assert_eq!(store.logins().unwrap()[0].password, PASSWORD);
}

#[test]
fn a_changed_or_moved_record_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    store
        .put_login(&login("@a:x", NetworkId::Icq, "1001", PASSWORD))
        .unwrap();
    // Alice's sealed login copied under Bob's key: refused, not Bob's login.
    let a_key = key(&["@a:x", "icq"]);
    let sealed = store.logins.get(&a_key).unwrap().unwrap();
    store
        .logins
        .insert(key(&["@b:x", "icq"]), sealed.clone())
        .unwrap();
    assert!(matches!(
        store.login("@b:x", NetworkId::Icq),
        Err(StoreError::Undecryptable { tree: "logins" })
    ));
    // A flipped bit in Alice's: refused, and the record stays.
    let mut changed = sealed.to_vec();
    *changed.last_mut().unwrap() ^= 1;
    store.logins.insert(&a_key, changed.clone()).unwrap();
    assert!(store.login("@a:x", NetworkId::Icq).is_err());
    assert!(store.logins().is_err(), "start-up reports it");
    assert_eq!(store.logins.get(&a_key).unwrap().unwrap(), changed);
    // An inbox entry that cannot be decrypted is left where it is.
    let id = store.inbox_push(&login_event("$1", TYPED)).unwrap();
    let k = id.to_be_bytes();
    let mut entry = store.inbox.get(k).unwrap().unwrap().to_vec();
    entry[5] ^= 1;
    store.inbox.insert(k, entry.clone()).unwrap();
    assert!(store.inbox_get(id).is_err());
    assert!(store.inbox_pending().unwrap().is_empty());
    assert_eq!(
        store.inbox.get(k).unwrap().unwrap(),
        entry,
        "kept as it was"
    );
}
