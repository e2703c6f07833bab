//! One-to-one messages between the core's values and `<message type='chat'/>`.
//!
//! Legacy -> XMPP ([`chat_message`]): the plain text is the `<body>`; when the core's
//! text has HTML with formatting, an XHTML-IM payload beside it ([`super::xhtml`]);
//! emotes are `/me ` + text (XEP-0245) in both; a nudge is an emote ("/me nudged you")
//! with XEP-0224 `<attention/>`; the message carries `<active/>` (XEP-0085).
//! [`with_delay`] adds a XEP-0203 stamp (whole seconds) for offline messages,
//! [`with_receipt_request`] asks for a XEP-0184 receipt. [`chat_state`] sends typing as
//! `<composing/>` / `<paused/>` with a no-store hint (XEP-0334), [`receipt`] a
//! `<received/>` once the legacy network confirmed a message.
//!
//! XMPP -> legacy ([`parse`]): everything a message carries, typed ([`Incoming`]):
//! the text (`/me ` read as an emote, XHTML-IM as the core's HTML; a XEP-0308 correction
//! as "Correction: <text>", as on the Matrix side), `<attention/>` (a nudge), typing from
//! chat states (`composing`
//! is typing, any other state is not), a receipt request or a receipt, a delay stamp, and
//! the error of a bounced message.

use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::receipts::{Received, Request};
use xmpp_parsers::stanza_error::StanzaError;

use super::{xhtml, xml_text};
use crate::model::{FormattedText, MessageKind};

/// XEP-0334's namespace.
pub const HINTS_NS: &str = "urn:xmpp:hints";
/// XEP-0308's namespace.
pub const CORRECTION_NS: &str = "urn:xmpp:message-correct:0";

const EMOTE: &str = "/me ";

/// A chat message with `text`, of `kind`, from `from` to `to`, with stanza id `id`.
pub fn chat_message(
    from: impl Into<Jid>,
    to: impl Into<Jid>,
    id: &str,
    kind: MessageKind,
    text: &FormattedText,
) -> Message {
    let mut message = Message::chat(Some(to.into()));
    message.from = Some(from.into());
    message.id = Some(Id(id.to_owned()));
    add_text(&mut message, kind, text);
    if kind == MessageKind::Nudge {
        message
            .payloads
            .push(Element::bare("attention", ns::ATTENTION));
    }
    message.payloads.push(ChatState::Active.into());
    message
}

/// Puts `text` in `message`: the body, and the XHTML-IM payload when there is formatting.
pub(crate) fn add_text(message: &mut Message, kind: MessageKind, text: &FormattedText) {
    let prefix = matches!(kind, MessageKind::Emote | MessageKind::Nudge).then_some(EMOTE);
    let body = format!("{}{}", prefix.unwrap_or_default(), text.plain);
    message
        .bodies
        .insert(Lang::new(), xml_text(&body).into_owned());
    if let Some(html) = text
        .html
        .as_deref()
        .and_then(|h| xhtml::to_xhtml_im(h, prefix))
    {
        message.payloads.push(html);
    }
}

/// A XEP-0203 stamp: delayed by `from` (the gateway), sent at `sent_at` (milliseconds
/// since the epoch, kept to the second, written in UTC with `Z` as in the XEP), with a
/// reason such as "Offline Storage"; `None` when the time is out of range.
pub fn delay(from: impl Into<Jid>, sent_at: u64, reason: Option<&str>) -> Option<Element> {
    use xmpp_parsers::minidom::rxml::xml_ncname;
    let seconds = i64::try_from(sent_at / 1000).ok()?;
    let stamp = chrono::DateTime::from_timestamp(seconds, 0)?;
    Some(
        Element::builder("delay", ns::DELAY)
            .attr(xml_ncname!("from").into(), from.into().to_string())
            .attr(
                xml_ncname!("stamp").into(),
                stamp.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
            .append_all(reason.map(|r| xml_text(r).into_owned()))
            .build(),
    )
}

/// `message` with a delay stamp (see [`delay`]); unchanged when the time is out of range.
pub fn with_delay(
    mut message: Message,
    from: impl Into<Jid>,
    sent_at: u64,
    reason: Option<&str>,
) -> Message {
    if let Some(delay) = delay(from, sent_at, reason) {
        message.payloads.push(delay);
    }
    message
}

/// `message` asking for a delivery receipt (XEP-0184).
pub fn with_receipt_request(mut message: Message) -> Message {
    message.payloads.push(Request.into());
    message
}

/// A typing notification: `<composing/>` while typing, `<paused/>` when stopped.
pub fn chat_state(from: impl Into<Jid>, to: impl Into<Jid>, typing: bool) -> Message {
    let mut message = Message::chat(Some(to.into()));
    message.from = Some(from.into());
    let state = if typing {
        ChatState::Composing
    } else {
        ChatState::Paused
    };
    message.payloads.push(state.into());
    // Not worth keeping in offline storage or archives.
    message.payloads.push(Element::bare("no-store", HINTS_NS));
    message
}

/// The receipt for the message with stanza id `id` (XEP-0184), from its recipient.
pub fn receipt(from: impl Into<Jid>, to: impl Into<Jid>, id: &str) -> Message {
    let mut message = Message::chat(Some(to.into()));
    message.from = Some(from.into());
    message.payloads.push(
        Received {
            id: xml_text(id).into_owned(),
        }
        .into(),
    );
    message
}

/// What an incoming message carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Incoming {
    /// The stanza id (a receipt answers it).
    pub id: Option<String>,
    /// The text to send, if the message has a non-empty body.
    pub text: Option<(MessageKind, FormattedText)>,
    /// From a chat state: `Some(true)` composing, `Some(false)` any other state.
    pub typing: Option<bool>,
    /// The sender asks for a receipt (XEP-0184).
    pub receipt_requested: bool,
    /// XEP-0224 attention: a nudge where the network has them.
    pub attention: bool,
    /// A receipt for the message with this id.
    pub received: Option<String>,
    /// A XEP-0203 stamp, in milliseconds since the epoch.
    pub sent_at: Option<u64>,
    /// A `type='error'` message: the error, when it has a readable one.
    pub bounced: Option<Option<StanzaError>>,
}

/// Reads a message (never fails: what is not understood is left out).
pub fn parse(message: &Message) -> Incoming {
    let mut incoming = Incoming {
        id: message.id.as_ref().map(|id| id.0.clone()),
        ..Incoming::default()
    };
    let mut html = None;
    let mut correction = false;
    for payload in &message.payloads {
        let ns = payload.ns();
        match (payload.name(), ns.as_str()) {
            ("html", ns::XHTML_IM) => html = xhtml::from_xhtml_im(payload),
            (_, ns::CHATSTATES) => {
                if let Ok(state) = ChatState::try_from(payload.clone()) {
                    incoming.typing = Some(state == ChatState::Composing);
                }
            }
            ("request", ns::RECEIPTS) => incoming.receipt_requested = true,
            ("received", ns::RECEIPTS) => incoming.received = payload.attr("id").map(str::to_owned),
            ("delay", ns::DELAY) => {
                if let Ok(delay) = Delay::try_from(payload.clone()) {
                    incoming.sent_at = u64::try_from(delay.stamp.0.timestamp_millis()).ok();
                }
            }
            ("replace", CORRECTION_NS) => correction = true,
            ("attention", ns::ATTENTION) => incoming.attention = true,
            _ => {}
        }
    }
    if message.type_ == MessageType::Error {
        let error = message
            .payloads
            .iter()
            .filter(|p| p.name() == "error")
            .find_map(|p| StanzaError::try_from(p.clone()).ok());
        incoming.bounced = Some(error);
        return incoming;
    }
    if let Some((_, body)) = message.get_best_body(vec![]) {
        incoming.text = body_text(body, html, correction);
    }
    incoming
}

fn body_text(
    body: &str,
    html: Option<String>,
    correction: bool,
) -> Option<(MessageKind, FormattedText)> {
    if body.trim().is_empty() {
        return None;
    }
    if correction {
        let text = FormattedText::plain(format!("Correction: {body}"));
        return Some((MessageKind::Text, text));
    }
    if let Some(action) = body.strip_prefix(EMOTE) {
        let html = html.map(|h| h.strip_prefix(EMOTE).map(str::to_owned).unwrap_or(h));
        let text = FormattedText {
            plain: action.to_owned(),
            html,
        };
        return Some((MessageKind::Emote, text));
    }
    let text = FormattedText {
        plain: body.to_owned(),
        html,
    };
    Some((MessageKind::Text, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};
    use xmpp_parsers::ns::DEFAULT_NS;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    fn incoming(xml: &str) -> Message {
        Message::try_from(element(&xml.replace("NS", DEFAULT_NS))).unwrap()
    }

    #[test]
    fn a_plain_message() {
        let message = chat_message(
            jid("123456@icq.example.org"),
            jid("romeo@example.org"),
            "rb1.42",
            MessageKind::Text,
            &FormattedText::plain("Art thou not Romeo <3 & a Montague?\u{1}"),
        );
        assert_xml(
            message.clone(),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='123456@icq.example.org' to='romeo@example.org' id='rb1.42' type='chat'>\
                   <body>Art thou not Romeo &lt;3 &amp; a Montague?\u{FFFD}</body>\
                   <active xmlns='http://jabber.org/protocol/chatstates'/>\
                 </message>"
            ),
        );
        // It reads back as the same text.
        let back = parse(&message);
        assert_eq!(back.id.as_deref(), Some("rb1.42"));
        assert_eq!(back.typing, Some(false));
        assert_eq!(
            back.text,
            Some((
                MessageKind::Text,
                FormattedText::plain("Art thou not Romeo <3 & a Montague?\u{FFFD}")
            ))
        );
    }

    #[test]
    fn nudges_both_ways() {
        // XEP-0224 example 2's payload, beside the emote a client without it shows.
        let message = chat_message(
            jid("bob\\40example.com@msn.example.org"),
            jid("romeo@example.org"),
            "rb1.44",
            MessageKind::Nudge,
            &FormattedText::plain("nudged you"),
        );
        assert_xml(
            message,
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='bob\\40example.com@msn.example.org' to='romeo@example.org' id='rb1.44' type='chat'>\
                   <body>/me nudged you</body>\
                   <attention xmlns='urn:xmpp:attention:0'/>\
                   <active xmlns='http://jabber.org/protocol/chatstates'/>\
                 </message>"
            ),
        );
        // XEP-0224 example 1: attention alone, and with a body.
        let alone = parse(&incoming(
            "<message xmlns='NS' type='headline'><attention xmlns='urn:xmpp:attention:0'/></message>",
        ));
        assert!(alone.attention);
        assert_eq!(alone.text, None);
        let with_body = parse(&incoming(
            "<message xmlns='NS' type='chat'><body>Why don't you answer, Juliet?</body><attention xmlns='urn:xmpp:attention:0'/></message>",
        ));
        assert!(with_body.attention && with_body.text.is_some());
        assert!(!parse(&incoming("<message xmlns='NS'><body>hi</body></message>")).attention);
    }

    #[test]
    fn formatted_emote_offline_with_receipt_request() {
        let text = FormattedText {
            plain: "waves".into(),
            html: Some("<b>waves</b>".into()),
        };
        let message = chat_message(
            jid("alice\\40hotmail.com@msn.example.org"),
            jid("romeo@example.org"),
            "rb1.43",
            MessageKind::Emote,
            &text,
        );
        let message = with_receipt_request(with_delay(
            message,
            jid("msn.example.org"),
            1_031_699_305_999,
            Some("Offline Storage"),
        ));
        assert_xml(
            message.clone(),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='alice\\40hotmail.com@msn.example.org' to='romeo@example.org' id='rb1.43' type='chat'>\
                   <body>/me waves</body>\
                   <html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>/me <strong>waves</strong></body></html>\
                   <active xmlns='http://jabber.org/protocol/chatstates'/>\
                   <delay xmlns='urn:xmpp:delay' from='msn.example.org' stamp='2002-09-10T23:08:25Z'>Offline Storage</delay>\
                   <request xmlns='urn:xmpp:receipts'/>\
                 </message>"
            ),
        );
        let back = parse(&message);
        assert_eq!(
            back.text,
            Some((
                MessageKind::Emote,
                FormattedText {
                    plain: "waves".into(),
                    html: Some("<strong>waves</strong>".into())
                }
            ))
        );
        assert_eq!(back.sent_at, Some(1_031_699_305_000));
        assert!(back.receipt_requested);
    }

    #[test]
    fn plain_html_adds_no_xhtml() {
        let text = FormattedText {
            plain: "a & b".into(),
            html: Some("a &amp; b".into()),
        };
        let message = chat_message(
            jid("1@icq.example.org"),
            jid("r@example.org"),
            "1",
            MessageKind::Notice,
            &text,
        );
        assert!(!message.payloads.iter().any(|p| p.is("html", ns::XHTML_IM)));
    }

    #[test]
    fn typing_and_receipts() {
        assert_xml(
            chat_state(jid("123456@icq.example.org"), jid("romeo@example.org/orchard"), true),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='123456@icq.example.org' to='romeo@example.org/orchard' type='chat'>\
                   <composing xmlns='http://jabber.org/protocol/chatstates'/>\
                   <no-store xmlns='urn:xmpp:hints'/>\
                 </message>"
            ),
        );
        let stopped = parse(&chat_state(
            jid("a@icq.example.org"),
            jid("b@example.org"),
            false,
        ));
        assert_eq!(stopped.typing, Some(false));
        assert_eq!(stopped.text, None);
        // XEP-0184 example 2's receipt.
        assert_xml(
            receipt(jid("123456@icq.example.org"), jid("romeo@example.org/orchard"), "richard2-4.1.247"),
            &format!(
                "<message xmlns='{DEFAULT_NS}' from='123456@icq.example.org' to='romeo@example.org/orchard' type='chat'>\
                   <received xmlns='urn:xmpp:receipts' id='richard2-4.1.247'/>\
                 </message>"
            ),
        );
    }

    #[test]
    fn incoming_messages_from_clients() {
        // XEP-0085 example: a message with its state, and a receipt request.
        let m = incoming(
            "<message xmlns='NS' from='romeo@example.org/orchard' to='123456@icq.example.org' id='m1' type='chat'>\
               <body>Who's there?</body><active xmlns='http://jabber.org/protocol/chatstates'/>\
               <request xmlns='urn:xmpp:receipts'/>\
             </message>",
        );
        let parsed = parse(&m);
        assert_eq!(
            parsed.text,
            Some((MessageKind::Text, FormattedText::plain("Who's there?")))
        );
        assert_eq!(parsed.typing, Some(false));
        assert!(parsed.receipt_requested);
        let typing = parse(&incoming(
            "<message xmlns='NS' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        ));
        assert_eq!((typing.typing, typing.text), (Some(true), None));
        let received = parse(&incoming(
            "<message xmlns='NS'><received xmlns='urn:xmpp:receipts' id='rb1.42'/></message>",
        ));
        assert_eq!(received.received.as_deref(), Some("rb1.42"));
        let corrected = parse(&incoming(
            "<message xmlns='NS' type='chat'><body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>",
        ));
        assert_eq!(
            corrected.text,
            Some((MessageKind::Text, FormattedText::plain("Correction: fixed")))
        );
        let formatted = parse(&incoming(
            "<message xmlns='NS' type='chat'><body>hi there</body>\
               <html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><em>hi</em> there</body></html>\
             </message>",
        ));
        assert_eq!(
            formatted.text,
            Some((
                MessageKind::Text,
                FormattedText {
                    plain: "hi there".into(),
                    html: Some("<em>hi</em> there".into())
                }
            ))
        );
        let blank = parse(&incoming(
            "<message xmlns='NS' type='chat'><body>  </body></message>",
        ));
        assert_eq!(blank.text, None);
        let bounced = parse(&incoming(
            "<message xmlns='NS' type='error' id='rb1.9'><body>x</body>\
               <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        ));
        assert_eq!(bounced.id.as_deref(), Some("rb1.9"));
        assert_eq!(bounced.text, None);
        assert!(
            matches!(bounced.bounced, Some(Some(ref e)) if e.defined_condition == xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable)
        );
    }

    #[test]
    fn stamps_out_of_range_are_left_out() {
        let message = with_delay(Message::chat(None), jid("icq.example.org"), u64::MAX, None);
        assert!(message.payloads.is_empty());
    }
}
