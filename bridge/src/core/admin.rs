//! The management room's admin commands (users with `admin` permission): the bridge's
//! version, its statistics, every user's logins, and logging someone else out.
//! [`super::commands`] checks the permission before calling in here.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::accounts;
use super::{Bridge, NetworkId};

/// The order `stats` counts states in.
const STATES: [&str; 5] = [
    "connected",
    "connecting",
    "disconnected",
    "stopped",
    "not_running",
];

/// Answers an admin command (`name` is one of `commands::ADMIN_COMMANDS`).
pub async fn command(bridge: &Arc<Bridge>, name: &str, args: &[&str]) -> String {
    match name {
        "version" => version(bridge),
        "stats" => stats(bridge),
        "logins" => logins(bridge),
        "logout-user" => logout_user(bridge, args).await,
        other => format!("Unknown command {other:?}. Type `help` for the list of commands."),
    }
}

fn version(bridge: &Bridge) -> String {
    let networks: Vec<&str> = bridge
        .config
        .enabled_networks()
        .map(|(n, _)| n.as_str())
        .collect();
    format!(
        "retrobridge {} (networks enabled: {})",
        env!("CARGO_PKG_VERSION"),
        if networks.is_empty() {
            "none".to_owned()
        } else {
            networks.join(", ")
        }
    )
}

/// Logins per network and state (enabled networks always, zeros left out), and the
/// queues' depths.
fn stats(bridge: &Bridge) -> String {
    let mut counts: BTreeMap<NetworkId, BTreeMap<&'static str, usize>> = bridge
        .config
        .enabled_networks()
        .map(|(n, _)| (n, BTreeMap::new()))
        .collect();
    for (_, logins) in accounts::all_logins(bridge) {
        for login in logins {
            *counts
                .entry(login.network)
                .or_default()
                .entry(login.status.name())
                .or_default() += 1;
        }
    }
    let mut out = String::from("Logins:");
    for (network, states) in &counts {
        let parts: Vec<String> = STATES
            .iter()
            .filter_map(|s| {
                let n = states.get(s).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {}", s.replace('_', " ")))
            })
            .collect();
        let total: usize = states.values().sum();
        let text = if parts.is_empty() {
            "none".to_owned()
        } else {
            format!("{total} ({})", parts.join(", "))
        };
        out.push_str(&format!("\n  {}: {text}", network.display_name()));
    }
    let q = bridge.queue_lengths();
    out.push_str(&format!(
        "\nQueues: {} events from users waiting for the networks, {} legacy events waiting for the users, \
         {} login events, {} presence updates, {} notices",
        q.front_to_legacy, q.legacy_to_front, q.login_events, q.presence, q.notices
    ));
    out
}

/// Every user's logins, one line each, as `list` shows them.
fn logins(bridge: &Bridge) -> String {
    let all = accounts::all_logins(bridge);
    let total: usize = all.iter().map(|(_, l)| l.len()).sum();
    if total == 0 {
        return "Nobody has a login on this bridge.".into();
    }
    let mut out = format!("All logins ({total}):");
    for (user, logins) in &all {
        for login in logins {
            out.push_str(&format!(
                "\n- {user}: {}",
                super::commands::login_line(login)
            ));
        }
    }
    out
}

async fn logout_user(bridge: &Arc<Bridge>, args: &[&str]) -> String {
    const USAGE: &str = "Usage: logout-user <mxid> <network>";
    let (Some(user), Some(_), None) = (args.first(), args.get(1), args.get(2)) else {
        return USAGE.into();
    };
    if bridge.front_for(user).is_none() {
        return format!(
            "{user:?} is not a user id of the bridge (@name:server on Matrix, xmpp:name@server on XMPP). {USAGE}"
        );
    }
    let network = match accounts::parse_network(args.get(1).copied()) {
        Ok(n) => n,
        Err(e) => return e.to_string(),
    };
    let name = network.display_name();
    if !accounts::logout(bridge, user, network).await {
        return format!("{user} is not logged in to {name}.");
    }
    tracing::info!(%user, %network, "an admin logged a user out");
    bridge.notify(
        user,
        Some(network),
        &format!("An administrator of the bridge logged you out of {name}."),
    );
    format!("Logged {user} out of {name}.")
}
