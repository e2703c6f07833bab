//! A login's own events (connection state, contact list, typing, notices), handled in
//! order on the login's task (see [`super::intake`]): the core keeps the login's state
//! and words the notices; the user's front shows the rest ([`super::front::Front::login_event`]).
//! Messages and room membership go through the durable outbox instead
//! ([`super::outbox`]), presence through [`super::presence`].

use std::sync::Arc;

use super::{Bridge, LoginKey, LoginState, NetworkEvent};

pub async fn handle_network_event(bridge: &Arc<Bridge>, key: &LoginKey, event: NetworkEvent) {
    if let Err(e) = handle(bridge, key, event).await {
        tracing::warn!(user = %key.user, network = %key.network, "could not bridge a network event: {e:#}");
    }
}

async fn handle(bridge: &Arc<Bridge>, key: &LoginKey, event: NetworkEvent) -> anyhow::Result<()> {
    let net = key.network;
    match event {
        NetworkEvent::Connected { ref self_profile } => {
            let (before, _) = bridge.set_login_state(key, LoginState::Connected);
            to_front(bridge, key, &event).await?;
            if bridge
                .store
                .login(&key.user, net)?
                .is_some_and(|record| !record.proven)
            {
                bridge
                    .store
                    .update_login(&key.user, net, |record| record.proven = true)?;
                bridge.store.flush_soon();
            }
            let name = self_profile
                .display_name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let text = format!(
                "Connected to {} as {}{name}.",
                net.display_name(),
                self_profile.id
            );
            // A login the bridge resumed at start-up, or back from an outage too short
            // to be told, connected as the user last heard: nothing changed for them,
            // so no notice (a restart or a blip is not news). A login the user started
            // is always answered.
            let resumed = bridge.take_resumed(key);
            let started = matches!(before, Some(LoginState::Connecting)) && !resumed;
            let news = connection_news(bridge, key, &text)?;
            let announced = news || started;
            tracing::info!(user = %key.user, network = %net, announced, "login connected");
            if announced {
                bridge.notify(&key.user, Some(net), &text);
            }
        }
        NetworkEvent::Disconnected {
            ref reason,
            will_retry,
        } => {
            let (before, outage) =
                bridge.set_login_state(key, LoginState::Disconnected(reason.clone()));
            let next = if will_retry {
                " Reconnecting…".to_owned()
            } else {
                super::commands::mark_stopped(bridge, key, reason).await?;
                format!(" Send `reconnect {net}` to sign in here again.")
            };
            to_front(bridge, key, &event).await?;
            let text = format!("Disconnected from {}: {reason}.{next}", net.display_name());
            let (Some(outage), true, Some(LoginState::Connected)) = (outage, will_retry, before)
            else {
                connection_news(bridge, key, &text)?;
                bridge.notify(&key.user, Some(net), &text);
                return Ok(());
            };
            // A connected login's outage is told once it lasted OUTAGE_GRACE: a blip,
            // or the legacy server going down with the bridge (everything restarted
            // at once), is no news, and the next start stays quiet whatever stopped
            // first.
            let (bridge, key) = (bridge.clone(), key.clone());
            tokio::spawn(async move {
                tokio::time::sleep(OUTAGE_GRACE).await;
                if !bridge.in_outage(&key, outage) {
                    return;
                }
                match connection_news(&bridge, &key, &text) {
                    Ok(_) => bridge.notify(&key.user, Some(key.network), &text),
                    Err(e) => tracing::error!("could not record a connection notice: {e:#}"),
                }
            });
        }
        NetworkEvent::LoginFailed { ref reason } => {
            bridge.stop_login(&key.user, net);
            let proven = bridge
                .store
                .login(&key.user, net)?
                .is_some_and(|record| record.proven);
            let text = if proven {
                // It worked before: the server's or the operator's trouble (a certificate
                // gone bad, an outage that looks final) must not cost the user their
                // stored login. Kept, stopped, until they reconnect or log out.
                super::commands::mark_stopped(bridge, key, reason).await?;
                format!(
                    "Login to {} failed: {reason}. Your login is kept but stopped: send `reconnect {net}` \
                     to try again (once the problem is fixed), or `logout {net}` to remove it.",
                    net.display_name()
                )
            } else {
                // A first login the server refused (wrong password) is forgotten.
                bridge.store.remove_login(&key.user, net)?;
                // Durable before the user hears of it: a refused login must not come
                // back after a crash (sled only writes on flush).
                bridge.store.flush().await?;
                format!("Login to {} failed: {reason}", net.display_name())
            };
            to_front(bridge, key, &event).await?;
            bridge.notify(&key.user, Some(net), &text);
        }
        NetworkEvent::ContactList { .. }
        | NetworkEvent::ContactChanged(_)
        | NetworkEvent::Typing { .. } => to_front(bridge, key, &event).await?,
        NetworkEvent::Notice { text } => {
            bridge.notify(
                &key.user,
                Some(net),
                &format!("{}: {text}", net.display_name()),
            );
        }
        NetworkEvent::AddedBy { who, name } => {
            // Told once per contact, across reconnects and restarts.
            if bridge.store.first_suggestion(&key.user, net, &who)? {
                let item = match name {
                    Some(name) => format!("{who}\0{name}"),
                    None => who,
                };
                bridge.notify_grouped(key, "added you", item, added_you(net));
            }
        }
        NetworkEvent::AuthorizationRequest(ref request) => {
            // Only where the user can answer; kept (bounded) until they do, across
            // restarts; told once per request, however often the contact repeats it.
            if !net.capabilities().authorization {
                return Ok(());
            }
            let new = bridge.store.add_auth_request(&key.user, net, request)?;
            bridge.store.flush_soon();
            to_front(bridge, key, &event).await?;
            if new {
                bridge.notify(&key.user, Some(net), &authorization_asked(net, request));
            }
        }
        // Taken by the intake before they reach a login's queue.
        NetworkEvent::AvatarAnnounced {
            who,
            hash,
            descriptor,
        } => bridge.avatar_announced(key, &who, &hash, &descriptor).await,
        NetworkEvent::AvatarFetched { who, hash, result } => {
            bridge.avatar_fetched(key, &who, &hash, result).await
        }
        NetworkEvent::Message { .. }
        | NetworkEvent::File { .. }
        | NetworkEvent::Acknowledged { .. }
        | NetworkEvent::RoomMembers { .. }
        | NetworkEvent::RoomLeft { .. }
        | NetworkEvent::Presence { .. } => {}
    }
    Ok(())
}

/// How the people who added the user are told, one notice for all who came together.
/// Items are `id` or `id \0 name`.
fn added_you(net: super::NetworkId) -> super::notices::Wording {
    std::sync::Arc::new(move |items: &[String], more: usize| {
        let shown = |item: &String| match item.split_once('\0') {
            Some((id, name)) => format!("{id} ({name})"),
            None => item.clone(),
        };
        let id = |item: &String| item.split('\0').next().unwrap_or_default().to_owned();
        match items {
            [one] if more == 0 => format!(
                "{} has added you to their contact list. To add them back, send: add {net} {}",
                shown(one),
                id(one)
            ),
            _ => {
                let mut list: Vec<String> = items.iter().map(shown).collect();
                if more > 0 {
                    list.push(format!("and {more} more"));
                }
                let total = items.len() + more;
                format!(
                    "{total} people have added you to their {} contact list: {}. To add one back, send: add {net} <id> \
                     (e.g. add {net} {})",
                    net.display_name(),
                    list.join(", "),
                    items.first().map(id).unwrap_or_default()
                )
            }
        }
    })
}

/// What the user is told of an authorization request (its texts are cleaned already:
/// one line, no controls; notices are plain text that mentions nobody).
pub(crate) fn authorization_asked(
    net: super::NetworkId,
    request: &super::AuthorizationRequest,
) -> String {
    let who = &request.who;
    let name = match &request.nick {
        Some(nick) => format!("{nick} ({who})"),
        None => who.clone(),
    };
    let reason = match &request.reason {
        Some(reason) => format!(": {reason}"),
        None => String::new(),
    };
    format!(
        "{name} asks to add you to their contact list{reason}. Answer with `authorize {net} {who}` or `deny {net} {who}`."
    )
}

/// How long a connected login may be disconnected before the user is told (it
/// reconnects meanwhile, with its backoff).
const OUTAGE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Records the connection notice the user hears of a login; true when it differs from
/// the last one (a change, not a repeat).
fn connection_news(bridge: &Bridge, key: &LoginKey, text: &str) -> anyhow::Result<bool> {
    let what = format!("connection notice {}", key.network);
    Ok(bridge.store.put_last_set(&key.user, &what, text)?)
}

/// What the user's front shows of a login's event (its contacts, typing).
async fn to_front(bridge: &Bridge, key: &LoginKey, event: &NetworkEvent) -> anyhow::Result<()> {
    match bridge.front_for(&key.user) {
        Some(front) => front.login_event(key, event).await,
        None => Ok(()),
    }
}

/// `YYYY-MM-DD HH:MM UTC` for a time in milliseconds since the epoch.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date library for one line.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn authorization_notice() {
        let mut request = super::super::AuthorizationRequest {
            who: "1234".into(),
            nick: Some("bob".into()),
            reason: Some("hi there".into()),
        };
        assert_eq!(
            super::authorization_asked(super::super::NetworkId::Icq, &request),
            "bob (1234) asks to add you to their contact list: hi there. Answer with `authorize icq 1234` or `deny icq 1234`."
        );
        request.nick = None;
        request.reason = None;
        assert_eq!(
            super::authorization_asked(super::super::NetworkId::Icq, &request),
            "1234 asks to add you to their contact list. Answer with `authorize icq 1234` or `deny icq 1234`."
        );
    }

    #[test]
    fn formats_times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            super::format_time(951_782_400_000 + 3_723_000),
            "2000-02-29 01:02 UTC"
        );
    }
}
