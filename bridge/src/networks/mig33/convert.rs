//! Mappings between mig33 packets and the core's types (presence, contacts, chats).

use std::collections::HashMap;

use mig33_proto as proto;
use proto::DestinationType;

use crate::core::{ChatId, Contact, Group, NetworkId, Presence, PresenceState, RoomListing};

/// A username in the core's canonical form (mig33 usernames are case-insensitive).
pub fn canonical(username: &str) -> String {
    NetworkId::Mig33.canonical_id(username)
}

/// What a mig33 presence looks like in Matrix. Roaming (signed in from a phone) is
/// online; busy and away carry their name as the status message so that Matrix
/// clients, which only know "unavailable", can tell them apart.
pub fn presence_to_core(presence: proto::Presence) -> Presence {
    let (state, status) = match presence {
        proto::Presence::Available => (PresenceState::Online, None),
        proto::Presence::Roaming => (PresenceState::Online, Some("Roaming")),
        proto::Presence::Busy => (PresenceState::Busy, Some("Busy")),
        proto::Presence::Away => (PresenceState::Away, Some("Away")),
        proto::Presence::Offline => (PresenceState::Offline, None),
        // An unknown code from a signed-in user: online is the least surprising reading.
        proto::Presence::Other(_) => (PresenceState::Online, None),
    };
    Presence {
        state,
        status: status.map(str::to_owned),
    }
}

/// The mig33 presence to announce for a Matrix user's choice. mig33 has no invisible
/// state: "offline" while staying connected is the closest (contacts see the user go
/// offline, messages still arrive).
pub fn presence_from_core(state: PresenceState) -> proto::Presence {
    match state {
        PresenceState::Online => proto::Presence::Available,
        PresenceState::Away => proto::Presence::Away,
        PresenceState::Busy => proto::Presence::Busy,
        PresenceState::Invisible | PresenceState::Offline => proto::Presence::Offline,
    }
}

/// A contact's presence from a CONTACT packet: its own status message wins over the
/// presence name.
pub fn contact_presence(contact: &proto::Contact) -> Option<Presence> {
    let mut presence = presence_to_core(contact.presence?);
    if let Some(text) = contact.status_message.as_deref().map(str::trim) {
        if !text.is_empty() {
            presence.status = Some(text.to_owned());
        }
    }
    Some(presence)
}

/// A room of the server's chatroom list.
pub fn listing(room: proto::Chatroom) -> RoomListing {
    RoomListing {
        name: room.name,
        description: room.description.filter(|d| !d.trim().is_empty()),
        members: room.participant_count.map(u32::from),
    }
}

pub fn contact(c: &proto::Contact) -> Contact {
    let display = c.display_name.trim();
    Contact {
        id: canonical(&c.username),
        display_name: (!display.is_empty()).then(|| display.to_owned()),
        groups: c.group_id.map(|g| g.to_string()).into_iter().collect(),
    }
}

/// A chatroom's members as the core wants them: canonical ids, each once, in the
/// server's order, without this login's own username (the user is in the room as
/// themself, not as a ghost), with the contact list's display names where known.
pub fn room_members<'a>(
    participants: &[String],
    own_username: &str,
    contacts: impl IntoIterator<Item = &'a proto::Contact>,
) -> Vec<Contact> {
    let own = canonical(own_username);
    let names: HashMap<String, Option<String>> = contacts
        .into_iter()
        .map(|c| {
            let c = contact(c);
            (c.id, c.display_name)
        })
        .collect();
    let mut members: Vec<Contact> = Vec::new();
    for id in participants.iter().map(|p| canonical(p)) {
        if id.is_empty() || id == own || members.iter().any(|m| m.id == id) {
            continue;
        }
        members.push(Contact {
            display_name: names.get(&id).cloned().flatten(),
            id,
            groups: Vec::new(),
        });
    }
    members
}

pub fn group(g: &proto::Group) -> Group {
    Group {
        id: g.group_id.to_string(),
        name: g.name.clone(),
    }
}

/// Where a received MESSAGE belongs and who sent it; `None` for a message that cannot
/// be placed (no sender, unknown destination type).
pub fn message_chat(m: &proto::Message) -> Option<(ChatId, String)> {
    let from = canonical(&m.source);
    if from.is_empty() {
        return None;
    }
    let chat = match m.destination_type {
        DestinationType::Private => ChatId::Direct(from.clone()),
        DestinationType::Chatroom => ChatId::Room(m.destination.clone()),
        DestinationType::GroupChat => ChatId::Group(m.destination.clone()),
        DestinationType::Other(_) => return None,
    };
    Some((chat, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_both_ways() {
        let away = presence_to_core(proto::Presence::Away);
        assert_eq!(away.state, PresenceState::Away);
        assert_eq!(away.status.as_deref(), Some("Away"));
        let roaming = presence_to_core(proto::Presence::Roaming);
        assert_eq!(roaming.state, PresenceState::Online);
        assert_eq!(roaming.status.as_deref(), Some("Roaming"));
        assert_eq!(
            presence_to_core(proto::Presence::Busy).state,
            PresenceState::Busy
        );
        assert_eq!(
            presence_to_core(proto::Presence::Offline).state,
            PresenceState::Offline
        );
        assert_eq!(
            presence_from_core(PresenceState::Invisible),
            proto::Presence::Offline
        );
        assert_eq!(
            presence_from_core(PresenceState::Online),
            proto::Presence::Available
        );
    }

    #[test]
    fn contacts_and_messages() {
        let c = proto::Contact {
            username: "Bob".into(),
            display_name: "Bobby".into(),
            group_id: Some(2),
            contact_id: 1,
            presence: Some(proto::Presence::Away),
            status_message: Some("lunch".into()),
            ..Default::default()
        };
        let core = contact(&c);
        assert_eq!(core.id, "bob");
        assert_eq!(core.display_name.as_deref(), Some("Bobby"));
        assert_eq!(core.groups, vec!["2".to_owned()]);
        assert_eq!(
            contact_presence(&c).unwrap().status.as_deref(),
            Some("lunch")
        );

        let m = proto::Message::text("Carol", DestinationType::Chatroom, "lobby", "hi");
        assert_eq!(
            message_chat(&m),
            Some((ChatId::Room("lobby".into()), "carol".into()))
        );
        let m = proto::Message::text("carol", DestinationType::Private, "alice", "hi");
        assert_eq!(
            message_chat(&m),
            Some((ChatId::Direct("carol".into()), "carol".into()))
        );
        let m = proto::Message::text("", DestinationType::Private, "alice", "hi");
        assert_eq!(message_chat(&m), None);
    }

    #[test]
    fn room_members_leave_out_the_user_and_carry_contact_names() {
        let bob = proto::Contact {
            username: "Bob".into(),
            display_name: "Bobby".into(),
            contact_id: 1,
            ..Default::default()
        };
        let carol = proto::Contact {
            username: "carol".into(),
            display_name: " ".into(),
            contact_id: 2,
            ..Default::default()
        };
        let participants: Vec<String> = ["alice", "bob", "Carol", "dave", "BOB", "ALICE"]
            .map(String::from)
            .to_vec();
        let members = room_members(&participants, "Alice", [&bob, &carol]);
        let got: Vec<(&str, Option<&str>)> = members
            .iter()
            .map(|m| (m.id.as_str(), m.display_name.as_deref()))
            .collect();
        assert_eq!(
            got,
            [("bob", Some("Bobby")), ("carol", None), ("dave", None)]
        );
    }
}
