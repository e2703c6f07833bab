//! What each network can do and how its people are named: declared once here, per
//! network, and read by the core (which commands a network has, refusing the others at
//! once), `help`, the README's table test, and the fronts (XMPP registration, the
//! gateway's prompt, ad-hoc commands, id checks). It sits in the vocabulary layer
//! because the core and the fronts read it and may not import the networks; each
//! network's tests check that its implementation keeps to it.

use super::NetworkId;

/// One network's declaration.
#[derive(Debug)]
pub struct Capabilities {
    /// Its name in the config, commands and stored keys: "icq".
    pub name: &'static str,
    /// Its name for people: "MSN Messenger".
    pub display_name: &'static str,
    /// The default ghost localpart template; `{id}` is the escaped legacy id.
    pub ghost_template: &'static str,
    /// Ids that differ only in case are one person (they are kept lower-cased).
    pub ids_ignore_case: bool,
    /// A directory to search and profiles to show (`search`, `info`).
    pub directory: bool,
    /// Named chatrooms shared by everyone in them (`join`, `leave`).
    pub chatrooms: bool,
    /// Conversations with several people that exist for one login (MSN switchboards).
    pub group_chats: bool,
    /// Contacts in groups the user names (`add <id> <group>`).
    pub contact_groups: bool,
    /// An invisible status (without it, invisible shows as offline and stays connected).
    pub invisible: bool,
    /// Messages stored by the server while the user was offline.
    pub offline_messages: bool,
    /// Text formatting (bold, italic, colours).
    pub formatting: bool,
    /// Links apart from the text (ICQ URL messages).
    pub links: bool,
    /// What its people use, as an XEP-0030 client type: "pc", "phone".
    pub client_type: &'static str,
    /// Typing notifications.
    pub typing: bool,
    /// Nudges (MSN's buzz that shakes the window): `/me nudges` on Matrix, XEP-0224
    /// attention on XMPP.
    pub nudges: bool,
    /// Contacts' pictures (MSN display pictures): ghosts' avatars, XMPP vCard photos.
    pub avatars: bool,
    /// Files both ways as real transfers (MSN file transfer): a contact's file arrives as
    /// a file, a user's file is offered to the contact (a link only if they decline).
    /// Without it a user's file reaches a contact as a link.
    pub files: bool,
    /// People ask the user's permission to add them, and the user grants or denies it
    /// (`authorize`, `deny`; ICQ's authorization requests).
    pub authorization: bool,
    /// The legacy id, as a form's field label: "ICQ number (UIN)".
    pub id_label: &'static str,
    /// What a valid id is, for an error: "an ICQ number (UIN): digits only".
    pub id_syntax: &'static str,
    /// The XEP-0100 gateway prompt for a contact's id.
    pub id_prompt: &'static str,
    /// Whether a canonical id has the shape of an id here (the server has the last word).
    pub valid_id: fn(&str) -> bool,
    /// What a user should know about passwords here, if anything.
    pub password_note: Option<&'static str>,
    /// "a" or "an", before the network's display name.
    pub article: &'static str,
}

/// A feature a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Directory,
    Chatrooms,
    Authorization,
}

impl Capabilities {
    pub fn has(&self, feature: Feature) -> bool {
        match feature {
            Feature::Directory => self.directory,
            Feature::Chatrooms => self.chatrooms,
            Feature::Authorization => self.authorization,
        }
    }
}

impl NetworkId {
    /// This network's declaration.
    pub fn capabilities(self) -> &'static Capabilities {
        match self {
            NetworkId::Icq => &ICQ,
            NetworkId::Msn => &MSN,
            NetworkId::Mig33 => &MIG33,
        }
    }
}

const ICQ: Capabilities = Capabilities {
    name: "icq",
    display_name: "ICQ",
    ghost_template: "icq_{id}",
    ids_ignore_case: false,
    directory: true,
    chatrooms: false,
    group_chats: false,
    contact_groups: false,
    invisible: true,
    offline_messages: true,
    formatting: false,
    links: true,
    client_type: "pc",
    typing: false,
    nudges: false,
    avatars: false,
    files: false,
    authorization: true,
    id_label: "ICQ number (UIN)",
    id_syntax: "an ICQ number (UIN): digits only",
    id_prompt: "Please enter the ICQ Number of the person you would like to contact.",
    valid_id: |id| {
        id.parse::<u32>().is_ok_and(|uin| uin > 0) && id.bytes().all(|b| b.is_ascii_digit())
    },
    password_note: Some("ICQ passwords have at most 8 characters."),
    article: "an",
};

const MSN: Capabilities = Capabilities {
    name: "msn",
    display_name: "MSN Messenger",
    ghost_template: "msn_{id}",
    ids_ignore_case: true,
    directory: false,
    chatrooms: false,
    group_chats: true,
    contact_groups: true,
    invisible: true,
    offline_messages: false,
    formatting: true,
    links: false,
    client_type: "pc",
    typing: true,
    nudges: true,
    avatars: true,
    files: true,
    authorization: false,
    id_label: "MSN e-mail address",
    id_syntax: "an MSN e-mail address (in a JID, its @ is written \\40)",
    id_prompt:
        "Please enter the MSN Messenger e-mail address of the person you would like to contact.",
    valid_id: |id| {
        id.split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !host.contains('@'))
            && !id.contains(char::is_whitespace)
    },
    password_note: None,
    article: "an",
};

const MIG33: Capabilities = Capabilities {
    name: "mig33",
    display_name: "mig33",
    ghost_template: "mig33_{id}",
    ids_ignore_case: true,
    directory: false,
    chatrooms: true,
    group_chats: false,
    contact_groups: true,
    invisible: false,
    offline_messages: false,
    formatting: false,
    links: false,
    client_type: "phone",
    typing: false,
    nudges: false,
    avatars: false,
    files: false,
    authorization: false,
    id_label: "mig33 username",
    id_syntax: "a mig33 username",
    id_prompt: "Please enter the mig33 username of the person you would like to contact.",
    valid_id: |id| !id.is_empty() && !id.contains(char::is_whitespace),
    password_note: None,
    article: "a",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The declared name is the one stored (serde) and parsed back, and every network
    /// has its own name and ghost template (two alike would mix two networks' users).
    #[test]
    fn each_network_is_named_once_and_alike_everywhere() {
        for network in NetworkId::ALL {
            let c = network.capabilities();
            assert_eq!(
                serde_json::to_string(&network).unwrap(),
                format!("\"{}\"", c.name)
            );
            assert_eq!(NetworkId::parse(c.name), Some(network));
            assert!(c.ghost_template.contains("{id}"), "{}", c.name);
        }
        let names: std::collections::BTreeSet<_> =
            NetworkId::ALL.map(|n| n.capabilities().name).into();
        let templates: std::collections::BTreeSet<_> = NetworkId::ALL
            .map(|n| n.capabilities().ghost_template)
            .into();
        assert_eq!(names.len(), NetworkId::ALL.len());
        assert_eq!(templates.len(), NetworkId::ALL.len());
        assert_eq!(NetworkId::all_names(), "icq, msn, mig33");
    }
}
