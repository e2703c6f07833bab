//! Mappings between mig33 packets and the core's types (presence, contacts, chats).

use mig33_proto as proto;
use proto::DestinationType;

use crate::core::{ChatId, Contact, Group, NetworkId, Presence, PresenceState};

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

pub fn contact(c: &proto::Contact) -> Contact {
    let display = c.display_name.trim();
    Contact {
        id: canonical(&c.username),
        display_name: (!display.is_empty()).then(|| display.to_owned()),
        groups: c.group_id.map(|g| g.to_string()).into_iter().collect(),
    }
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
}
