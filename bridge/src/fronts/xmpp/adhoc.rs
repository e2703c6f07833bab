//! XEP-0050 ad-hoc commands on each gateway: the management commands (login, logout,
//! status, search, info, add, join, leave) as one-stage forms, and `authorize` (ICQ),
//! which lists the authorization requests waiting for an answer and grants or denies
//! the one picked.
//!
//! Flow: the client lists the commands (disco#items on node
//! `http://jabber.org/protocol/commands`, [`command_list`]), executes one
//! ([`CommandRequest::Start`]) and gets its form ([`form`], status `executing`, the only
//! action `complete`), submits it ([`CommandRequest::Submit`] with a typed [`Command`]) and
//! gets [`completed`] with the shared command code's answer as a note, or cancels
//! ([`canceled`]). Nothing is kept between the steps: the submitted form says everything,
//! so the session id is only echoed (the caller picks it, e.g. the request's stanza id).
//!
//! Which network has which command follows the management room's table
//! ([`crate::core::commands::COMMANDS`]): search and info on ICQ, join and leave on mig33.
//! Errors are XEP-0050's: `bad-request` with `<malformed-action/>`, `<bad-action/>` or
//! `<bad-payload/>` (a missing or malformed field, with a text saying which), and
//! `item-not-found` for a command the gateway does not have.

use std::fmt;

use xmpp_parsers::data_forms::{DataForm, FieldType};
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::rxml::xml_ncname;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::errors::{stanza_error, with_condition};
use super::forms;
use super::jid::check_legacy_id;
use super::register::id_label;
use super::xml_text;
use crate::core::commands::COMMANDS;
use crate::model::{LegacyId, NetworkId, PresenceState};

pub const COMMANDS_NS: &str = "http://jabber.org/protocol/commands";

/// One of the gateway's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Login,
    Logout,
    Status,
    Search,
    Info,
    Add,
    Join,
    Leave,
    /// Answers an authorization request (the management commands `authorize` / `deny`).
    Authorize,
}

impl CommandKind {
    pub const ALL: [CommandKind; 9] = [
        CommandKind::Login,
        CommandKind::Logout,
        CommandKind::Status,
        CommandKind::Search,
        CommandKind::Info,
        CommandKind::Add,
        CommandKind::Authorize,
        CommandKind::Join,
        CommandKind::Leave,
    ];

    /// The command's node, also its name in the management room.
    pub fn node(self) -> &'static str {
        match self {
            CommandKind::Login => "login",
            CommandKind::Logout => "logout",
            CommandKind::Status => "status",
            CommandKind::Search => "search",
            CommandKind::Info => "info",
            CommandKind::Add => "add",
            CommandKind::Join => "join",
            CommandKind::Leave => "leave",
            CommandKind::Authorize => "authorize",
        }
    }

    pub fn from_node(node: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|k| k.node() == node)
    }

    /// Whether `network` has this command.
    pub fn available_on(self, network: NetworkId) -> bool {
        COMMANDS
            .iter()
            .any(|c| c.name == self.node() && c.serves(network))
    }

    /// The command's name in the list, and its form's title.
    pub fn title(self, network: NetworkId) -> String {
        let net = network.display_name();
        let a = network.capabilities().article;
        match self {
            CommandKind::Login => format!("Log in to {net}"),
            CommandKind::Logout => format!("Log out of {net}"),
            CommandKind::Status => format!("Set your {net} status"),
            CommandKind::Search => format!("Search the {net} directory"),
            CommandKind::Info => format!("Show {a} {net} profile"),
            CommandKind::Add => format!("Add {a} {net} contact"),
            CommandKind::Join => format!("Join {a} {net} chatroom"),
            CommandKind::Leave => format!("Leave {a} {net} chatroom"),
            CommandKind::Authorize => format!("Answer {net} authorization requests"),
        }
    }
}

/// A submitted command, ready for the shared command code. `Debug` never shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    Login {
        id: LegacyId,
        password: String,
    },
    Logout,
    Status {
        state: PresenceState,
        message: Option<String>,
    },
    Search {
        query: String,
    },
    Info {
        id: LegacyId,
    },
    Add {
        id: LegacyId,
        group: Option<String>,
    },
    Join {
        room: String,
    },
    Leave {
        room: String,
    },
    Authorize {
        id: LegacyId,
        grant: bool,
    },
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Login { id, .. } => f
                .debug_struct("Login")
                .field("id", id)
                .field("password", &"<redacted>")
                .finish(),
            Command::Logout => f.write_str("Logout"),
            Command::Status { state, message } => f
                .debug_struct("Status")
                .field("state", state)
                .field("message", message)
                .finish(),
            Command::Search { query } => f.debug_struct("Search").field("query", query).finish(),
            Command::Info { id } => f.debug_struct("Info").field("id", id).finish(),
            Command::Add { id, group } => f
                .debug_struct("Add")
                .field("id", id)
                .field("group", group)
                .finish(),
            Command::Join { room } => f.debug_struct("Join").field("room", room).finish(),
            Command::Leave { room } => f.debug_struct("Leave").field("room", room).finish(),
            Command::Authorize { id, grant } => f
                .debug_struct("Authorize")
                .field("id", id)
                .field("grant", grant)
                .finish(),
        }
    }
}

/// What a `<command/>` IQ asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandRequest {
    /// Execute: answer with [`form`].
    Start { kind: CommandKind },
    /// The form, submitted: run it and answer with [`completed`].
    Submit {
        kind: CommandKind,
        session: Option<String>,
        command: Command,
    },
    /// Answer with [`canceled`].
    Cancel {
        kind: CommandKind,
        session: Option<String>,
    },
}

/// The command list: disco#items on the commands node of `gateway` (XEP-0050 §2.2).
pub fn command_list(network: NetworkId, gateway: &Jid) -> DiscoItemsResult {
    DiscoItemsResult {
        node: Some(COMMANDS_NS.to_owned()),
        items: CommandKind::ALL
            .into_iter()
            .filter(|k| k.available_on(network))
            .map(|k| Item {
                jid: gateway.clone(),
                node: Some(k.node().to_owned()),
                name: Some(k.title(network)),
            })
            .collect(),
        rsm: None,
    }
}

/// disco#info on the commands node itself.
pub fn list_info() -> DiscoInfoResult {
    DiscoInfoResult {
        node: Some(COMMANDS_NS.to_owned()),
        identities: vec![identity("automation", "command-list", None)],
        features: [ns::DISCO_INFO.to_owned()].into(),
        extensions: vec![],
    }
}

/// disco#info on one command's node (XEP-0050 §2.3); `None` when `network` lacks it.
pub fn command_info(network: NetworkId, kind: CommandKind) -> Option<DiscoInfoResult> {
    kind.available_on(network).then(|| DiscoInfoResult {
        node: Some(kind.node().to_owned()),
        identities: vec![identity(
            "automation",
            "command-node",
            Some(kind.title(network)),
        )],
        features: [COMMANDS_NS.to_owned(), ns::DATA_FORMS.to_owned()].into(),
        extensions: vec![],
    })
}

fn identity(category: &str, type_: &str, name: Option<String>) -> Identity {
    Identity {
        category: category.to_owned(),
        type_: type_.to_owned(),
        lang: None,
        name,
    }
}

fn command_error(specific: &str, text: Option<&str>) -> StanzaError {
    with_condition(
        stanza_error(DefinedCondition::BadRequest, text),
        Element::bare(specific, COMMANDS_NS),
    )
}

/// Reads a `<command/>` sent to `network`'s gateway.
pub fn parse(network: NetworkId, command: &Element) -> Result<CommandRequest, StanzaError> {
    if !command.is("command", COMMANDS_NS) {
        return Err(stanza_error(DefinedCondition::BadRequest, None));
    }
    let kind = command
        .attr("node")
        .and_then(CommandKind::from_node)
        .filter(|k| k.available_on(network))
        .ok_or_else(|| {
            stanza_error(
                DefinedCondition::ItemNotFound,
                Some(&format!(
                    "The {} gateway has no such command.",
                    network.display_name()
                )),
            )
        })?;
    let session = command.attr("sessionid").map(str::to_owned);
    match command.attr("action") {
        None | Some("execute" | "complete" | "next") => {}
        Some("cancel") => return Ok(CommandRequest::Cancel { kind, session }),
        Some("prev") => return Err(command_error("bad-action", None)),
        Some(_) => return Err(command_error("malformed-action", None)),
    }
    let submitted = forms::submitted(command);
    if submitted.is_none() && session.is_none() {
        return Ok(CommandRequest::Start { kind });
    }
    let form = submitted.unwrap_or(DataForm {
        type_: xmpp_parsers::data_forms::DataFormType::Submit,
        title: None,
        instructions: None,
        fields: vec![],
    });
    let command = read_command(network, kind, &form)?;
    Ok(CommandRequest::Submit {
        kind,
        session,
        command,
    })
}

fn read_command(
    network: NetworkId,
    kind: CommandKind,
    form: &DataForm,
) -> Result<Command, StanzaError> {
    let required = |var: &str, what: &str| {
        forms::value(form, var)
            .map(str::to_owned)
            .ok_or_else(|| command_error("bad-payload", Some(&format!("The {what} is needed."))))
    };
    let legacy_id = |var: &str| {
        let id = network.canonical_id(&required(var, id_label(network))?);
        check_legacy_id(network, &id)
            .map_err(|e| command_error("bad-payload", Some(&e.to_string())))?;
        Ok::<_, StanzaError>(id)
    };
    Ok(match kind {
        CommandKind::Login => Command::Login {
            id: legacy_id("username")?,
            password: forms::raw_value(form, "password")
                .map(str::to_owned)
                .ok_or_else(|| command_error("bad-payload", Some("The password is needed.")))?,
        },
        CommandKind::Logout => Command::Logout,
        CommandKind::Status => {
            let state = match required("status", "status")?.as_str() {
                "online" => PresenceState::Online,
                "away" => PresenceState::Away,
                "dnd" => PresenceState::Busy,
                "invisible" => PresenceState::Invisible,
                other => {
                    return Err(command_error(
                        "bad-payload",
                        Some(&format!(
                            "{other:?} is not a status: online, away, dnd or invisible."
                        )),
                    ))
                }
            };
            Command::Status {
                state,
                message: forms::value(form, "message").map(str::to_owned),
            }
        }
        CommandKind::Search => Command::Search {
            query: required("query", "text to search for")?,
        },
        CommandKind::Info => Command::Info {
            id: legacy_id("id")?,
        },
        CommandKind::Add => Command::Add {
            id: legacy_id("id")?,
            group: forms::value(form, "group").map(str::to_owned),
        },
        CommandKind::Join => Command::Join {
            room: required("room", "chatroom's name")?,
        },
        CommandKind::Leave => Command::Leave {
            room: required("room", "chatroom's name")?,
        },
        CommandKind::Authorize => Command::Authorize {
            id: legacy_id("id")?,
            grant: match forms::value(form, "answer").unwrap_or("grant") {
                "grant" => true,
                "deny" => false,
                other => {
                    return Err(command_error(
                        "bad-payload",
                        Some(&format!("{other:?} is not an answer: grant or deny.")),
                    ))
                }
            },
        },
    })
}

/// What a form can offer beforehand.
#[derive(Debug, Clone, Copy, Default)]
pub struct FormDefaults<'a> {
    /// The user's registered legacy id (login).
    pub id: Option<&'a str>,
    /// The chatrooms the user is in (leave offers them as a list).
    pub rooms: &'a [String],
    /// The user's contact groups by name (add offers them as a list).
    pub groups: &'a [String],
    /// The authorization requests waiting for an answer, as (id, what to show).
    pub requests: &'a [(String, String)],
}

/// The `<command/>` answering a start: the command's form, status `executing`, with
/// `complete` as the only action (one stage).
pub fn form(
    network: NetworkId,
    kind: CommandKind,
    session: &str,
    defaults: &FormDefaults,
) -> Element {
    let net = network.display_name();
    let text = |var: &str, label: &str, required: bool| {
        forms::field(var, FieldType::TextSingle, label, required)
    };
    let choice = |var: &str, label: &str, required: bool, values: &[String]| {
        let options: Vec<(&str, &str)> = values.iter().map(|v| (v.as_str(), v.as_str())).collect();
        forms::list(var, label, required, &options)
    };
    let (instructions, fields) = match kind {
        CommandKind::Login => {
            let mut username = text("username", id_label(network), true);
            if let Some(id) = defaults.id {
                username = forms::with_value(username, id);
            }
            (
                format!("Log in to your {net} account. The bridge keeps the password to log in again after a restart."),
                vec![username, forms::field("password", FieldType::TextPrivate, "Password", true)],
            )
        }
        CommandKind::Logout => (format!("Log out of {net} now."), vec![]),
        CommandKind::Status => {
            let mut instructions = format!("Your status on {net}.");
            if !network.capabilities().invisible {
                instructions.push_str(&format!(
                    " {net} has no invisible status: you appear offline there and stay connected."
                ));
            }
            let options = [
                ("online", "Online"),
                ("away", "Away"),
                ("dnd", "Busy (do not disturb)"),
                ("invisible", "Invisible"),
            ];
            (
                instructions,
                vec![
                    forms::list("status", "Status", true, &options),
                    text("message", "Status message", false),
                ],
            )
        }
        CommandKind::Search => (
            format!("Search the {net} directory: a number, a nickname or an e-mail address."),
            vec![text("query", "Search for", true)],
        ),
        CommandKind::Info => (
            format!("Show someone's {net} profile."),
            vec![text("id", id_label(network), true)],
        ),
        CommandKind::Add => {
            let mut fields = vec![text("id", id_label(network), true)];
            if network.capabilities().contact_groups {
                fields.push(if defaults.groups.is_empty() {
                    text("group", "Group (name or number)", false)
                } else {
                    choice("group", "Group", false, defaults.groups)
                });
            }
            (format!("Add someone to your {net} contact list."), fields)
        }
        CommandKind::Join => (
            format!("Join a {net} chatroom: it appears as a group chat on this server."),
            vec![text("room", "Chatroom", true)],
        ),
        CommandKind::Authorize => {
            let answer = forms::list(
                "answer",
                "Answer",
                true,
                &[("grant", "Grant: they may add you"), ("deny", "Deny")],
            );
            if defaults.requests.is_empty() {
                (
                    format!("Nobody has asked you for authorization on {net}."),
                    vec![text("id", id_label(network), true), answer],
                )
            } else {
                let options: Vec<(&str, &str)> = defaults
                    .requests
                    .iter()
                    .map(|(id, shown)| (id.as_str(), shown.as_str()))
                    .collect();
                (
                    format!(
                        "Pick a request to answer ({} waiting): they asked to add you to their {net} contact list.",
                        defaults.requests.len()
                    ),
                    vec![forms::list("id", "Request", true, &options), answer],
                )
            }
        }
        CommandKind::Leave => {
            let room = if defaults.rooms.is_empty() {
                text("room", "Chatroom", true)
            } else {
                choice("room", "Chatroom", true, defaults.rooms)
            };
            (format!("Leave a {net} chatroom."), vec![room])
        }
    };
    let data_form = forms::form(None, &kind.title(network), &instructions, fields);
    command_element(kind, session, "executing")
        .append(
            Element::builder("actions", COMMANDS_NS)
                .attr(xml_ncname!("execute").into(), "complete")
                .append(Element::bare("complete", COMMANDS_NS))
                .build(),
        )
        .append(Element::from(data_form))
        .build()
}

/// The `<command/>` answering a submission: status `completed` with `note` (type `info`,
/// or `error` when the command failed).
pub fn completed(kind: CommandKind, session: &str, note: &str, failed: bool) -> Element {
    command_element(kind, session, "completed")
        .append(
            Element::builder("note", COMMANDS_NS)
                .attr(
                    xml_ncname!("type").into(),
                    if failed { "error" } else { "info" },
                )
                .append(xml_text(note).into_owned())
                .build(),
        )
        .build()
}

/// The `<command/>` answering a cancellation.
pub fn canceled(kind: CommandKind, session: &str) -> Element {
    command_element(kind, session, "canceled").build()
}

fn command_element(
    kind: CommandKind,
    session: &str,
    status: &str,
) -> xmpp_parsers::minidom::ElementBuilder {
    Element::builder("command", COMMANDS_NS)
        .attr(xml_ncname!("node").into(), kind.node())
        .attr(
            xml_ncname!("sessionid").into(),
            xml_text(session).into_owned(),
        )
        .attr(xml_ncname!("status").into(), status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};

    fn parse_xml(network: NetworkId, xml: &str) -> Result<CommandRequest, StanzaError> {
        parse(network, &element(xml))
    }

    #[test]
    fn the_list_follows_the_management_commands() {
        let gateway = Jid::new("icq.example.org").unwrap();
        assert_xml(
            command_list(NetworkId::Icq, &gateway),
            "<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'>\
               <item jid='icq.example.org' node='login' name='Log in to ICQ'/>\
               <item jid='icq.example.org' node='logout' name='Log out of ICQ'/>\
               <item jid='icq.example.org' node='status' name='Set your ICQ status'/>\
               <item jid='icq.example.org' node='search' name='Search the ICQ directory'/>\
               <item jid='icq.example.org' node='info' name='Show an ICQ profile'/>\
               <item jid='icq.example.org' node='add' name='Add an ICQ contact'/>\
               <item jid='icq.example.org' node='authorize' name='Answer ICQ authorization requests'/>\
             </query>",
        );
        let mig33: Vec<String> =
            command_list(NetworkId::Mig33, &Jid::new("mig33.example.org").unwrap())
                .items
                .into_iter()
                .filter_map(|i| i.node)
                .collect();
        assert_eq!(mig33, ["login", "logout", "status", "add", "join", "leave"]);
        assert!(command_info(NetworkId::Msn, CommandKind::Join).is_none());
        assert_xml(
            command_info(NetworkId::Mig33, CommandKind::Join).unwrap(),
            "<query xmlns='http://jabber.org/protocol/disco#info' node='join'>\
               <identity category='automation' type='command-node' name='Join a mig33 chatroom'/>\
               <feature var='http://jabber.org/protocol/commands'/>\
               <feature var='jabber:x:data'/>\
             </query>",
        );
        assert_xml(
            list_info(),
            "<query xmlns='http://jabber.org/protocol/disco#info' node='http://jabber.org/protocol/commands'>\
               <identity category='automation' type='command-list'/>\
               <feature var='http://jabber.org/protocol/disco#info'/>\
             </query>",
        );
    }

    #[test]
    fn a_login_from_start_to_end() {
        let start = parse_xml(
            NetworkId::Icq,
            "<command xmlns='http://jabber.org/protocol/commands' node='login' action='execute'/>",
        );
        assert_eq!(
            start,
            Ok(CommandRequest::Start {
                kind: CommandKind::Login
            })
        );
        let defaults = FormDefaults {
            id: Some("123456"),
            ..FormDefaults::default()
        };
        assert_xml(
            form(NetworkId::Icq, CommandKind::Login, "s1", &defaults),
            "<command xmlns='http://jabber.org/protocol/commands' node='login' sessionid='s1' status='executing'>\
               <actions execute='complete'><complete/></actions>\
               <x xmlns='jabber:x:data' type='form'>\
                 <title>Log in to ICQ</title>\
                 <instructions>Log in to your ICQ account. The bridge keeps the password to log in again after a restart.</instructions>\
                 <field var='username' label='ICQ number (UIN)'><required/><value>123456</value></field>\
                 <field var='password' type='text-private' label='Password'><required/></field>\
               </x>\
             </command>",
        );
        let submit = parse_xml(
            NetworkId::Icq,
            "<command xmlns='http://jabber.org/protocol/commands' node='login' sessionid='s1' action='complete'>\
               <x xmlns='jabber:x:data' type='submit'>\
                 <field var='username'><value>123456</value></field>\
                 <field var='password'><value>secret</value></field>\
               </x>\
             </command>",
        )
        .unwrap();
        assert_eq!(
            submit,
            CommandRequest::Submit {
                kind: CommandKind::Login,
                session: Some("s1".into()),
                command: Command::Login {
                    id: "123456".into(),
                    password: "secret".into()
                }
            }
        );
        assert!(!format!("{submit:?}").contains("secret"));
        assert_xml(
            completed(CommandKind::Login, "s1", "Logged in to ICQ as 123456.", false),
            "<command xmlns='http://jabber.org/protocol/commands' node='login' sessionid='s1' status='completed'>\
               <note type='info'>Logged in to ICQ as 123456.</note>\
             </command>",
        );
    }

    #[test]
    fn every_command_reads_its_form() {
        let submit = |network, node: &str, fields: &str| {
            let xml = format!(
                "<command xmlns='http://jabber.org/protocol/commands' node='{node}' sessionid='s'>\
                   <x xmlns='jabber:x:data' type='submit'>{fields}</x></command>"
            );
            match parse_xml(network, &xml) {
                Ok(CommandRequest::Submit { command, .. }) => Ok(command),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        let field =
            |var: &str, value: &str| format!("<field var='{var}'><value>{value}</value></field>");
        assert_eq!(submit(NetworkId::Msn, "logout", ""), Ok(Command::Logout));
        assert_eq!(
            submit(
                NetworkId::Msn,
                "status",
                &format!(
                    "{}{}",
                    field("status", "dnd"),
                    field("message", "On the phone")
                )
            ),
            Ok(Command::Status {
                state: PresenceState::Busy,
                message: Some("On the phone".into())
            })
        );
        assert_eq!(
            submit(NetworkId::Icq, "search", &field("query", "romeo")),
            Ok(Command::Search {
                query: "romeo".into()
            })
        );
        assert_eq!(
            submit(NetworkId::Icq, "info", &field("id", "42")),
            Ok(Command::Info { id: "42".into() })
        );
        assert_eq!(
            submit(
                NetworkId::Msn,
                "add",
                &format!(
                    "{}{}",
                    field("id", "Juliet@Capulet.lit"),
                    field("group", "Friends")
                )
            ),
            Ok(Command::Add {
                id: "juliet@capulet.lit".into(),
                group: Some("Friends".into())
            })
        );
        assert_eq!(
            submit(NetworkId::Mig33, "join", &field("room", "lobby")),
            Ok(Command::Join {
                room: "lobby".into()
            })
        );
        assert_eq!(
            submit(NetworkId::Mig33, "leave", &field("room", "lobby")),
            Ok(Command::Leave {
                room: "lobby".into()
            })
        );
        assert_eq!(
            submit(
                NetworkId::Icq,
                "authorize",
                &format!("{}{}", field("id", "1003"), field("answer", "deny"))
            ),
            Ok(Command::Authorize {
                id: "1003".into(),
                grant: false
            })
        );
        let refused = submit(
            NetworkId::Icq,
            "authorize",
            &format!("{}{}", field("id", "1003"), field("answer", "maybe")),
        )
        .unwrap_err();
        assert!(refused.texts["en"].contains("\"maybe\" is not an answer"));
        // Only where the network has authorization requests.
        assert_eq!(
            submit(NetworkId::Msn, "authorize", &field("id", "a@b.c"))
                .unwrap_err()
                .defined_condition,
            DefinedCondition::ItemNotFound
        );
        // A session without a form: the logout form has no fields.
        assert_eq!(
            parse_xml(NetworkId::Icq, "<command xmlns='http://jabber.org/protocol/commands' node='logout' sessionid='s' action='complete'/>"),
            Ok(CommandRequest::Submit { kind: CommandKind::Logout, session: Some("s".into()), command: Command::Logout })
        );
        // Refusals say what is wrong.
        let refused = submit(NetworkId::Icq, "info", &field("id", "romeo")).unwrap_err();
        assert_eq!(refused.defined_condition, DefinedCondition::BadRequest);
        assert!(refused
            .other
            .as_ref()
            .is_some_and(|e| e.is("bad-payload", COMMANDS_NS)));
        assert!(refused.texts["en"].contains("ICQ number"));
        let refused = submit(NetworkId::Icq, "status", &field("status", "sleepy")).unwrap_err();
        assert!(refused.texts["en"].contains("\"sleepy\" is not a status"));
        let refused = submit(NetworkId::Icq, "login", &field("username", "1")).unwrap_err();
        assert_eq!(refused.texts["en"], "The password is needed.");
    }

    #[test]
    fn cancels_and_errors() {
        assert_eq!(
            parse_xml(NetworkId::Icq, "<command xmlns='http://jabber.org/protocol/commands' node='add' sessionid='s' action='cancel'/>"),
            Ok(CommandRequest::Cancel { kind: CommandKind::Add, session: Some("s".into()) })
        );
        assert_xml(
            canceled(CommandKind::Add, "s"),
            "<command xmlns='http://jabber.org/protocol/commands' node='add' sessionid='s' status='canceled'/>",
        );
        let error = parse_xml(
            NetworkId::Msn,
            "<command xmlns='http://jabber.org/protocol/commands' node='join'/>",
        )
        .unwrap_err();
        assert_eq!(error.defined_condition, DefinedCondition::ItemNotFound);
        let error = parse_xml(
            NetworkId::Msn,
            "<command xmlns='http://jabber.org/protocol/commands' node='add' action='prev'/>",
        )
        .unwrap_err();
        assert!(error
            .other
            .as_ref()
            .is_some_and(|e| e.is("bad-action", COMMANDS_NS)));
        let error = parse_xml(
            NetworkId::Msn,
            "<command xmlns='http://jabber.org/protocol/commands' node='add' action='jump'/>",
        )
        .unwrap_err();
        assert!(error
            .other
            .as_ref()
            .is_some_and(|e| e.is("malformed-action", COMMANDS_NS)));
        assert_xml(
            completed(CommandKind::Add, "s", "Not logged in.", true),
            "<command xmlns='http://jabber.org/protocol/commands' node='add' sessionid='s' status='completed'><note type='error'>Not logged in.</note></command>",
        );
    }

    #[test]
    fn forms_offer_what_the_user_has() {
        let rooms = ["lobby".to_string(), "tea room".to_string()];
        let leave = form(
            NetworkId::Mig33,
            CommandKind::Leave,
            "s",
            &FormDefaults {
                rooms: &rooms,
                ..FormDefaults::default()
            },
        );
        let text = String::from(&leave);
        assert!(text.contains("<field label='Chatroom' type='list-single' var='room'><required/><option label='lobby'><value>lobby</value></option><option label='tea room'><value>tea room</value></option></field>"), "{text}");
        let add = String::from(&form(
            NetworkId::Icq,
            CommandKind::Add,
            "s",
            &FormDefaults::default(),
        ));
        assert!(!add.contains("group"), "{add}");
        let requests = [("1003".to_string(), "carol (1003): hi".to_string())];
        let authorize = String::from(&form(
            NetworkId::Icq,
            CommandKind::Authorize,
            "s",
            &FormDefaults {
                requests: &requests,
                ..FormDefaults::default()
            },
        ));
        assert!(authorize.contains("<field label='Request' type='list-single' var='id'><required/><option label='carol (1003): hi'><value>1003</value></option></field>"), "{authorize}");
        assert!(authorize.contains("(1 waiting)"), "{authorize}");
        let status = String::from(&form(
            NetworkId::Mig33,
            CommandKind::Status,
            "s",
            &FormDefaults::default(),
        ));
        assert!(
            status.contains("<value>dnd</value>") && status.contains("no invisible status"),
            "{status}"
        );
        // Every form parses as a XEP-0004 form.
        for network in NetworkId::ALL {
            for kind in CommandKind::ALL {
                let command = form(network, kind, "s", &FormDefaults::default());
                let x = command.get_child("x", ns::DATA_FORMS).unwrap().clone();
                DataForm::try_from(x).unwrap();
            }
        }
    }
}
