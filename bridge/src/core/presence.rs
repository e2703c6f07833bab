//! Contacts' presence -> the users' fronts, off the logins' paths.
//!
//! Presence is state, not history: only the latest value per contact matters. Updates
//! are coalesced per login and contact (a contact flapping ten times while the front is
//! slow costs one update) and pushed by a few workers in parallel, so a contact list of
//! a thousand contacts coming online does not hold up the login that reported them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::{Bridge, LoginKey, Presence};

/// Updates pushed at once.
const WORKERS: usize = 4;
/// Contacts with a pending update at most; beyond it updates are dropped (logged): a
/// server inventing contacts must not grow the bridge's memory.
const MAX_PENDING: usize = 100_000;

type Who = (LoginKey, String);

#[derive(Default)]
pub(crate) struct PresenceQueue {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    latest: HashMap<Who, Presence>,
    order: VecDeque<Who>,
    workers: usize,
    dropped: u64,
}

impl PresenceQueue {
    /// Records the latest presence; true when a new worker should start.
    fn update(&self, who: Who, presence: Presence) -> bool {
        let mut s = self.state.lock().expect("presence");
        if !s.latest.contains_key(&who) {
            if s.latest.len() >= MAX_PENDING {
                s.dropped += 1;
                if s.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = s.dropped,
                        "presence updates dropped: too many pending"
                    );
                }
                return false;
            }
            s.order.push_back(who.clone());
        }
        s.latest.insert(who, presence);
        if s.workers < WORKERS && s.workers < s.order.len() {
            s.workers += 1;
            return true;
        }
        false
    }

    fn take(&self) -> Option<(Who, Presence)> {
        let mut s = self.state.lock().expect("presence");
        while let Some(who) = s.order.pop_front() {
            if let Some(p) = s.latest.remove(&who) {
                return Some((who, p));
            }
        }
        s.workers -= 1;
        None
    }

    pub(crate) fn pending(&self) -> usize {
        self.state.lock().expect("presence").order.len()
    }
}

impl Bridge {
    pub(crate) fn update_presence(
        self: &Arc<Self>,
        login: &LoginKey,
        who: String,
        presence: Presence,
    ) {
        if self.presence.update((login.clone(), who), presence) {
            let bridge = self.clone();
            tokio::spawn(async move {
                while let Some(((login, who), presence)) = bridge.presence.take() {
                    if let Some(front) = bridge.front_for(&login.user) {
                        front.presence(&login, &who, &presence).await;
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::PresenceState;

    fn login() -> LoginKey {
        LoginKey {
            user: "@a:x".into(),
            network: crate::core::NetworkId::Icq,
        }
    }

    fn p(state: PresenceState) -> Presence {
        Presence {
            state,
            status: None,
        }
    }

    #[test]
    fn updates_for_one_ghost_are_coalesced() {
        let q = PresenceQueue::default();
        let bob = (login(), "2".to_string());
        assert!(q.update(bob.clone(), p(PresenceState::Online)));
        assert!(!q.update(bob.clone(), p(PresenceState::Away)));
        assert!(!q.update(bob.clone(), p(PresenceState::Offline)));
        assert_eq!(q.pending(), 1);
        assert_eq!(q.take(), Some((bob, p(PresenceState::Offline))));
        assert_eq!(q.take(), None);
    }

    #[test]
    fn a_few_workers_at_most() {
        let q = PresenceQueue::default();
        let started = (0..50)
            .filter(|i| q.update((login(), i.to_string()), p(PresenceState::Online)))
            .count();
        assert_eq!(started, WORKERS);
    }
}
