//! The bridge's state in numbers, for the metrics: logins per network and state, what
//! waits in the outbox and the inbox. Computed from the core's own bookkeeping when
//! asked, so the numbers cannot drift from what `list` shows.

use std::collections::BTreeMap;

use super::{Bridge, LoginState, NetworkId};
use crate::metrics::{Metrics, NetworkLabel, NetworkState};

/// The `state` label of a login.
fn state_label(state: &LoginState) -> &'static str {
    match state {
        LoginState::Connecting => "connecting",
        LoginState::Connected => "connected",
        LoginState::Disconnected(_) => "disconnected",
    }
}

const STATES: [&str; 3] = ["connecting", "connected", "disconnected"];

impl Bridge {
    /// Sets the metrics' state gauges from the bridge's current state. Every enabled
    /// network gets every series, zeros included, so a state that empties reads 0
    /// instead of keeping its last value.
    pub fn refresh_metrics(&self, m: &Metrics) {
        let mut logins: BTreeMap<(NetworkId, &'static str), i64> = BTreeMap::new();
        let mut networks: Vec<NetworkId> = self.config.enabled_networks().map(|(n, _)| n).collect();
        for (key, live) in self.logins.lock().expect("logins lock").iter() {
            *logins
                .entry((key.network, state_label(&live.state)))
                .or_default() += 1;
            networks.push(key.network);
        }
        networks.sort();
        networks.dedup();
        let outbox = self.outbox.by_network();
        for network in networks {
            for state in STATES {
                let n = logins.get(&(network, state)).copied().unwrap_or(0);
                m.logins
                    .get_or_create(&NetworkState {
                        network: network.as_str(),
                        state,
                    })
                    .set(n);
            }
            let (depth, oldest) = outbox.get(&network).copied().unwrap_or_default();
            let label = NetworkLabel {
                network: network.as_str(),
            };
            m.outbox_depth.get_or_create(&label).set(depth as i64);
            m.outbox_oldest
                .get_or_create(&label)
                .set(oldest.as_secs_f64());
        }
        m.inbox_depth
            .set(self.queue_lengths().front_to_legacy as i64);
    }
}
