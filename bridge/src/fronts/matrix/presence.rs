//! What presence each ghost was last given, so that the same presence reported again
//! for the same ghost (by several users' logins that share a contact, or a contact list
//! repeated on reconnect) costs no homeserver request. A repeat is sent again once
//! [`FRESH`] has passed: homeservers let a presence nobody refreshes go stale.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use matrix_sdk::ruma::presence::PresenceState;
use matrix_sdk::ruma::OwnedUserId;

/// How long a presence set on a ghost counts as current.
const FRESH: Duration = Duration::from_secs(300);
/// Ghosts remembered at most; beyond it the memory starts afresh (a few repeats more).
const MAX_GHOSTS: usize = 200_000;

/// A presence (state, status message) and when it was set.
type Given = (PresenceState, Option<String>, Instant);

#[derive(Default)]
pub struct PresenceMemory(Mutex<HashMap<OwnedUserId, Given>>);

impl PresenceMemory {
    /// Whether `ghost` should be given this presence now; if so it is remembered as set
    /// (call [`PresenceMemory::forget`] if setting it failed).
    pub fn claim(
        &self,
        ghost: &OwnedUserId,
        state: &PresenceState,
        status: &Option<String>,
    ) -> bool {
        self.claim_at(ghost, state, status, Instant::now())
    }

    fn claim_at(
        &self,
        ghost: &OwnedUserId,
        state: &PresenceState,
        status: &Option<String>,
        now: Instant,
    ) -> bool {
        let mut set = self.0.lock().expect("presence memory");
        if let Some((s, m, at)) = set.get(ghost) {
            if s == state && m == status && now.saturating_duration_since(*at) < FRESH {
                return false;
            }
        }
        if set.len() >= MAX_GHOSTS && !set.contains_key(ghost) {
            set.clear();
        }
        set.insert(ghost.clone(), (state.clone(), status.clone(), now));
        true
    }

    pub fn forget(&self, ghost: &OwnedUserId) {
        self.0.lock().expect("presence memory").remove(ghost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_presence_again_is_sent_once_until_it_goes_stale() {
        let memory = PresenceMemory::default();
        let bob: OwnedUserId = "@icq_2:x".try_into().unwrap();
        let carol: OwnedUserId = "@icq_3:x".try_into().unwrap();
        let t0 = Instant::now();
        let online = PresenceState::Online;
        assert!(memory.claim_at(&bob, &online, &None, t0));
        assert!(!memory.claim_at(&bob, &online, &None, t0 + Duration::from_secs(1)));
        assert!(memory.claim_at(&carol, &online, &None, t0));
        // A change is sent; so is a repeat once stale.
        let away = PresenceState::Unavailable;
        assert!(memory.claim_at(&bob, &away, &None, t0 + Duration::from_secs(2)));
        assert!(memory.claim_at(
            &bob,
            &away,
            &Some("lunch".into()),
            t0 + Duration::from_secs(3)
        ));
        assert!(memory.claim_at(
            &bob,
            &away,
            &Some("lunch".into()),
            t0 + FRESH + Duration::from_secs(3)
        ));
        // A failed send is forgotten: the next report tries again.
        memory.forget(&carol);
        assert!(memory.claim_at(&carol, &online, &None, t0 + Duration::from_secs(4)));
    }
}
