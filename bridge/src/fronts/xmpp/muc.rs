//! Rooms as a XEP-0045 service: a network's chatrooms and group conversations, each a
//! room on the rooms' domain (see [`super::jid`] for the room JIDs).
//!
//! Joining (XEP-0045 §7.2): the user sends presence to `room/nick` ([`parse_presence`]);
//! the service answers with the present occupants' presences and then the user's own,
//! last ([`join_presences`]), then the history (the room's last messages the bridge
//! relayed, at most 20 or the `maxstanzas` asked, as groupchat messages with
//! [`super::convert::with_delay`] from the room), then the subject ([`subject`]; an
//! empty one when the room has none). Every occupant's item carries `affiliation='member' role='participant'` and
//! the occupant's address: a legacy member's contact JID (bare: it has no resources), the
//! user's own full JID in their self-presence. The room is therefore non-anonymous, and
//! the self-presence carries status 100 with 110, and 210 when the service chose another
//! nickname than the one asked (the user's legacy name, say).
//!
//! Messages: [`groupchat`] from an occupant (or from the room itself for notices); a
//! user's message to the room is reflected to them too, with the id they gave.
//! [`parse_groupchat`] reads what the user sends to the room; changing the subject is
//! refused (`forbidden`). Leaving: [`occupant_left`], [`self_left`] (with 307 when the
//! legacy side removed the user, 332 when the gateway stops). Errors come from
//! [`join_error`] (a presence error carrying `<x xmlns='…/muc'/>`) and
//! [`super::errors::message_error`].

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::minidom::rxml::xml_ncname;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::presence::{Presence, Type};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::convert::{self, add_text, Incoming};
use super::errors::{presence_error, stanza_error};
use super::jid::{occupant, JidError};
use super::presence::presence as contact_presence;
use super::xml_text;
use crate::model::{FormattedText, MessageKind, Presence as CorePresence, PresenceState};

/// What a presence to an occupant JID asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OccupantRequest {
    /// Available presence to `room/nick`: a join (or, once in, a presence update or a
    /// change of nickname). `muc`: the client sent `<x xmlns='…/muc'/>` (XEP-0045 clients
    /// do on joining); `history`: the most messages of history it wants, if it said.
    Join {
        nick: String,
        muc: bool,
        history: Option<u32>,
    },
    /// Unavailable presence: leaving.
    Leave { nick: String },
}

/// Reads a presence sent to a room JID; `Ok(None)` for presences that ask nothing of a
/// room (probes, subscriptions, errors), `jid-malformed` for a join without nickname.
pub fn parse_presence(stanza: &Presence) -> Result<Option<OccupantRequest>, StanzaError> {
    let nick = stanza
        .to
        .as_ref()
        .and_then(|to| to.resource())
        .map(|r| r.as_str().to_owned());
    match stanza.type_ {
        Type::None => {
            let Some(nick) = nick else {
                return Err(stanza_error(
                    DefinedCondition::JidMalformed,
                    Some(
                        "A nickname is needed to join a room: send your presence to room/nickname.",
                    ),
                ));
            };
            let muc = stanza.payloads.iter().find(|p| p.is("x", ns::MUC));
            let history = muc
                .and_then(|x| x.get_child("history", ns::MUC))
                .and_then(|h| h.attr("maxstanzas"))
                .and_then(|n| n.parse().ok());
            Ok(Some(OccupantRequest::Join {
                nick,
                muc: muc.is_some(),
                history,
            }))
        }
        Type::Unavailable => Ok(Some(OccupantRequest::Leave {
            nick: nick.unwrap_or_default(),
        })),
        _ => Ok(None),
    }
}

/// Reads a message sent to a room: a `groupchat` message (text, chat state); changing the
/// subject is refused.
pub fn parse_groupchat(message: &Message) -> Result<Incoming, StanzaError> {
    if message.type_ != MessageType::Groupchat {
        return Err(stanza_error(
            DefinedCondition::BadRequest,
            Some("Messages to a room have the type groupchat."),
        ));
    }
    if !message.subjects.is_empty() && message.bodies.is_empty() {
        return Err(stanza_error(
            DefinedCondition::Forbidden,
            Some("The subject of a legacy chatroom cannot be changed from here."),
        ));
    }
    Ok(convert::parse(message))
}

/// `<x xmlns='…muc#user'>` with one item and status codes.
fn muc_user(jid: Option<String>, role: &str, statuses: &[u16], reason: Option<&str>) -> Element {
    let item = Element::builder("item", ns::MUC_USER)
        .attr(xml_ncname!("affiliation").into(), "member")
        .attr(xml_ncname!("role").into(), role)
        .attr(xml_ncname!("jid").into(), jid)
        .append_all(reason.map(|r| {
            Element::builder("reason", ns::MUC_USER)
                .append(xml_text(r).into_owned())
                .build()
        }))
        .build();
    Element::builder("x", ns::MUC_USER)
        .append(item)
        .append_all(statuses.iter().map(|code| {
            Element::builder("status", ns::MUC_USER)
                .attr(xml_ncname!("code").into(), code.to_string())
                .build()
        }))
        .build()
}

/// A legacy member's presence in the room, seen by `to`: available (away or busy when
/// the member is), with the member's contact JID when it has one.
pub fn occupant_presence(
    room: &BareJid,
    nick: &str,
    to: impl Into<Jid>,
    contact: Option<&BareJid>,
    presence: Option<&CorePresence>,
) -> Result<Presence, JidError> {
    let from = occupant(room, nick)?;
    // In the room means online: an offline or invisible state shows as available.
    let state = match presence.map(|p| p.state) {
        Some(state @ (PresenceState::Away | PresenceState::Busy)) => state,
        _ => PresenceState::Online,
    };
    let shown = CorePresence {
        state,
        status: presence.and_then(|p| p.status.clone()),
    };
    let mut stanza = contact_presence(from, to, Some(&shown));
    stanza.payloads.push(muc_user(
        contact.map(ToString::to_string),
        "participant",
        &[],
        None,
    ));
    Ok(stanza)
}

/// The user's own presence in the room (last of the join): their full JID, status 100
/// (non-anonymous) and 110 (self), and 210 when `nick` is not the `requested` one.
pub fn self_presence(
    room: &BareJid,
    nick: &str,
    user: &FullJid,
    requested: Option<&str>,
) -> Result<Presence, JidError> {
    let from = occupant(room, nick)?;
    let mut statuses = vec![100, 110];
    if requested.is_some_and(|r| r != from.resource().as_str()) {
        statuses.push(210);
    }
    let mut stanza = Presence::available().with_from(from).with_to(user.clone());
    stanza.payloads.push(muc_user(
        Some(user.to_string()),
        "participant",
        &statuses,
        None,
    ));
    Ok(stanza)
}

/// The presences answering a join, in XEP-0045's order: every other occupant (nickname,
/// contact JID, presence), then the user's own.
pub fn join_presences(
    room: &BareJid,
    user: &FullJid,
    requested: Option<&str>,
    nick: &str,
    occupants: &[(String, Option<BareJid>, Option<CorePresence>)],
) -> Result<Vec<Presence>, JidError> {
    let mut out = Vec::with_capacity(occupants.len() + 1);
    for (other, contact, presence) in occupants {
        out.push(occupant_presence(
            room,
            other,
            user.clone(),
            contact.as_ref(),
            presence.as_ref(),
        )?);
    }
    out.push(self_presence(room, nick, user, requested)?);
    Ok(out)
}

/// A legacy member left the room, seen by `to`.
pub fn occupant_left(
    room: &BareJid,
    nick: &str,
    to: impl Into<Jid>,
    contact: Option<&BareJid>,
) -> Result<Presence, JidError> {
    let mut stanza = Presence::unavailable()
        .with_from(occupant(room, nick)?)
        .with_to(to);
    stanza.payloads.push(muc_user(
        contact.map(ToString::to_string),
        "none",
        &[],
        None,
    ));
    Ok(stanza)
}

/// Why the user is out of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaving {
    /// The user asked to leave.
    Requested,
    /// The legacy side removed the user (status 307), with its reason if it gave one.
    Removed { reason: Option<String> },
    /// The gateway or the user's login stopped (status 332).
    Shutdown,
}

/// The user's own unavailable presence from the room.
pub fn self_left(
    room: &BareJid,
    nick: &str,
    user: &FullJid,
    why: &Leaving,
) -> Result<Presence, JidError> {
    let mut statuses = vec![110];
    let mut reason = None;
    match why {
        Leaving::Requested => {}
        Leaving::Removed { reason: r } => {
            statuses.push(307);
            reason = r.as_deref();
        }
        Leaving::Shutdown => statuses.push(332),
    }
    let mut stanza = Presence::unavailable()
        .with_from(occupant(room, nick)?)
        .with_to(user.clone());
    stanza
        .payloads
        .push(muc_user(Some(user.to_string()), "none", &statuses, reason));
    Ok(stanza)
}

/// A message in the room, from occupant `nick` (or from the room itself when `None`:
/// notices), to `to`, with stanza id `id`.
pub fn groupchat(
    room: &BareJid,
    nick: Option<&str>,
    to: impl Into<Jid>,
    id: &str,
    kind: MessageKind,
    text: &FormattedText,
) -> Result<Message, JidError> {
    let from: Jid = match nick {
        Some(nick) => occupant(room, nick)?.into(),
        None => room.clone().into(),
    };
    let mut message = Message::groupchat(Some(to.into()));
    message.from = Some(from);
    message.id = Some(Id(id.to_owned()));
    add_text(&mut message, kind, text);
    Ok(message)
}

/// The room's subject (no body: XEP-0045 §8.1), from the room or an occupant; empty when
/// the room has none (the last step of a join).
pub fn subject(
    room: &BareJid,
    nick: Option<&str>,
    to: impl Into<Jid>,
    subject: &str,
) -> Result<Message, JidError> {
    let from: Jid = match nick {
        Some(nick) => occupant(room, nick)?.into(),
        None => room.clone().into(),
    };
    let mut message = Message::groupchat(Some(to.into()));
    message.from = Some(from);
    message
        .subjects
        .insert(Lang::new(), xml_text(subject).into_owned());
    Ok(message)
}

/// The error answering a join (or another presence to the room): a presence error from
/// the occupant JID asked for, with `<x xmlns='…/muc'/>` (XEP-0045 §7.2.6–§7.2.9):
/// `not-authorized`, `registration-required` (not logged in), `item-not-found`,
/// `conflict` (nickname taken)…
pub fn join_error(request: &Presence, error: StanzaError) -> Option<Presence> {
    let mut reply = presence_error(request, error)?;
    reply.payloads.insert(0, Element::bare("x", ns::MUC));
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::jid::Domains;
    use crate::fronts::xmpp::testing::{assert_xml, element};
    use crate::model::ChatId;
    use xmpp_parsers::muc::MucUser;
    use xmpp_parsers::ns::DEFAULT_NS;

    fn room() -> BareJid {
        Domains::new("example.org")
            .unwrap()
            .room(
                crate::model::NetworkId::Mig33,
                &ChatId::Room("lobby".into()),
            )
            .unwrap()
    }

    fn user() -> FullJid {
        FullJid::new("romeo@example.org/orchard").unwrap()
    }

    fn presence_xml(xml: &str) -> Presence {
        Presence::try_from(element(&xml.replace("NS", DEFAULT_NS))).unwrap()
    }

    #[test]
    fn joining_and_leaving_requests() {
        let join = presence_xml(
            "<presence xmlns='NS' from='romeo@example.org/orchard' to='lobby%mig33@rooms.example.org/Romeo'>\
               <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='20'/></x></presence>",
        );
        assert_eq!(
            parse_presence(&join),
            Ok(Some(OccupantRequest::Join {
                nick: "Romeo".into(),
                muc: true,
                history: Some(20)
            }))
        );
        let update = presence_xml("<presence xmlns='NS' to='lobby%mig33@rooms.example.org/Romeo'><show>away</show></presence>");
        assert_eq!(
            parse_presence(&update),
            Ok(Some(OccupantRequest::Join {
                nick: "Romeo".into(),
                muc: false,
                history: None
            }))
        );
        let leave = presence_xml(
            "<presence xmlns='NS' type='unavailable' to='lobby%mig33@rooms.example.org/Romeo'/>",
        );
        assert_eq!(
            parse_presence(&leave),
            Ok(Some(OccupantRequest::Leave {
                nick: "Romeo".into()
            }))
        );
        let bare = presence_xml("<presence xmlns='NS' to='lobby%mig33@rooms.example.org'/>");
        assert_eq!(
            parse_presence(&bare).unwrap_err().defined_condition,
            DefinedCondition::JidMalformed
        );
        let probe =
            presence_xml("<presence xmlns='NS' type='probe' to='lobby%mig33@rooms.example.org'/>");
        assert_eq!(parse_presence(&probe), Ok(None));
    }

    #[test]
    fn the_join_sequence() {
        let carol = BareJid::new("carol@mig33.example.org").unwrap();
        let away = CorePresence {
            state: PresenceState::Away,
            status: None,
        };
        let presences = join_presences(
            &room(),
            &user(),
            Some("Romeo"),
            "romeo_m",
            &[
                ("Carol".into(), Some(carol), Some(away)),
                ("dave".into(), None, None),
            ],
        )
        .unwrap();
        assert_eq!(presences.len(), 3);
        assert_xml(
            presences[0].clone(),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/Carol' to='romeo@example.org/orchard'>\
                   <show>away</show><priority>0</priority>\
                   <x xmlns='http://jabber.org/protocol/muc#user'>\
                     <item affiliation='member' role='participant' jid='carol@mig33.example.org'/>\
                   </x>\
                 </presence>"
            ),
        );
        assert_xml(
            presences[1].clone(),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/dave' to='romeo@example.org/orchard'>\
                   <priority>0</priority>\
                   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/></x>\
                 </presence>"
            ),
        );
        // XEP-0045 example 24's shape: the self-presence, last, with 100, 110 and 210.
        assert_xml(
            presences[2].clone(),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/romeo_m' to='romeo@example.org/orchard'>\
                   <priority>0</priority>\
                   <x xmlns='http://jabber.org/protocol/muc#user'>\
                     <item affiliation='member' role='participant' jid='romeo@example.org/orchard'/>\
                     <status code='100'/><status code='110'/><status code='210'/>\
                   </x>\
                 </presence>"
            ),
        );
        // The self-presence parses as XEP-0045's muc#user payload.
        let x = presences[2].payloads.last().unwrap().clone();
        let parsed = MucUser::try_from(x).unwrap();
        assert_eq!(parsed.status.len(), 3);
        // The nickname asked for: no 210.
        let same = self_presence(&room(), "Romeo", &user(), Some("Romeo")).unwrap();
        assert_eq!(
            MucUser::try_from(same.payloads[0].clone())
                .unwrap()
                .status
                .len(),
            2
        );
    }

    #[test]
    fn leaving() {
        let carol = BareJid::new("carol@mig33.example.org").unwrap();
        assert_xml(
            occupant_left(&room(), "Carol", user(), Some(&carol)).unwrap(),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/Carol' to='romeo@example.org/orchard' type='unavailable'>\
                   <priority>0</priority>\
                   <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='none' jid='carol@mig33.example.org'/></x>\
                 </presence>"
            ),
        );
        let removed = self_left(
            &room(),
            "Romeo",
            &user(),
            &Leaving::Removed {
                reason: Some("Flooding".into()),
            },
        )
        .unwrap();
        assert_xml(
            removed,
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/Romeo' to='romeo@example.org/orchard' type='unavailable'>\
                   <priority>0</priority>\
                   <x xmlns='http://jabber.org/protocol/muc#user'>\
                     <item affiliation='member' role='none' jid='romeo@example.org/orchard'><reason>Flooding</reason></item>\
                     <status code='110'/><status code='307'/>\
                   </x>\
                 </presence>"
            ),
        );
        let shutdown = self_left(&room(), "Romeo", &user(), &Leaving::Shutdown).unwrap();
        let codes: Vec<_> = shutdown.payloads[0]
            .children()
            .filter_map(|c| c.attr("code"))
            .collect();
        assert_eq!(codes, ["110", "332"]);
    }

    #[test]
    fn messages_and_subject() {
        let text = FormattedText::plain("Harpier cries: 'tis time, 'tis time.");
        assert_xml(
            groupchat(&room(), Some("Carol"), user(), "rb1.7", MessageKind::Text, &text).unwrap(),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/Carol' to='romeo@example.org/orchard' id='rb1.7' type='groupchat'>\
                   <body>Harpier cries: 'tis time, 'tis time.</body>\
                 </message>"
            ),
        );
        let notice = groupchat(
            &room(),
            None,
            user(),
            "n1",
            MessageKind::Notice,
            &FormattedText::plain("Welcome"),
        )
        .unwrap();
        assert_eq!(
            notice.from.unwrap().to_string(),
            "lobby%mig33@rooms.example.org"
        );
        assert_xml(
            subject(&room(), None, user(), "Fire Burn and Cauldron Bubble!").unwrap(),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org' to='romeo@example.org/orchard' type='groupchat'>\
                   <subject>Fire Burn and Cauldron Bubble!</subject>\
                 </message>"
            ),
        );
        let empty = subject(&room(), None, user(), "").unwrap();
        assert!(String::from(&Element::from(empty)).contains("<subject"));

        let read = |xml: &str| {
            parse_groupchat(&Message::try_from(element(&xml.replace("NS", DEFAULT_NS))).unwrap())
        };
        let said = read("<message xmlns='NS' to='lobby%mig33@rooms.example.org' id='u1' type='groupchat'><body>hi all</body></message>").unwrap();
        assert_eq!(said.id.as_deref(), Some("u1"));
        assert_eq!(
            said.text,
            Some((MessageKind::Text, FormattedText::plain("hi all")))
        );
        let topic = read("<message xmlns='NS' to='lobby%mig33@rooms.example.org' type='groupchat'><subject>new</subject></message>");
        assert_eq!(
            topic.unwrap_err().defined_condition,
            DefinedCondition::Forbidden
        );
        let chat = read("<message xmlns='NS' to='lobby%mig33@rooms.example.org' type='chat'><body>x</body></message>");
        assert_eq!(
            chat.unwrap_err().defined_condition,
            DefinedCondition::BadRequest
        );
    }

    #[test]
    fn join_errors() {
        let join = presence_xml(
            "<presence xmlns='NS' from='romeo@example.org/orchard' to='lobby%mig33@rooms.example.org/Romeo' id='j1'>\
               <x xmlns='http://jabber.org/protocol/muc'/></presence>",
        );
        let error = stanza_error(
            DefinedCondition::RegistrationRequired,
            Some("Log in to mig33 first."),
        );
        assert_xml(
            join_error(&join, error).unwrap(),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/Romeo' to='romeo@example.org/orchard' id='j1' type='error'>\
                   <priority>0</priority>\
                   <x xmlns='http://jabber.org/protocol/muc'/>\
                   <error type='auth'>\
                     <registration-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                     <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Log in to mig33 first.</text>\
                   </error>\
                 </presence>"
            ),
        );
    }
}
