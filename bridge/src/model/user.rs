//! The user key: who a bridge user is, qualified by their front. A Matrix user id
//! (`@alice:example.org`) or `xmpp:` and a bare JID (`xmpp:alice@example.org`); the
//! store keys everything of a user by it, and the core routes by it to the user's front.

/// A front-qualified user (see the module docs).
pub type UserKey = String;

/// The part of a user id that says which front owns shared conversations (chatrooms): a
/// shared chatroom has one conversation per front, owned by this prefix ("" for Matrix,
/// which came first and kept its keys).
pub fn shared_owner(user: &str) -> &'static str {
    if user.starts_with(XMPP_USER_PREFIX) {
        XMPP_USER_PREFIX
    } else {
        ""
    }
}

/// XMPP users are `xmpp:` and their bare JID.
pub const XMPP_USER_PREFIX: &str = "xmpp:";
