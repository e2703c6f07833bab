//! The management commands: what a permitted user types to control their logins (in the
//! Matrix management room, or to the XMPP gateway), one implementation for every front.
//!
//! Command texts are never logged: they may hold passwords.

use std::sync::Arc;

use super::accounts::{self, LoginInfo, LoginStatus};
use super::{Bridge, Feature, LoginCommand, LoginKey, LoginState, Lookup, NetworkId, SendError};
use crate::config::Permission;

/// One management command, as `help` and `help <command>` describe it.
pub struct CommandHelp {
    pub name: &'static str,
    pub usage: &'static str,
    /// One line for the list.
    pub summary: &'static str,
    /// What `help <command>` adds.
    pub details: &'static str,
    /// Which networks have it (from their declared capabilities).
    pub needs: Needs,
}

/// What a command needs of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// It takes no network.
    NoNetwork,
    /// Every network has it.
    Login,
    /// Networks that declare this feature have it.
    Feature(Feature),
}

impl CommandHelp {
    /// Whether `network` has this command.
    pub fn serves(&self, network: NetworkId) -> bool {
        match self.needs {
            Needs::NoNetwork => false,
            Needs::Login => true,
            Needs::Feature(feature) => network.capabilities().has(feature),
        }
    }

    /// The networks that have it; empty for a command that takes no network.
    pub fn networks(&self) -> Vec<NetworkId> {
        NetworkId::ALL
            .into_iter()
            .filter(|n| self.serves(*n))
            .collect()
    }
}

/// Every command, in the order `help` lists them. A command some network lacks (its
/// declared capabilities say so) answers "not supported" there at once; the README's
/// command table says the same.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "help",
        usage: "help [command]",
        summary: "this list, or how to use one command",
        details: "Without a command: every command, and which network has which. With one: how to use it.",
        needs: Needs::NoNetwork,
    },
    CommandHelp {
        name: "ping",
        usage: "ping",
        summary: "check that the bridge answers",
        details: "Answers when the bridge is running and reads this room.",
        needs: Needs::NoNetwork,
    },
    CommandHelp {
        name: "list",
        usage: "list",
        summary: "your logins and their state",
        details: "Your logins, one per network, each connecting, connected, or disconnected with the reason.",
        needs: Needs::NoNetwork,
    },
    CommandHelp {
        name: "login",
        usage: "login <network> <id> <password>",
        summary: "log in (your message is removed after reading)",
        details: "Logs in to your legacy account: an ICQ number (UIN; ICQ passwords have at most 8 characters), \
                  an MSN e-mail address, or a mig33 username. I remove your message, which holds your password; \
                  the bridge keeps the password to log in again after a restart. One login per network.",
        needs: Needs::Login,
    },
    CommandHelp {
        name: "logout",
        usage: "logout <network>",
        summary: "log out and stop bridging that account",
        details: "Logs out of that network, stops bridging the account and forgets its password.",
        needs: Needs::Login,
    },
    CommandHelp {
        name: "reconnect",
        usage: "reconnect <network>",
        summary: "connect a stopped or disconnected login again",
        details: "Connects your login on that network again from its stored credentials (no password needed): \
                  after it was stopped ('signed in from another location'), or at once while it waits to reconnect.",
        needs: Needs::Login,
    },
    CommandHelp {
        name: "status",
        usage: "status <online|away|dnd|invisible> [network]",
        summary: "set your legacy status",
        details: "Sets your status on one network, or on every login when no network is given. \
                  mig33 has no invisible status: you appear offline there and stay connected.",
        needs: Needs::Login,
    },
    CommandHelp {
        name: "search",
        usage: "search <network> <query>",
        summary: "search the network's directory",
        details: "Searches the network's directory. ICQ: a UIN, a nick or an e-mail address.",
        needs: Needs::Feature(Feature::Directory),
    },
    CommandHelp {
        name: "info",
        usage: "info <network> <id>",
        summary: "show someone's profile",
        details: "Shows someone's profile from the network's directory.",
        needs: Needs::Feature(Feature::Directory),
    },
    CommandHelp {
        name: "add",
        usage: "add <network> <id> [group]",
        summary: "add a contact",
        details: "Adds someone to your contact list; on MSN and mig33, into one of your groups \
                  (its name or number) when you give one. The contact appears in your space.",
        needs: Needs::Login,
    },
    CommandHelp {
        name: "pm",
        usage: "pm <network> <id>",
        summary: "open a chat with someone",
        details: "Opens a direct chat with someone: I invite you to a room where their ghost speaks for them. \
                  Inviting the ghost to a direct chat yourself does the same.",
        needs: Needs::Login,
    },
    CommandHelp {
        name: "authorize",
        usage: "authorize <network> <id>",
        summary: "let someone who asked add you to their contact list",
        details: "Grants an authorization request you were told about: that person may add you to their \
                  contact list and see your presence. Only requests you received can be answered.",
        needs: Needs::Feature(Feature::Authorization),
    },
    CommandHelp {
        name: "deny",
        usage: "deny <network> <id>",
        summary: "refuse someone's request to add you",
        details: "Denies an authorization request you were told about: that person is told you refused.",
        needs: Needs::Feature(Feature::Authorization),
    },
    CommandHelp {
        name: "join",
        usage: "join <network> <room>",
        summary: "join a chatroom",
        details: "Joins a chatroom: it becomes a Matrix room, shared with the other Matrix users of the bridge in it.",
        needs: Needs::Feature(Feature::Chatrooms),
    },
    CommandHelp {
        name: "leave",
        usage: "leave <network> <room>",
        summary: "leave a chatroom",
        details: "Leaves a chatroom.",
        needs: Needs::Feature(Feature::Chatrooms),
    },
];

/// The commands of users with `admin` permission, listed by `help` for them only.
pub const ADMIN_COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "version",
        usage: "version",
        summary: "the bridge's version",
        details: "The version of the bridge and the networks it has enabled.",
        needs: Needs::NoNetwork,
    },
    CommandHelp {
        name: "stats",
        usage: "stats",
        summary: "logins per network and state, queue depths",
        details: "How many logins each network has in each state (connected, connecting, disconnected, stopped, \
                  not running), and what waits in the bridge's queues.",
        needs: Needs::NoNetwork,
    },
    CommandHelp {
        name: "logins",
        usage: "logins",
        summary: "every user's logins and their state",
        details: "Every Matrix user's logins, as `list` shows each user their own.",
        needs: Needs::NoNetwork,
    },
    CommandHelp {
        name: "logout-user",
        usage: "logout-user <mxid> <network>",
        summary: "log someone else out",
        details: "Logs a Matrix user out of a network, as their own `logout` would, and tells them so \
                  in their management room.",
        needs: Needs::NoNetwork,
    },
];

/// The answer to an admin command from someone without `admin` permission.
pub fn admin_only(name: &str) -> String {
    format!("`{name}` is an admin command: only the bridge's administrators can use it.")
}

/// `help` (every command, and which network has which) or `help <command>`; admins also
/// see the admin commands.
pub fn help(topic: Option<&str>, admin: bool) -> String {
    if let Some(topic) = topic {
        let topic = topic.trim_start_matches('!').to_lowercase();
        let found = COMMANDS.iter().find(|c| c.name == topic);
        let admin_command = ADMIN_COMMANDS.iter().find(|c| c.name == topic);
        let command = match (found, admin_command) {
            (Some(c), _) => c,
            (None, Some(c)) if admin => c,
            (None, Some(c)) => return admin_only(c.name),
            (None, None) => {
                return format!(
                    "There is no command {topic:?}. Type `help` for the list of commands."
                )
            }
        };
        let mut out = format!("Usage: {}\n{}", command.usage, command.details);
        let networks = command.networks();
        if !networks.is_empty() {
            let names: Vec<&str> = networks.iter().map(|n| n.as_str()).collect();
            out.push_str(&format!("\nNetworks: {}.", names.join(", ")));
        }
        return out;
    }
    let width = COMMANDS.iter().map(|c| c.usage.len()).max().unwrap_or(0);
    let mut out = String::from("Commands (one per message; `help <command>` tells more):");
    for c in COMMANDS {
        out.push_str(&format!("\n  {:width$}  {}", c.usage, c.summary));
    }
    out.push_str("\nWhich network has which command:");
    for network in NetworkId::ALL {
        let names: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.serves(network))
            .map(|c| c.name)
            .collect();
        out.push_str(&format!(
            "\n  {network} ({}): {}",
            network.display_name(),
            names.join(", ")
        ));
    }
    out.push_str("\nWhat crosses besides text and presence:");
    for network in NetworkId::ALL {
        let c = network.capabilities();
        let extras: Vec<&str> = [
            (c.typing, "typing"),
            (c.nudges, "nudges (`/me nudges`)"),
            (c.avatars, "pictures"),
            (c.files, "files"),
        ]
        .into_iter()
        .filter_map(|(has, name)| has.then_some(name))
        .collect();
        let extras = match extras.is_empty() {
            true => "nothing more (files go as links)".to_owned(),
            false => extras.join(", "),
        };
        out.push_str(&format!("\n  {network}: {extras}"));
    }
    if admin {
        out.push_str("\nAdmin commands (you have admin permission):");
        let width = ADMIN_COMMANDS
            .iter()
            .map(|c| c.usage.len())
            .max()
            .unwrap_or(0);
        for c in ADMIN_COMMANDS {
            out.push_str(&format!("\n  {:width$}  {}", c.usage, c.summary));
        }
    }
    out
}

/// What a user without permission is told.
pub const REFUSAL: &str = "You are not allowed to use this bridge. Ask the bridge's administrator to add you to its permissions.";

/// Runs one command a user typed (the management room, an XMPP chat with the gateway)
/// and returns the answer; `None` for an empty message. The caller has made sure the
/// text came from `user` and removed it wherever it may hold a password.
pub async fn execute(bridge: &Arc<Bridge>, user: &str, body: &str) -> Option<String> {
    let words: Vec<&str> = body.split_whitespace().collect();
    let first = words.first()?;
    Some(run(bridge, user, first, &words[1..]).await)
}

/// Runs one command given as its name and arguments (XMPP ad-hoc commands give them
/// field by field, so a password may hold spaces) and returns the answer.
pub async fn run(bridge: &Arc<Bridge>, user: &str, name: &str, args: &[&str]) -> String {
    if bridge.config.permission(user) == Permission::None {
        return REFUSAL.to_owned();
    }
    let command = name.trim_start_matches('!').to_lowercase();
    let admin = bridge.config.permission(user) == Permission::Admin;
    match command.as_str() {
        "help" => help(args.first().copied(), admin),
        "ping" => "Pong! The bridge is running.".to_owned(),
        "list" => list(bridge, user),
        "login" => login(bridge, user, args).await,
        "logout" => logout(bridge, user, args).await,
        "reconnect" => reconnect(bridge, user, args).await,
        "status" => status(bridge, user, args).await,
        "search" | "info" => lookup(bridge, user, &command, args).await,
        "add" => add(bridge, user, args).await,
        "pm" => pm(bridge, user, args).await,
        "authorize" | "deny" => authorization(bridge, user, &command, args).await,
        "join" | "leave" => room_command(bridge, user, &command, args).await,
        name if ADMIN_COMMANDS.iter().any(|c| c.name == name) => {
            if admin {
                super::admin::command(bridge, name, args).await
            } else {
                admin_only(name)
            }
        }
        other => unknown_command(other, admin),
    }
}

/// "Unknown command", with the command the user probably meant: one or two letters off.
fn unknown_command(name: &str, admin: bool) -> String {
    let known = COMMANDS
        .iter()
        .chain(ADMIN_COMMANDS.iter().filter(|_| admin))
        .map(|c| c.name);
    let nearest = known
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 2.min(c.len() / 2))
        .min();
    match nearest {
        Some((_, c)) => format!(
            "Unknown command {name:?}: did you mean `{c}`? Type `help` for the list of commands."
        ),
        None => format!("Unknown command {name:?}. Type `help` for the list of commands."),
    }
}

/// Whether a command carries a password (its message must be removed where it is kept).
pub fn holds_password(body: &str) -> bool {
    let mut words = body.split_whitespace();
    words
        .next()
        .is_some_and(|w| w.trim_start_matches('!').eq_ignore_ascii_case("login"))
        && words.count() >= 3
}

fn parse_network(name: Option<&&str>) -> Result<NetworkId, String> {
    accounts::parse_network(name.copied()).map_err(|e| e.to_string())
}

/// Running logins with their state, and stored ones that are not running (stopped).
fn list(bridge: &Bridge, user: &str) -> String {
    let logins = accounts::logins(bridge, user);
    if logins.is_empty() {
        return "You have no logins. Use `login <network> <id> <password>`.".into();
    }
    let lines: String = logins
        .iter()
        .map(|l| format!("\n- {}", login_line(l)))
        .collect();
    format!("Your logins:{lines}")
}

/// One login as `list` shows it: "mig33 alice: connected", with what waits for the
/// homeserver.
pub(super) fn login_line(info: &LoginInfo) -> String {
    let network = info.network;
    let state = match &info.status {
        LoginStatus::Stopped(reason) => {
            format!("stopped ({reason}); send `reconnect {network}` to sign in here again")
        }
        LoginStatus::Connecting => "connecting".to_owned(),
        LoginStatus::Connected => "connected".to_owned(),
        LoginStatus::Disconnected(reason) => format!("disconnected ({reason})"),
        LoginStatus::NotRunning => format!("not running; send `reconnect {network}` to start it"),
    };
    let mut line = format!("{} {}: {state}", network.display_name(), info.id);
    if let Some(b) = &info.backlog {
        line.push_str(&format!(
            "; {} waiting for the homeserver (oldest {})",
            b.waiting,
            super::outbox::age(b.oldest)
        ));
        if let Some(e) = &b.error {
            line.push_str(&format!(", last error: {e}"));
        }
    }
    line
}

async fn login(bridge: &Arc<Bridge>, user: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (Some(id), Some(password), None) = (args.get(1), args.get(2), args.get(3)) else {
        return "Usage: login <network> <id> <password>".into();
    };
    match accounts::login(bridge, user, network, id, password).await {
        Ok(id) => format!("Connecting to {} as {id}…", network.display_name()),
        Err(e) => e.to_string(),
    }
}

async fn logout(bridge: &Bridge, user: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if accounts::logout(bridge, user, network).await {
        format!("Logged out of {}.", network.display_name())
    } else {
        format!("You are not logged in to {}.", network.display_name())
    }
}

/// Starts a stored login again from its stored credentials: one the network stopped
/// (signed in from another location), or one waiting to reconnect (now, not after the
/// backoff).
async fn reconnect(bridge: &Arc<Bridge>, user: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if args.len() > 1 {
        return "Usage: reconnect <network>".into();
    }
    let implementation = match bridge.network_available(network) {
        Ok(n) => n.clone(),
        Err(why) => return why,
    };
    let name = network.display_name();
    let mut record = match bridge.store.login(user, network) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return format!(
                "You have no {name} login to reconnect. Use `login {network} <id> <password>`."
            )
        }
        Err(e) => {
            tracing::error!("could not read a login: {e}");
            return "The bridge could not read your login; try again later.".into();
        }
    };
    if record.stopped.is_none() {
        match bridge.login_state(user, network) {
            Some(LoginState::Connected) => {
                return format!(
                    "Your {name} login ({}) is connected already.",
                    record.legacy_id
                )
            }
            Some(LoginState::Connecting) => {
                return format!(
                    "Your {name} login ({}) is connecting already; `list` shows how it goes.",
                    record.legacy_id
                )
            }
            Some(LoginState::Disconnected(_)) | None => {}
        }
    }
    let saved = match bridge
        .store
        .update_login(user, network, |record| record.stopped = None)
    {
        Ok(Some(updated)) => {
            record = updated;
            bridge.store.flush().await.map_err(anyhow::Error::from)
        }
        Ok(None) => Err(anyhow::anyhow!("the login was removed meanwhile")),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = saved.and_then(|()| bridge.resume_login(&implementation, &record)) {
        tracing::error!("could not restart a login: {e:#}");
        return "The bridge could not restart your login; try again later.".into();
    }
    format!("Reconnecting to {name} as {}…", record.legacy_id)
}

/// The network stopped a login without refusing it (signed in from another location):
/// the record stays for `reconnect`, durably marked so that a restart does not resume it
/// and sign the user out of the other location.
pub(crate) async fn mark_stopped(
    bridge: &Bridge,
    key: &LoginKey,
    reason: &str,
) -> anyhow::Result<()> {
    let stopped = bridge
        .store
        .update_login(&key.user, key.network, |record| {
            record.stopped = Some(reason.to_owned());
        })?;
    if stopped.is_some() {
        bridge.store.flush().await?;
    }
    Ok(())
}

/// The user's running login on `network`, or the sentence explaining why there is none.
fn handle_for(
    bridge: &Bridge,
    user: &str,
    network: NetworkId,
) -> Result<super::LoginHandle, String> {
    accounts::handle_for(bridge, user, network).map_err(|e| e.to_string())
}

async fn status(bridge: &Bridge, user: &str, args: &[&str]) -> String {
    let Some((word, state)) = args
        .first()
        .and_then(|w| Some((w.to_lowercase(), accounts::parse_presence(w)?)))
    else {
        return "Usage: status <online|away|dnd|invisible> [network]".into();
    };
    let network = match args.get(1) {
        Some(_) => match parse_network(args.get(1)) {
            Ok(n) => Some(n),
            Err(e) => return e,
        },
        None => None,
    };
    match accounts::set_status(bridge, user, state, network).await {
        Err(e) => e.to_string(),
        Ok(results) => results
            .into_iter()
            .map(|(network, result)| match result {
                Ok(()) => format!("{}: status set to {word}.", network.display_name()),
                Err(e) => e.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

async fn lookup(bridge: &Bridge, user: &str, command: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if args.len() < 2 {
        return format!(
            "Usage: {command} <network> <{}>",
            if command == "info" { "id" } else { "query" }
        );
    }
    let text = args[1..].join(" ");
    // Refused at once where the network declares no directory.
    if !network.capabilities().has(Feature::Directory) {
        return format!(
            "{command} failed: {}",
            SendError::Unsupported(network.display_name())
        );
    }
    let query = if command == "info" {
        Lookup::Info(network.canonical_id(&text))
    } else {
        Lookup::Search(text.clone())
    };
    let handle = match handle_for(bridge, user, network) {
        Ok(h) => h,
        Err(e) => return e,
    };
    match handle
        .request(|reply| LoginCommand::Lookup { query, reply })
        .await
    {
        Ok(profiles) if profiles.is_empty() => format!("Nobody found for {text:?}."),
        Ok(profiles) => {
            let mut out = format!("{} result(s) for {text:?}:", profiles.len());
            for mut p in profiles {
                super::sanitize::clean_profile(&mut p);
                out.push_str(&format!("\n- {}", p.id));
                if let Some(name) = &p.display_name {
                    out.push_str(&format!(" ({name})"));
                }
                for (label, value) in &p.details {
                    out.push_str(&format!("\n    {label}: {value}"));
                }
            }
            out
        }
        Err(e) => format!("{command} failed: {e}"),
    }
}

async fn add(bridge: &Bridge, user: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let Some(id) = args.get(1) else {
        return "Usage: add <network> <id> [group]".into();
    };
    let id = network.canonical_id(id);
    let group = (args.len() > 2).then(|| args[2..].join(" "));
    let handle = match handle_for(bridge, user, network) {
        Ok(h) => h,
        Err(e) => return e,
    };
    match handle
        .request(|reply| LoginCommand::AddContact {
            id: id.clone(),
            group,
            reply,
        })
        .await
    {
        Ok(()) => format!("Added {id} to your {} contacts.", network.display_name()),
        Err(e) => format!("Could not add {id}: {e}"),
    }
}

async fn pm(bridge: &Arc<Bridge>, user: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let Some(id) = args.get(1) else {
        return "Usage: pm <network> <id>".into();
    };
    if let Err(e) = handle_for(bridge, user, network) {
        return e;
    }
    let id = network.canonical_id(id);
    let Some(front) = bridge.front_for(user) else {
        return "The bridge has no front for you.".into();
    };
    match front.open_chat(user, network, &id).await {
        Ok(answer) => answer,
        Err(e) => format!("Could not open a chat with {id}: {e}"),
    }
}

/// `authorize` / `deny`: answers a pending authorization request the user was told of.
async fn authorization(bridge: &Bridge, user: &str, command: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (Some(id), None) = (args.get(1), args.get(2)) else {
        return format!("Usage: {command} <network> <id>");
    };
    // Refused at once where the network has no authorization requests.
    if !network.capabilities().has(Feature::Authorization) {
        return format!(
            "Could not {command} {id}: {}",
            SendError::Unsupported(network.display_name())
        );
    }
    let id = network.canonical_id(id);
    match bridge.store.auth_request(user, network, &id) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return format!(
                "Could not {command} {id}: {id} has not asked you for authorization on {} \
                 (only requests you were told about can be answered).",
                network.display_name()
            )
        }
        Err(e) => {
            tracing::error!("could not read authorization requests: {e}");
            return "The bridge could not read your authorization requests; try again later."
                .into();
        }
    }
    let handle = match handle_for(bridge, user, network) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let grant = command == "authorize";
    let answered = handle
        .request(|reply| LoginCommand::AnswerAuthorization {
            id: id.clone(),
            grant,
            reply,
        })
        .await;
    if let Err(e) = answered {
        return format!("Could not {command} {id}: {e}");
    }
    if let Err(e) = bridge.store.remove_auth_request(user, network, &id) {
        tracing::error!("could not forget an answered authorization request: {e}");
    }
    bridge.store.flush_soon();
    if grant {
        format!("Authorized {id}: they may add you to their contact list now.")
    } else {
        format!("Denied {id}'s request to add you.")
    }
}

async fn room_command(bridge: &Bridge, user: &str, command: &str, args: &[&str]) -> String {
    let network = match parse_network(args.first()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if args.len() < 2 {
        return format!("Usage: {command} <network> <room>");
    }
    let room = args[1..].join(" ");
    // Refused at once where the network declares no chatrooms.
    if !network.capabilities().has(Feature::Chatrooms) {
        return format!(
            "Could not {command} {room}: {}",
            SendError::Unsupported(network.display_name())
        );
    }
    let handle = match handle_for(bridge, user, network) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let result = if command == "join" {
        handle
            .request(|reply| LoginCommand::JoinRoom {
                room: room.clone(),
                reply,
            })
            .await
    } else {
        // No longer the room's relay from now on: a message the server sends after it
        // took the leave reaches only the other bridged members, one of whom must relay
        // it (the login's RoomLeft comes too late for that).
        let was_member = bridge
            .store
            .chatrooms_of(user, network)
            .unwrap_or_default()
            .contains(&room);
        if was_member {
            if let Err(e) = bridge.store.remove_chatroom_member(user, network, &room) {
                tracing::error!("could not forget a chatroom member: {e}");
            }
        }
        let result = handle
            .request(|reply| LoginCommand::LeaveRoom {
                room: room.clone(),
                reply,
            })
            .await;
        if result.is_err() && was_member {
            // Still in: relaying again.
            if let Err(e) = bridge.store.add_chatroom_member(user, network, &room) {
                tracing::error!("could not record a chatroom member: {e}");
            }
        }
        result
    };
    match result {
        // The network answers once its server took the join.
        Ok(()) if command == "join" => format!("Joined {room}."),
        Ok(()) => format!("Left {room}."),
        Err(e) => format!("Could not {command} {room}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistyped_command_gets_a_suggestion() {
        assert!(unknown_command("logn", false).contains("did you mean `login`?"));
        assert!(unknown_command("stauts", false).contains("did you mean `status`?"));
        assert!(unknown_command("LOGOTU".to_lowercase().as_str(), false).contains("`logout`"));
        // Nothing near: no guess; admin commands are suggested to admins only.
        assert!(!unknown_command("frobnicate", false).contains("did you mean"));
        assert!(!unknown_command("stat", false).contains("`stats`"));
        assert!(unknown_command("stat", true).contains("`stats`"));
    }

    #[test]
    fn help_lists_every_command_and_what_each_network_has() {
        let text = help(None, false);
        assert!(
            text.starts_with("Commands"),
            "the welcome test looks for it: {text}"
        );
        for c in COMMANDS {
            assert!(text.contains(c.usage), "{} missing: {text}", c.usage);
        }
        assert!(
            text.contains(
                "\n  icq (ICQ): login, logout, reconnect, status, search, info, add, pm, authorize, deny\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\n  icq: nothing more (files go as links)\n")
                && text.contains("\n  msn: typing, nudges (`/me nudges`), pictures, files\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  msn (MSN Messenger): login, logout, reconnect, status, add, pm\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  mig33 (mig33): login, logout, reconnect, status, add, pm, join, leave\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("\n  mig33: nothing more (files go as links)"),
            "{text}"
        );
    }

    /// `authorize` and `deny` exist where the network declares authorization (ICQ), and
    /// are refused at once elsewhere; a request the user was not told of is refused.
    #[tokio::test]
    async fn authorization_commands_follow_the_capability() {
        for name in ["authorize", "deny"] {
            let c = COMMANDS.iter().find(|c| c.name == name).unwrap();
            assert_eq!(c.networks(), vec![NetworkId::Icq], "{name}");
            assert!(help(Some(name), false).ends_with("Networks: icq."));
        }
        let dir = tempfile::tempdir().unwrap();
        let text = "homeserver: {address: 'http://127.0.0.1:9', domain: localhost}\n\
                    appservice: {port: 29330, url: 'http://127.0.0.1:29330'}\n\
                    database: {path: db}\n\
                    permissions: {'@alice:localhost': user}\n";
        let config =
            crate::config::LoadedConfig::parse(text, std::path::Path::new("t.yaml")).unwrap();
        let store = crate::store::Store::open_in(dir.path()).unwrap();
        let bridge = Bridge::new(config, store, Vec::new());
        let user = "@alice:localhost";
        let say = |args: &'static [&'static str]| {
            let bridge = bridge.clone();
            async move { run(&bridge, user, args[0], &args[1..]).await }
        };
        assert_eq!(
            say(&["deny", "msn", "bob@example.org"]).await,
            "Could not deny bob@example.org: MSN Messenger does not support this"
        );
        assert_eq!(
            say(&["authorize", "mig33", "bob"]).await,
            "Could not authorize bob: mig33 does not support this"
        );
        assert_eq!(
            say(&["authorize", "icq"]).await,
            "Usage: authorize <network> <id>"
        );
        assert_eq!(
            say(&["authorize", "icq", "1234"]).await,
            "Could not authorize 1234: 1234 has not asked you for authorization on ICQ \
             (only requests you were told about can be answered)."
        );
        // A pending request is answered through the login: without one, the user hears
        // why (here no login runs).
        bridge
            .store
            .add_auth_request(
                user,
                NetworkId::Icq,
                &crate::model::AuthorizationRequest {
                    who: "1234".into(),
                    nick: None,
                    reason: None,
                },
            )
            .unwrap();
        let answer = say(&["deny", "icq", "1234"]).await;
        assert!(!answer.contains("has not asked"), "{answer}");
        assert_eq!(
            bridge
                .store
                .auth_requests(user, NetworkId::Icq)
                .unwrap()
                .len(),
            1,
            "still pending: it was not answered"
        );
    }

    #[test]
    fn help_for_one_command() {
        let text = help(Some("login"), false);
        assert!(
            text.starts_with("Usage: login <network> <id> <password>\n"),
            "{text}"
        );
        assert!(text.contains("I remove your message"), "{text}");
        assert!(text.ends_with("Networks: icq, msn, mig33."), "{text}");
        assert!(help(Some("JOIN"), false).ends_with("Networks: mig33."));
        assert!(!help(Some("ping"), false).contains("Networks"));
        let text = help(Some("frobnicate"), false);
        assert!(text.contains("no command \"frobnicate\""), "{text}");
    }

    #[test]
    fn admin_commands_are_listed_for_admins_only() {
        let user = help(None, false);
        let admin = help(None, true);
        assert!(admin.starts_with(&user), "the same list first:\n{admin}");
        for c in ADMIN_COMMANDS {
            let listed = |text: &str| {
                text.lines()
                    .any(|l| l.trim_start().split("  ").next() == Some(c.usage))
            };
            assert!(!listed(&user), "{} shown to a user", c.name);
            assert!(listed(&admin), "{} missing: {admin}", c.name);
        }
        assert!(admin.contains("\nAdmin commands (you have admin permission):\n  version "));
        assert_eq!(
            help(Some("stats"), false),
            "`stats` is an admin command: only the bridge's administrators can use it."
        );
        assert!(
            help(Some("logout-user"), true).starts_with("Usage: logout-user <mxid> <network>\n")
        );
        assert!(COMMANDS
            .iter()
            .all(|c| ADMIN_COMMANDS.iter().all(|a| a.name != c.name)));
    }

    /// The README's admin command table lists exactly the admin commands.
    #[test]
    fn readme_admin_command_table_matches() {
        let readme = include_str!("../../../README.md");
        let header = "| admin command | what it does |";
        let names: Vec<String> = readme
            .lines()
            .skip_while(|l| l.trim() != header)
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|row| {
                let cell = row.trim_matches('|').split('|').next().unwrap().trim();
                let usage = cell.trim_matches('`');
                let command = ADMIN_COMMANDS
                    .iter()
                    .find(|c| c.usage == usage)
                    .unwrap_or_else(|| {
                        panic!("the README lists {usage:?}, which is no admin command's usage")
                    });
                command.name.to_owned()
            })
            .collect();
        let expected: Vec<&str> = ADMIN_COMMANDS.iter().map(|c| c.name).collect();
        assert_eq!(names, expected, "the README's table headed {header:?}");
    }

    /// The README's command table has a column per network: a ✓ where the network has
    /// the command, nothing where it does not, and `—` for commands without a network.
    #[test]
    fn readme_command_table_matches() {
        let readme = include_str!("../../../README.md");
        let header = "| command | what it does | ICQ | MSN | mig33 |";
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| l.trim() != header)
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert!(
            !table.is_empty(),
            "the README has no table headed {header:?}"
        );
        let mut seen = Vec::new();
        for row in table {
            // `\|` is a `|` inside a cell.
            let row = row.replace("\\|", "/");
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            // A column per network: a network added without one is caught here.
            assert_eq!(cells.len(), 2 + NetworkId::ALL.len(), "{row}");
            let name = cells[0]
                .trim_start_matches('`')
                .split([' ', '`'])
                .next()
                .unwrap();
            let command = COMMANDS
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("the README lists {name:?}, which is no command"));
            for (network, cell) in NetworkId::ALL.iter().zip(&cells[2..]) {
                let expected = if command.needs == Needs::NoNetwork {
                    "—"
                } else if command.serves(*network) {
                    "✓"
                } else {
                    ""
                };
                assert_eq!(*cell, expected, "README, {name} on {network}");
            }
            seen.push(command.name);
        }
        for c in COMMANDS {
            assert!(
                seen.contains(&c.name),
                "the README's command table lacks {}",
                c.name
            );
        }
    }
}
