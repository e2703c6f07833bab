//! The `bridge_state` tree: what the bridge last set as a portal's bridge state
//! (MSC2346), so it is sent once and again only when it changes.

use serde::{Deserialize, Serialize};

use super::{get, put, scan, PortalRecord, Result, Store};

/// The bridge state set in one room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeStateRecord {
    pub state_key: String,
    pub content: serde_json::Value,
}

impl Store {
    pub fn bridge_state(&self, room_id: &str) -> Result<Option<BridgeStateRecord>> {
        get(&self.bridge_state, "bridge_state", room_id.as_bytes())
    }

    pub fn put_bridge_state(&self, room_id: &str, record: &BridgeStateRecord) -> Result<()> {
        put(&self.bridge_state, room_id.as_bytes(), record)
    }

    /// Every portal of every user (start-up checks).
    pub fn all_portals(&self) -> Result<Vec<PortalRecord>> {
        scan(&self.portals, "portals", &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatId, NetworkId};

    #[test]
    fn bridge_state_is_remembered_per_room() {
        let dir = tempfile::tempdir().unwrap();
        let record = BridgeStateRecord {
            state_key: "net.retrobridge://icq/h:1/42".into(),
            content: serde_json::json!({ "bridgebot": "@bot:x" }),
        };
        {
            let store = Store::open_in(dir.path()).unwrap();
            assert_eq!(store.bridge_state("!r:x").unwrap(), None);
            store.put_bridge_state("!r:x", &record).unwrap();
            for (user, room) in [("@a:x", "!r:x"), ("@b:x", "!s:x")] {
                store
                    .put_portal(&PortalRecord {
                        mxid: user.into(),
                        network: NetworkId::Icq,
                        chat: ChatId::Direct("42".into()),
                        room_id: room.into(),
                    })
                    .unwrap();
            }
            store.db.flush().unwrap();
        }
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(store.bridge_state("!r:x").unwrap(), Some(record));
        assert_eq!(store.all_portals().unwrap().len(), 2);
    }
}
