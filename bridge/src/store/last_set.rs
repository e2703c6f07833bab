//! The `last_set` tree: what the bridge last set or said somewhere that a restart would
//! otherwise set or say again unchanged (the bot's profile, a space's topic, a login's
//! connection notice, the pointer from a room the bot could not remove passwords in to
//! the management room that replaced it), so the homeserver and the user hear of it
//! again only when it changes. Keyed `place \0 what` (a user or room id, then what was
//! set there).

use super::{key, Result, Store};

impl Store {
    /// What was last set as `what` at `place`, if anything was.
    pub fn last_set(&self, place: &str, what: &str) -> Result<Option<String>> {
        Ok(self
            .last_set
            .get(key(&[place, what]))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Records `value` as set; true when it differs from what was recorded (it is news).
    pub fn put_last_set(&self, place: &str, what: &str, value: &str) -> Result<bool> {
        let old = self
            .last_set
            .insert(key(&[place, what]), value.as_bytes())?;
        Ok(old.as_deref() != Some(value.as_bytes()))
    }

    /// Forgets what was recorded as `what` at `place` (it must be set again).
    pub fn forget_last_set(&self, place: &str, what: &str) -> Result<()> {
        self.last_set.remove(key(&[place, what]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_set_survives_a_reopen_and_changes_are_news() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open_in(dir.path()).unwrap();
            assert_eq!(store.last_set("!space:x", "topic").unwrap(), None);
            assert!(store
                .put_last_set("!space:x", "topic", "Groups: A")
                .unwrap());
            assert!(!store
                .put_last_set("!space:x", "topic", "Groups: A")
                .unwrap());
            assert!(store.put_last_set("@bot:x", "displayname", "Bot").unwrap());
            store.db.flush().unwrap();
        }
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(
            store.last_set("!space:x", "topic").unwrap().as_deref(),
            Some("Groups: A")
        );
        assert!(store
            .put_last_set("!space:x", "topic", "Groups: B")
            .unwrap());
        store.forget_last_set("@bot:x", "displayname").unwrap();
        assert_eq!(store.last_set("@bot:x", "displayname").unwrap(), None);
        // Places do not bleed into each other.
        assert_eq!(store.last_set("!space:x\0topic", "").unwrap(), None);
    }
}
