//! Contacts' presence -> their ghosts' Matrix presence, off the logins' paths.
//!
//! Presence is state, not history: only the latest value per ghost matters. Updates are
//! coalesced per ghost (a contact flapping ten times while the homeserver is slow costs
//! one request) and pushed by a few workers in parallel, so a contact list of a
//! thousand contacts coming online does not hold up the login that reported them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use matrix_sdk::ruma::presence::PresenceState as MatrixPresence;

use super::{Bridge, NetworkId, Presence, PresenceState};

/// Requests to the homeserver at once.
const WORKERS: usize = 4;
/// Ghosts with a pending update at most; beyond it updates are dropped (logged): a
/// server inventing contacts must not grow the bridge's memory.
const MAX_PENDING: usize = 100_000;

type Who = (NetworkId, String);

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
        network: NetworkId,
        who: String,
        presence: Presence,
    ) {
        if self.presence.update((network, who), presence) {
            let bridge = self.clone();
            tokio::spawn(async move {
                while let Some(((network, who), presence)) = bridge.presence.take() {
                    bridge.push_presence(network, &who, presence).await;
                }
            });
        }
    }

    async fn push_presence(&self, network: NetworkId, who: &str, presence: Presence) {
        let ghost = self.ghost_id(network, who);
        let state = match presence.state {
            PresenceState::Online => MatrixPresence::Online,
            PresenceState::Away | PresenceState::Busy => MatrixPresence::Unavailable,
            PresenceState::Invisible | PresenceState::Offline => MatrixPresence::Offline,
        };
        let result = async {
            super::portals::ensure_ghost_registered(self, &ghost).await?;
            self.matrix
                .set_presence(&ghost, state, presence.status)
                .await?;
            anyhow::Ok(())
        }
        .await;
        // The next update repairs a lost one; nobody reads presence history.
        if let Err(e) = result {
            tracing::debug!(%ghost, "could not set presence: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(state: PresenceState) -> Presence {
        Presence {
            state,
            status: None,
        }
    }

    #[test]
    fn updates_for_one_ghost_are_coalesced() {
        let q = PresenceQueue::default();
        let bob = (NetworkId::Icq, "2".to_string());
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
            .filter(|i| q.update((NetworkId::Icq, i.to_string()), p(PresenceState::Online)))
            .count();
        assert_eq!(started, WORKERS);
    }
}
