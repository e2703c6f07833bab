//! Stanza errors (RFC 6120 §8.3), and error replies to messages and presences (IQ replies
//! are in [`super::iq`]).
//!
//! An error is never answered with an error (RFC 6120 §8.3.1): the reply builders return
//! `None` for a stanza that is itself an error, so two gateways cannot bounce one back and
//! forth.

use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::xml_text;

/// An error with `condition`, the type RFC 6120 §8.3.3 gives it, and an English text for
/// the user when there is one.
pub fn stanza_error(condition: DefinedCondition, text: Option<&str>) -> StanzaError {
    use DefinedCondition as C;
    let type_ = match condition {
        C::BadRequest
        | C::JidMalformed
        | C::NotAcceptable
        | C::PolicyViolation
        | C::Redirect { .. } => ErrorType::Modify,
        C::Forbidden | C::NotAuthorized | C::RegistrationRequired | C::SubscriptionRequired => {
            ErrorType::Auth
        }
        C::RecipientUnavailable
        | C::RemoteServerTimeout
        | C::ResourceConstraint
        | C::UnexpectedRequest => ErrorType::Wait,
        _ => ErrorType::Cancel,
    };
    let mut error = StanzaError {
        type_,
        by: None,
        defined_condition: condition,
        texts: Default::default(),
        other: None,
    };
    if let Some(text) = text {
        error.texts.insert("en".into(), xml_text(text).into_owned());
    }
    error
}

/// [`stanza_error`] with an application-specific condition element beside the defined one
/// (XEP-0050's `<bad-payload/>`, for instance).
pub fn with_condition(mut error: StanzaError, specific: Element) -> StanzaError {
    error.other = Some(specific);
    error
}

/// The error reply to a message: same id, addresses swapped, type `error`; `None` for a
/// message that is an error itself.
pub fn message_error(request: &Message, error: StanzaError) -> Option<Message> {
    if request.type_ == MessageType::Error {
        return None;
    }
    let mut reply = Message::error(request.from.clone());
    reply.from = request.to.clone();
    reply.id = request.id.clone();
    reply.payloads.push(error.into());
    Some(reply)
}

/// The error reply to a presence: same id, addresses swapped, type `error`; `None` for a
/// presence that is an error itself.
pub fn presence_error(request: &Presence, error: StanzaError) -> Option<Presence> {
    if request.type_ == PresenceType::Error {
        return None;
    }
    let mut reply = Presence::error();
    reply.from = request.to.clone();
    reply.to = request.from.clone();
    reply.id = request.id.clone();
    reply.payloads.push(error.into());
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::assert_xml;
    use xmpp_parsers::jid::Jid;
    use xmpp_parsers::ns::DEFAULT_NS;

    #[test]
    fn error_types_follow_rfc_6120() {
        use DefinedCondition as C;
        for (condition, type_) in [
            (C::BadRequest, ErrorType::Modify),
            (C::NotAcceptable, ErrorType::Modify),
            (C::NotAuthorized, ErrorType::Auth),
            (C::RegistrationRequired, ErrorType::Auth),
            (C::RecipientUnavailable, ErrorType::Wait),
            (C::RemoteServerTimeout, ErrorType::Wait),
            (C::ItemNotFound, ErrorType::Cancel),
            (C::ServiceUnavailable, ErrorType::Cancel),
            (C::FeatureNotImplemented, ErrorType::Cancel),
        ] {
            assert_eq!(stanza_error(condition, None).type_, type_);
        }
    }

    #[test]
    fn message_errors_answer_once() {
        let mut message = Message::chat(Jid::new("123@icq.example.org").ok());
        message.from = Jid::new("romeo@example.org/orchard").ok();
        message.id = Some(xmpp_parsers::message::Id("m1".into()));
        let error = stanza_error(
            DefinedCondition::RecipientUnavailable,
            Some("You are not logged in to ICQ.\u{1}"),
        );
        let reply = message_error(&message, error).unwrap();
        assert_xml(
            reply.clone(),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='123@icq.example.org' to='romeo@example.org/orchard' id='m1' type='error'>\
                   <error type='wait'>\
                     <recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                     <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>You are not logged in to ICQ.\u{FFFD}</text>\
                   </error>\
                 </message>"
            ),
        );
        assert!(message_error(&reply, stanza_error(DefinedCondition::BadRequest, None)).is_none());
    }

    #[test]
    fn presence_errors_answer_once() {
        let presence = Presence::available()
            .with_from(Jid::new("romeo@example.org/orchard").unwrap())
            .with_to(Jid::new("lobby%mig33@rooms.example.org/romeo").unwrap());
        let error = with_condition(
            stanza_error(DefinedCondition::NotAuthorized, None),
            Element::bare("x", "urn:example"),
        );
        let reply = presence_error(&presence, error).unwrap();
        assert_xml(
            reply.clone(),
            &format!(
                "<presence xmlns='{DEFAULT_NS}' from='lobby%mig33@rooms.example.org/romeo' to='romeo@example.org/orchard' type='error'>\
                   <priority>0</priority>\
                   <error type='auth'>\
                     <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                     <x xmlns='urn:example'/>\
                   </error>\
                 </presence>"
            ),
        );
        assert!(presence_error(&reply, stanza_error(DefinedCondition::BadRequest, None)).is_none());
    }
}
