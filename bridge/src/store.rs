//! Persistent state in sled; nothing else in the bridge touches sled.
//!
//! Keys put the owning Matrix user first (`user \0 network \0 ...`), so one user's data is
//! one prefix scan. Values are JSON objects with a `v` field (the record's version) so they
//! can be migrated. `meta/schema` holds the schema version of the whole database.
//!
//! Secrets are sealed ([`crypt`]) under a key kept outside the database ([`key`]): the
//! login records (legacy passwords), every entry of both fronts' inboxes (whatever a user
//! typed, `login` commands included) and the media link key. They are sealed
//! before they reach sled, so no secret is ever written in clear, not even for a moment.
//! Transaction digests are keyed with it too. A wrong or missing key is refused at open,
//! before sled touches the files ([`key_check`]); a database in clear is converted
//! ([`migrate`]).
//!
//! Durability: sled buffers writes in memory. Everything that acknowledges something to
//! the outside (an appservice transaction, a legacy ACK) awaits [`Store::flush`] first,
//! which is a group commit ([`commit`]): writers that ask at about the same time share
//! one flush. [`Store::flush_soon`] asks for a flush without waiting for it, and
//! [`Store::flush_later`] lets a write ride on the next one. After a `kill -9` the
//! database holds everything that was acknowledged.

mod avatars;
mod bridge_state;
mod commit;
mod contacts;
mod crypt;
mod files;
mod key;
mod key_check;
mod last_set;
mod logins;
mod matrix;
mod migrate;
mod outbox;
mod recent;
#[cfg(test)]
mod secrets_tests;
mod xmpp;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::{AuthorizationRequest, ChatId, Contact, Group, NetworkId};

pub use bridge_state::BridgeStateRecord;
use crypt::Cipher;
pub use key::{KeySource, KEY_ENV};
pub use logins::LoginRecord;
pub use matrix::{Accepted, GhostRecord, IncomingEvent, ManagementRoom, PortalRecord};
pub use outbox::{OutboxKey, QueueSummary};
use recent::Recent;
pub use xmpp::{Occupant, Subscription};

/// The schema this code writes; older databases are migrated on open. Version 2 seals
/// the secrets (version 1 kept them in clear).
pub const SCHEMA_VERSION: u32 = 2;

/// The trees whose values are sealed (their names are part of each seal).
const META: &str = "meta";
const INBOX: &str = "inbox";
const LOGINS: &str = "logins";
/// What XMPP users sent, waiting to be handled ([`xmpp`]).
const XMPP_INBOX: &str = "xmpp_inbox";
/// Transaction ids, with keyed digests of their bodies.
const TXN_IDS: &str = "txn_ids";

mod meta_keys {
    pub const SCHEMA: &str = "schema";
    /// A constant sealed under the key (see [`super::key_check`]).
    pub const KEY_CHECK: &str = "key_check";
    /// Added to sled's ids (after a conversion copied the data into a fresh database).
    pub const ID_BASE: &str = "id_base";
    pub const MEDIA_KEY: &str = "media_key";
    pub const INSTANCE: &str = "instance";
}
/// The version of every record type written by this code.
const RECORD_VERSION: u32 = 1;

/// How long transaction and event ids are remembered for dedupe (Synapse retries a
/// transaction until it is acknowledged; a week covers a long outage of either side).
const DEDUPE_MAX_AGE_MS: u64 = 7 * 24 * 3600 * 1000;
/// At most this many of each are remembered (the oldest are forgotten first).
const DEDUPE_MAX_TXNS: usize = 20_000;
const DEDUPE_MAX_EVENTS: usize = 200_000;
/// Delivered messages (transaction id -> event id) kept for later lookups.
const DELIVERED_MAX: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in {tree}: {error}")]
    Corrupt { tree: &'static str, error: String },
    #[error("the database has schema version {found}, newer than this bridge understands ({SCHEMA_VERSION}); upgrade the bridge")]
    TooNew { found: u32 },
    #[error("could not write the database to disk: {0}")]
    Flush(String),
    #[error(
        "the database is encrypted and its key is missing: {file} does not exist. Restore that \
         file (or set {KEY_ENV}); a new key would not open the stored records, so none is made \
         (nothing was changed)"
    )]
    KeyMissing { file: std::path::PathBuf },
    #[error(
        "the database key from {from} is not the key this database was encrypted with: \
         restore the right key file or {KEY_ENV} (nothing was changed)"
    )]
    WrongKey { from: String },
    #[error("the database key in {from} is unusable: {error}")]
    BadKey { from: String, error: String },
    #[error("the database key file {file}: {error}")]
    KeyFile {
        file: std::path::PathBuf,
        error: String,
    },
    #[error(
        "a record in {tree} cannot be decrypted: it was changed on disk or written under \
         another key (it is kept as it is)"
    )]
    Undecryptable { tree: &'static str },
    #[error("could not encrypt a record")]
    Sealing,
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("encrypting the database in clear failed: {0}")]
    Migration(String),
    #[error("{0}")]
    File(String),
}

impl StoreError {
    fn random(e: &getrandom::Error) -> StoreError {
        StoreError::Random(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    #[serde(flatten)]
    data: T,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub struct Inner {
    db: Arc<sled::Db>,
    committer: Arc<commit::Committer>,
    cipher: Cipher,
    /// Added to sled's ids (see [`meta_keys::ID_BASE`]).
    id_base: u64,
    /// Random per database: makes the Matrix transaction ids of the outbox unique even
    /// when a database is started afresh against the same homeserver.
    instance: String,
    meta: sled::Tree,
    txns: Recent,
    events: Recent,
    delivered: Recent,
    inbox: sled::Tree,
    outbox: sled::Tree,
    management: sled::Tree,
    management_by_room: sled::Tree,
    logins: sled::Tree,
    ghosts: sled::Tree,
    portals: sled::Tree,
    portals_by_room: sled::Tree,
    /// `user \0 network` -> the Matrix space of the user's logins there; kept across a
    /// logout so the next login on that network reuses it.
    spaces: sled::Tree,
    buddies: sled::Tree,
    groups: sled::Tree,
    message_ids: sled::Tree,
    chatrooms: sled::Tree,
    /// `room \0 user` of the members the bridge made join (or invited): joined once.
    members: sled::Tree,
    /// `room \0 topic` of the one-time notices a room has had.
    told: sled::Tree,
    /// `user \0 network \0 contact` of the people the user was told added them.
    suggested: sled::Tree,
    /// `user \0 network \0 contact` -> an authorization request the user has not
    /// answered yet ([`contacts`]), at most [`MAX_AUTH_REQUESTS`] per login.
    auth_requests: sled::Tree,
    /// room -> the bridge state (MSC2346) last set in it.
    bridge_state: sled::Tree,
    /// `place \0 what` -> what was last set there ([`last_set`]).
    last_set: sled::Tree,
    /// The XMPP front's state ([`xmpp`]).
    xmpp_inbox: sled::Tree,
    xmpp_subscriptions: sled::Tree,
    xmpp_occupants: sled::Tree,
    /// `network \0 contact` -> the contact's picture ([`avatars`]).
    avatars: sled::Tree,
    /// file id -> a received file's bytes ([`files`]).
    files: sled::Tree,
}

/// Writes waiting for a flush ([`Store::flush_later`]).
#[derive(Debug, Clone, Copy)]
pub struct FlushTicket(u64);

impl Deref for Store {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.committer.close();
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, its secrets sealed under the key from
    /// `keys`. A database in clear (schema 1) is converted first; a wrong or missing key
    /// is refused before anything is written.
    pub fn open(path: &Path, keys: &KeySource) -> Result<Store> {
        migrate::finish_interrupted(path)?;
        create_private_dir(path).map_err(sled::Error::Io)?;
        // The key is checked before sled opens the database, when it can be.
        let checked = match key_check::read_file(path)? {
            Some(sealed) => {
                let cipher = Cipher::new(&keys.existing()?);
                key_check::verify_file(&cipher, &sealed, keys)?;
                Some(cipher)
            }
            None => None,
        };
        let mut db = sled::Config::new().path(path).open()?;
        let schema = schema_of(&db.open_tree(META)?)?;
        let cipher = match (schema, checked) {
            (Some(found), _) if found > SCHEMA_VERSION => return Err(StoreError::TooNew { found }),
            (None, checked) => {
                // A new database: nothing can be sealed under another key yet.
                let cipher = match checked {
                    Some(cipher) => cipher,
                    None => Cipher::new(&keys.existing_or_new()?),
                };
                key_check::write_file(path, &cipher)?;
                let meta = db.open_tree(META)?;
                key_check::write_meta(&meta, &cipher)?;
                meta.insert(meta_keys::SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
                cipher
            }
            (Some(1), checked) => {
                let cipher = match checked {
                    Some(cipher) => cipher,
                    None => Cipher::new(&keys.existing_or_new()?),
                };
                drop(db);
                migrate::seal_database(path, &cipher)?;
                db = reopen(path)?;
                key_check::verify_meta(&db.open_tree(META)?, &cipher, keys)?;
                cipher
            }
            (Some(_), checked) => {
                let cipher = match checked {
                    Some(cipher) => cipher,
                    None => Cipher::new(&keys.existing()?),
                };
                key_check::verify_meta(&db.open_tree(META)?, &cipher, keys)?;
                if key_check::read_file(path)?.is_none() {
                    key_check::write_file(path, &cipher)?;
                }
                cipher
            }
        };
        let db = Arc::new(db);
        // The database holds the logins: only its owner may read it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(sled::Error::Io)?;
        }
        let tree = |name: &str| db.open_tree(name);
        let meta = tree(META)?;
        let id_base = id_base(&meta)?;
        let instance = match meta.get(meta_keys::INSTANCE)? {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => {
                let mut bytes = [0u8; 6];
                getrandom::fill(&mut bytes).map_err(|e| StoreError::random(&e))?;
                let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                meta.insert(meta_keys::INSTANCE, id.as_bytes())?;
                id
            }
        };
        let inner = Inner {
            committer: commit::Committer::start(Arc::downgrade(&db)).map_err(sled::Error::Io)?,
            cipher,
            id_base,
            instance,
            meta,
            txns: Recent::open(&db, TXN_IDS)?,
            events: Recent::open(&db, "event_ids")?,
            delivered: Recent::open(&db, "delivered")?,
            inbox: tree(INBOX)?,
            outbox: tree("outbox")?,
            management: tree("management")?,
            management_by_room: tree("management_by_room")?,
            logins: tree(LOGINS)?,
            ghosts: tree("ghosts")?,
            portals: tree("portals")?,
            portals_by_room: tree("portals_by_room")?,
            spaces: tree("spaces")?,
            buddies: tree("buddies")?,
            groups: tree("groups")?,
            message_ids: tree("message_ids")?,
            chatrooms: tree("chatrooms")?,
            members: tree("members")?,
            told: tree("told")?,
            suggested: tree("suggested")?,
            auth_requests: tree("auth_requests")?,
            bridge_state: tree("bridge_state")?,
            last_set: tree("last_set")?,
            xmpp_inbox: tree(XMPP_INBOX)?,
            xmpp_subscriptions: tree("xmpp_subscriptions")?,
            xmpp_occupants: tree("xmpp_occupants")?,
            avatars: tree("avatars")?,
            files: tree("files")?,
            db,
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// Opens `dir/db` with its key in `dir/db.key` (tests, which reopen what they just
    /// closed: see [`reopen`]).
    #[cfg(test)]
    pub(crate) fn open_in(dir: &Path) -> Result<Store> {
        Store::open_retrying(&dir.join("db"), &KeySource::file(&dir.join("db.key")))
    }

    /// [`Store::open`], waiting for a lock this process just released (tests).
    #[cfg(test)]
    pub(crate) fn open_retrying(path: &Path, keys: &KeySource) -> Result<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(path, keys) {
                Err(StoreError::Sled(sled::Error::Io(e)))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    /// A new id, above every id this database gave before.
    fn next_id(&self) -> Result<u64> {
        Ok(self.id_base + self.db.generate_id()?)
    }

    fn seal(&self, tree: &'static str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        self.cipher.seal(tree, key, plain)
    }

    fn unseal(&self, tree: &'static str, key: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        self.cipher
            .open(tree, key, sealed)
            .ok_or(StoreError::Undecryptable { tree })
    }

    /// The key that signs media links (created on first use, kept sealed in the
    /// database: whoever has it can make links to any file the bridge can fetch).
    pub fn media_key(&self) -> Result<Vec<u8>> {
        let name = meta_keys::MEDIA_KEY.as_bytes();
        if let Some(sealed) = self.meta.get(name)? {
            return self.unseal(META, name, &sealed);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| StoreError::random(&e))?;
        let sealed = self.seal(META, name, &key)?;
        // Another caller may have raced us: the first key written wins.
        let _ = self
            .meta
            .compare_and_swap(name, None as Option<&[u8]>, Some(sealed))?;
        match self.meta.get(name)? {
            Some(sealed) => self.unseal(META, name, &sealed),
            None => Ok(key.to_vec()),
        }
    }

    pub fn schema_version(&self) -> Result<Option<u32>> {
        schema_of(&self.meta)
    }

    /// Makes everything written so far durable (a group commit: concurrent callers
    /// share one flush).
    pub async fn flush(&self) -> Result<()> {
        self.committer.wait().await.map_err(StoreError::Flush)
    }

    /// Asks for a flush soon, without waiting for it (e.g. after marking something done:
    /// losing the mark in a crash only repeats work, but the sooner it is on disk the
    /// smaller that window).
    pub fn flush_soon(&self) {
        self.committer.request();
    }

    /// Lets what was written so far ride on the next flush somebody needs anyway, at most
    /// [`commit::LATER`] from now, without a flush of its own (the "handled" mark of an
    /// inbox event: in a burst, the next transaction's flush carries it).
    /// [`Store::settle`] with the returned ticket makes sure of it sooner.
    pub fn flush_later(&self) -> FlushTicket {
        FlushTicket(self.committer.later())
    }

    /// Waits until the writes before `ticket` are on disk: at once when a flush since
    /// then covered them, else with a flush of its own.
    pub async fn settle(&self, ticket: FlushTicket) -> Result<()> {
        self.committer
            .settle(ticket.0)
            .await
            .map_err(StoreError::Flush)
    }

    /// Forgets transaction ids, event ids and delivery records past their age or count
    /// limits. Returns how many were forgotten.
    pub fn prune_dedupe_records(&self, now_ms: u64) -> Result<usize> {
        let oldest = now_ms.saturating_sub(DEDUPE_MAX_AGE_MS);
        Ok(self.txns.prune(oldest, DEDUPE_MAX_TXNS)?
            + self.events.prune(oldest, DEDUPE_MAX_EVENTS)?
            + self.delivered.prune(oldest, DELIVERED_MAX)?)
    }

    /// The key of a conversation: its portal on Matrix, its queue in the outbox.
    pub(crate) fn portal_key(user: &str, network: NetworkId, chat: &ChatId) -> Vec<u8> {
        let (kind, id) = match chat {
            ChatId::Direct(id) => ("d", id.as_str()),
            ChatId::Group(id) => ("g", id.as_str()),
            ChatId::Room(id) => ("r", id.as_str()),
        };
        // Shared chatrooms belong to nobody in particular: the owner part is empty.
        // (one per front: `shared_owner`).
        let owner = if chat.is_shared() {
            crate::model::shared_owner(user)
        } else {
            user
        };
        key(&[owner, network.as_str(), kind, id])
    }

    /// The sealed entries of a queue tree (the inboxes), oldest first.
    fn queue_pending(&self, tree: &sled::Tree, name: &'static str) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut pending = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let id =
                k.as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        tree: name,
                        error: "key is not 8 bytes".into(),
                    })?;
            match self.unseal(name, &k, &v) {
                Ok(bytes) => pending.push((id, bytes)),
                Err(e) => tracing::error!(
                    id,
                    tree = name,
                    "an event waiting to be handled is kept unhandled: {e}"
                ),
            }
        }
        Ok(pending)
    }

    fn queue_push(&self, tree: &sled::Tree, name: &'static str, bytes: &[u8]) -> Result<u64> {
        let id = self.next_id()?;
        let k = id.to_be_bytes();
        tree.insert(k, self.seal(name, &k, bytes)?)?;
        Ok(id)
    }

    fn queue_get(&self, tree: &sled::Tree, name: &'static str, id: u64) -> Result<Option<Vec<u8>>> {
        let k = id.to_be_bytes();
        tree.get(k)?.map(|v| self.unseal(name, &k, &v)).transpose()
    }
}

fn schema_of(meta: &sled::Tree) -> Result<Option<u32>> {
    meta.get(meta_keys::SCHEMA)?
        .map(|v| {
            v.as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: META,
                    error: "schema version is not 4 bytes".into(),
                })
        })
        .transpose()
}

fn id_base(meta: &sled::Tree) -> Result<u64> {
    match meta.get(meta_keys::ID_BASE)? {
        None => Ok(0),
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                tree: META,
                error: "id base is not 8 bytes".into(),
            }),
    }
}

/// Opens a database this process closed a moment ago: sled's I/O threads may hold its
/// lock for a moment after the last handle is dropped.
fn reopen(path: &Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return Ok(result?),
        }
    }
}

/// Creates a folder (and its parents) that only its owner can open.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        v: RECORD_VERSION,
        data: value,
    })
    .expect("records serialise")
}

fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T> {
    let env: Envelope<T> = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        error: e.to_string(),
    })?;
    if env.v > RECORD_VERSION {
        return Err(StoreError::Corrupt {
            tree,
            error: format!("record version {} is newer than this bridge", env.v),
        });
    }
    Ok(env.data)
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, name: &'static str, k: &[u8]) -> Result<Option<T>> {
    tree.get(k)?.map(|v| decode(name, &v)).transpose()
}

fn put<T: Serialize>(tree: &sled::Tree, k: &[u8], value: &T) -> Result<()> {
    tree.insert(k, encode(value))?;
    Ok(())
}

fn scan<T: DeserializeOwned>(tree: &sled::Tree, name: &'static str, pre: &[u8]) -> Result<Vec<T>> {
    tree.scan_prefix(pre)
        .map(|kv| decode(name, &kv?.1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written before the user key was renamed still read, and are written the
    /// same way: the field stays `mxid` on disk.
    #[test]
    fn stored_records_keep_the_user_field_name() {
        let login: LoginRecord = serde_json::from_str(
            r#"{"mxid":"@a:x","network":"icq","legacy_id":"1","password":"p"}"#,
        )
        .expect("an old login record reads");
        assert_eq!(login.user, "@a:x");
        assert_eq!(serde_json::to_value(&login).unwrap()["mxid"], "@a:x");
        let entry: crate::model::OutboxEntry = serde_json::from_str(
            r#"{"mxid":"xmpp:a@x","network":"mig33","chat":{"Room":"lobby"},"received_ms":1,
                "item":{"type":"left"}}"#,
        )
        .expect("an old outbox entry reads");
        assert_eq!(entry.user, "xmpp:a@x");
        assert_eq!(serde_json::to_value(&entry).unwrap()["mxid"], "xmpp:a@x");
    }

    fn event<'a>(id: Option<&'a str>, bytes: &'a [u8]) -> IncomingEvent<'a> {
        IncomingEvent {
            event_id: id,
            bytes,
        }
    }

    fn inbox_ids(accepted: Accepted) -> Vec<u64> {
        match accepted {
            Accepted::New(ids) => ids.into_iter().map(|(id, _)| id).collect(),
            Accepted::Repeat => panic!("unexpected repeat"),
        }
    }

    #[tokio::test]
    async fn transaction_dedupe_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open_in(dir.path()).unwrap();
            let events = [event(Some("$a"), b"{}"), event(Some("$b"), b"[]")];
            let ids = inbox_ids(store.accept_transaction("t1", b"d1", &events, 10).unwrap());
            assert_eq!(ids.len(), 2);
            assert_eq!(
                store.accept_transaction("t1", b"d1", &events, 11).unwrap(),
                Accepted::Repeat
            );
            store.inbox_done(ids[0]).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(
            store.accept_transaction("t1", b"d1", &[], 12).unwrap(),
            Accepted::Repeat
        );
        assert!(store.event_seen("$a").unwrap());
        // The unprocessed event is still there after the reopen.
        let pending = store.inbox_pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].1, b"[]");
        assert_eq!(store.schema_version().unwrap(), Some(SCHEMA_VERSION));
    }

    /// A crash can leave an event's inbox entry without its event-id record or the
    /// transaction's (the writes are not one sled transaction): the start-up repair
    /// records the id, so the homeserver's retry does not put the event in twice.
    #[test]
    fn an_entry_left_without_its_record_is_not_accepted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let bytes = br#"{"event_id":"$a"}"#;
        let events = [event(Some("$a"), bytes)];
        inbox_ids(store.accept_transaction("t1", b"d1", &events, 10).unwrap());
        // What a crash right after the inbox entry leaves on disk.
        store.events.by_key.remove("$a").unwrap();
        store.txns.by_key.remove("t1").unwrap();
        let event_id = |b: &[u8]| -> Option<String> {
            serde_json::from_slice::<serde_json::Value>(b).ok()?["event_id"]
                .as_str()
                .map(str::to_owned)
        };
        assert_eq!(store.claim_pending_events(event_id, 20).unwrap(), (1, 0));
        assert_eq!(store.claim_pending_events(event_id, 21).unwrap(), (0, 0));
        let again = inbox_ids(store.accept_transaction("t1", b"d1", &events, 30).unwrap());
        assert!(again.is_empty(), "the retried event is not accepted again");
        assert_eq!(store.inbox_pending().unwrap().len(), 1);
    }

    /// A crash inside `inbox_push_new`'s take-back (the other path recorded the id
    /// between the entry and its record) leaves the event in the inbox twice; start-up
    /// keeps the first entry only, so it is handled once.
    #[test]
    fn an_event_left_in_the_inbox_twice_is_handled_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let first = store.inbox_push_new(Some("$a"), br#"{"event_id":"$a","n":1}"#, 1);
        // The racing path's entry, written before its record failed the compare-and-swap.
        let second = store.inbox_push(br#"{"event_id":"$a","n":2}"#).unwrap();
        let other = store.inbox_push(br#"{"event_id":"$b"}"#).unwrap();
        let event_id = |b: &[u8]| -> Option<String> {
            serde_json::from_slice::<serde_json::Value>(b).ok()?["event_id"]
                .as_str()
                .map(str::to_owned)
        };
        assert_eq!(store.claim_pending_events(event_id, 2).unwrap(), (1, 1));
        let left: Vec<u64> = store
            .inbox_pending()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left, vec![first.unwrap().unwrap(), other]);
        assert!(!left.contains(&second));
    }

    /// The catch-up and the transactions put an event in the inbox through one door: the
    /// first records its id, the other gets `None` and adds nothing.
    #[test]
    fn an_event_enters_the_inbox_once_by_either_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let first = store.inbox_push_new(Some("$a"), b"{}", 1).unwrap();
        assert!(first.is_some());
        assert!(store.event_seen("$a").unwrap());
        assert_eq!(store.inbox_push_new(Some("$a"), b"{}", 2).unwrap(), None);
        let events = [event(Some("$a"), b"{}")];
        let again = inbox_ids(store.accept_transaction("t1", b"d1", &events, 3).unwrap());
        assert!(again.is_empty(), "the transaction's copy is dropped");
        assert!(
            store.inbox_push_new(None, b"[]", 4).unwrap().is_some(),
            "no id: always added"
        );
        assert_eq!(store.inbox_pending().unwrap().len(), 2);
    }

    /// Synapse restarts its transaction ids after its own restart: the same id with other
    /// content is a new transaction; events seen before are still left out.
    #[test]
    fn a_reused_transaction_id_with_new_content_is_processed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let old = [event(Some("$old"), b"1")];
        inbox_ids(store.accept_transaction("1", b"old", &old, 10).unwrap());
        let new = [
            event(Some("$old"), b"1"),
            event(Some("$new"), b"2"),
            event(None, b"typing"),
        ];
        match store.accept_transaction("1", b"new", &new, 20).unwrap() {
            Accepted::New(ids) => {
                let indexes: Vec<usize> = ids.iter().map(|(_, i)| *i).collect();
                assert_eq!(indexes, vec![1, 2], "the event seen before is left out");
            }
            Accepted::Repeat => panic!("content differs: not a repeat"),
        }
        assert_eq!(
            store.accept_transaction("1", b"new", &new, 30).unwrap(),
            Accepted::Repeat
        );
    }

    #[test]
    fn dedupe_records_are_pruned_by_age_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        for i in 0..10u64 {
            let id = format!("$e{i}");
            let events = [event(Some(&id), b"{}")];
            store
                .accept_transaction(&format!("t{i}"), b"d", &events, i * 1000)
                .unwrap();
        }
        assert_eq!(store.txns.len(), 10);
        // Age: everything older than 5 s goes.
        assert_eq!(store.txns.prune(5000, 100).unwrap(), 5);
        assert!(!store.txns.contains(b"t4").unwrap());
        assert!(store.txns.contains(b"t5").unwrap());
        // Count: only the newest 2 stay.
        assert_eq!(store.events.prune(0, 2).unwrap(), 8);
        assert!(store.event_seen("$e9").unwrap() && store.event_seen("$e8").unwrap());
        assert!(!store.event_seen("$e7").unwrap());
        // A key recorded again keeps its newer record when its old age entry is pruned.
        store.txns.insert(b"t5", b"again", 99_000).unwrap();
        store.txns.prune(9000, 100).unwrap();
        assert_eq!(store.txns.get(b"t5").unwrap().unwrap().1, b"again");
    }

    #[cfg(unix)]
    #[test]
    fn database_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        Store::open_in(dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open_in(dir.path()).unwrap();
            store.meta.insert("schema", &99u32.to_be_bytes()).unwrap();
            store.db.flush().unwrap();
        }
        assert!(matches!(
            Store::open_in(dir.path()),
            Err(StoreError::TooNew { found: 99 })
        ));
    }

    #[test]
    fn portals_and_management_rooms_by_room() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let p = PortalRecord {
            mxid: "@a:x".into(),
            network: NetworkId::Icq,
            chat: ChatId::Direct("42".into()),
            room_id: "!r:x".into(),
        };
        store.put_portal(&p).unwrap();
        assert_eq!(store.portal_by_room("!r:x").unwrap(), Some(p.clone()));
        assert_eq!(
            store
                .portal("@a:x", NetworkId::Icq, &ChatId::Direct("42".into()))
                .unwrap(),
            Some(p.clone())
        );
        assert_eq!(store.portals_of("@a:x", NetworkId::Icq).unwrap().len(), 1);
        assert!(
            store
                .portals_of("@a:xy", NetworkId::Icq)
                .unwrap()
                .is_empty(),
            "prefix scans stop at the user"
        );
        store.set_management_room("@a:x", "!m:x").unwrap();
        store.set_management_room("@a:x", "!m2:x").unwrap();
        assert_eq!(store.management_owner("!m:x").unwrap(), None);
        assert_eq!(
            store.management_owner("!m2:x").unwrap().as_deref(),
            Some("@a:x")
        );
    }

    #[test]
    fn buddies_diff_and_message_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let c = |id: &str| Contact {
            id: id.into(),
            display_name: None,
            groups: vec![],
        };
        let new = store
            .replace_buddies("@a:x", NetworkId::Icq, &[c("1"), c("2")])
            .unwrap();
        assert_eq!(new.len(), 2);
        let new = store
            .replace_buddies("@a:x", NetworkId::Icq, &[c("2"), c("3")])
            .unwrap();
        assert_eq!(new, vec![c("3")]);
        assert_eq!(
            store.buddies("@a:x", NetworkId::Icq).unwrap(),
            vec![c("2"), c("3")]
        );
        assert!(store
            .record_legacy_message("@a:x", NetworkId::Icq, "m1")
            .unwrap());
        assert!(!store
            .record_legacy_message("@a:x", NetworkId::Icq, "m1")
            .unwrap());
    }

    #[test]
    fn unacknowledged_messages_are_counted_until_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let net = NetworkId::Icq;
        {
            let store = Store::open_in(dir.path()).unwrap();
            assert_eq!(store.unacknowledged("@a:x", net, "k").unwrap(), 0);
            // Two identical messages in flight, one acknowledged before a crash.
            store.add_unacknowledged("@a:x", net, "k").unwrap();
            store.add_unacknowledged("@a:x", net, "k").unwrap();
            store.acknowledged("@a:x", net, "k").unwrap();
            store.db.flush().unwrap();
        }
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(store.unacknowledged("@a:x", net, "k").unwrap(), 1);
        assert_eq!(store.unacknowledged("@b:x", net, "k").unwrap(), 0);
        store.acknowledged("@a:x", net, "k").unwrap();
        store.acknowledged("@a:x", net, "k").unwrap(); // never below zero
        assert_eq!(store.unacknowledged("@a:x", net, "k").unwrap(), 0);
        // The count does not pass for a legacy message id.
        assert!(store.record_legacy_message("@a:x", net, "k").unwrap());
        store.add_unacknowledged("@a:x", net, "k2").unwrap();
        store.forget_login_data("@a:x", net).unwrap();
        assert_eq!(store.unacknowledged("@a:x", net, "k2").unwrap(), 0);
    }

    #[test]
    fn shared_chatrooms_have_one_portal_and_a_member_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let room = ChatId::Room("lobby".into());
        let p = PortalRecord {
            mxid: "@a:x".into(),
            network: NetworkId::Mig33,
            chat: room.clone(),
            room_id: "!r:x".into(),
        };
        store.put_portal(&p).unwrap();
        let found = store.portal("@b:x", NetworkId::Mig33, &room).unwrap();
        assert_eq!(found, Some(p), "any user finds the shared portal");
        store
            .add_chatroom_member("@b:x", NetworkId::Mig33, "lobby")
            .unwrap();
        store
            .add_chatroom_member("@a:x", NetworkId::Mig33, "lobby")
            .unwrap();
        let members = store.chatroom_members(NetworkId::Mig33, "lobby").unwrap();
        assert_eq!(members, vec!["@a:x", "@b:x"]);
        assert_eq!(
            store.chatrooms_of("@a:x", NetworkId::Mig33).unwrap(),
            vec!["lobby"]
        );
        store
            .remove_chatroom_member("@a:x", NetworkId::Mig33, "lobby")
            .unwrap();
        let members = store.chatroom_members(NetworkId::Mig33, "lobby").unwrap();
        assert_eq!(members, vec!["@b:x"]);
    }
}
