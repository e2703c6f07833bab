//! XEP-0077 in-band registration with a gateway (the XEP-0100 "Register" use case): the
//! form a `get` receives, and what a `set` asks.
//!
//! The form carries both the legacy fields (`<username/>`, `<password/>`) and the same
//! fields as a XEP-0004 data form, so old and new clients can fill it in. An existing
//! registration is shown with `<registered/>` and the legacy id, never the password.
//! A `set` is a registration (legacy fields or a submitted data form) or `<remove/>`;
//! missing or malformed values are refused with `not-acceptable` (XEP-0077 §3.1, and
//! XEP-0100's "user information not verified"), a `<remove/>` beside other fields with
//! `bad-request`.

use std::fmt;

use xmpp_parsers::data_forms::FieldType;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::errors::stanza_error;
use super::forms;
use super::jid::check_legacy_id;
use super::xml_text;
use crate::model::{LegacyId, NetworkId};

/// What a registration `set` asks. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub enum Registration {
    /// Register (or change the registration): the canonical legacy id and its password.
    Register {
        username: LegacyId,
        password: String,
    },
    /// `<remove/>`: unregister.
    Unregister,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Registration::Register { username, .. } => f
                .debug_struct("Register")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Registration::Unregister => f.write_str("Unregister"),
        }
    }
}

/// What the username is on each network, as a field label.
pub fn id_label(network: NetworkId) -> &'static str {
    network.capabilities().id_label
}

fn instructions(network: NetworkId, registered: Option<&str>) -> String {
    let mut text = match registered {
        Some(id) => format!(
            "You are registered as {id}. Send the form again to change the password, \
             or remove your registration to stop bridging this account."
        ),
        None => format!(
            "Enter your {} and password: the bridge logs in to {} for you and keeps the \
             password to log in again after a restart.",
            id_label(network),
            network.display_name()
        ),
    };
    if let Some(note) = network.capabilities().password_note {
        text.push(' ');
        text.push_str(note);
    }
    text
}

/// The `<query xmlns='jabber:iq:register'/>` answering a `get`; `registered` is the legacy
/// id the user is registered with, if any.
pub fn form(network: NetworkId, registered: Option<&str>) -> Element {
    let instructions = instructions(network, registered);
    let mut username = forms::field("username", FieldType::TextSingle, id_label(network), true);
    if let Some(id) = registered {
        username = forms::with_value(username, id);
    }
    let password = forms::field("password", FieldType::TextPrivate, "Password", true);
    let data_form = forms::form(
        Some(ns::REGISTER),
        &format!("{} registration", network.display_name()),
        &instructions,
        vec![username, password],
    );
    let mut query = Element::builder("query", ns::REGISTER);
    if registered.is_some() {
        query = query.append(Element::bare("registered", ns::REGISTER));
    }
    query
        .append(
            Element::builder("instructions", ns::REGISTER)
                .append(xml_text(&instructions).into_owned())
                .build(),
        )
        .append(
            Element::builder("username", ns::REGISTER)
                .append_all(registered.map(|id| xml_text(id).into_owned()))
                .build(),
        )
        .append(Element::bare("password", ns::REGISTER))
        .append(Element::from(data_form))
        .build()
}

/// Reads a registration `set`'s `<query/>`.
pub fn parse(network: NetworkId, query: &Element) -> Result<Registration, StanzaError> {
    if !query.is("query", ns::REGISTER) {
        return Err(stanza_error(DefinedCondition::BadRequest, None));
    }
    if query.has_child("remove", ns::REGISTER) {
        if query.children().count() > 1 {
            return Err(stanza_error(
                DefinedCondition::BadRequest,
                Some("<remove/> must be alone in the query."),
            ));
        }
        return Ok(Registration::Unregister);
    }
    let (username, password) = match forms::submitted(query) {
        Some(form) => (
            forms::value(&form, "username").map(str::to_owned),
            forms::raw_value(&form, "password").map(str::to_owned),
        ),
        None => {
            let child = |name| {
                query
                    .get_child(name, ns::REGISTER)
                    .map(|c| c.text())
                    .filter(|t| !t.is_empty())
            };
            (child("username"), child("password"))
        }
    };
    let (Some(username), Some(password)) = (username, password) else {
        return Err(stanza_error(
            DefinedCondition::NotAcceptable,
            Some(&format!(
                "Both your {} and your password are needed.",
                id_label(network)
            )),
        ));
    };
    let username = network.canonical_id(&username);
    check_legacy_id(network, &username)
        .map_err(|e| stanza_error(DefinedCondition::NotAcceptable, Some(&e.to_string())))?;
    Ok(Registration::Register { username, password })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};

    #[test]
    fn the_form_for_a_new_user() {
        assert_xml(
            form(NetworkId::Msn, None),
            "<query xmlns='jabber:iq:register'>\
               <instructions>Enter your MSN e-mail address and password: the bridge logs in to MSN Messenger for you and keeps the password to log in again after a restart.</instructions>\
               <username/>\
               <password/>\
               <x xmlns='jabber:x:data' type='form'>\
                 <title>MSN Messenger registration</title>\
                 <instructions>Enter your MSN e-mail address and password: the bridge logs in to MSN Messenger for you and keeps the password to log in again after a restart.</instructions>\
                 <field type='hidden' var='FORM_TYPE'><value>jabber:iq:register</value></field>\
                 <field var='username' label='MSN e-mail address'><required/></field>\
                 <field type='text-private' var='password' label='Password'><required/></field>\
               </x>\
             </query>",
        );
    }

    #[test]
    fn the_form_for_a_registered_user_shows_the_id_not_the_password() {
        let query = form(NetworkId::Icq, Some("123456"));
        let text = String::from(&query);
        assert!(text.contains("<registered/>"), "{text}");
        assert!(
            text.contains("<username>123456</username><password/>"),
            "{text}"
        );
        assert!(text.contains("<value>123456</value>"), "{text}");
        assert!(text.contains("You are registered as 123456."), "{text}");
        assert!(text.contains("at most 8 characters"), "{text}");
        // It parses as XEP-0077's form query.
        let parsed = xmpp_parsers::ibr::LegacyQuery::try_from(query).unwrap();
        assert!(parsed.registered);
        assert_eq!(parsed.username.as_deref(), Some("123456"));
    }

    #[test]
    fn registrations_both_ways_of_filling_in() {
        // XEP-0100's example: legacy fields.
        let legacy = element(
            "<query xmlns='jabber:iq:register'><username>Alice@Hotmail.com</username><password>ILoveJuliet</password></query>",
        );
        assert_eq!(
            parse(NetworkId::Msn, &legacy).unwrap(),
            Registration::Register {
                username: "alice@hotmail.com".into(),
                password: "ILoveJuliet".into()
            }
        );
        // A submitted data form (XEP-0077 example 10's shape).
        let submitted = element(
            "<query xmlns='jabber:iq:register'>\
               <x xmlns='jabber:x:data' type='submit'>\
                 <field type='hidden' var='FORM_TYPE'><value>jabber:iq:register</value></field>\
                 <field var='username'><value> 123456 </value></field>\
                 <field var='password'><value>p w</value></field>\
               </x>\
             </query>",
        );
        let registration = parse(NetworkId::Icq, &submitted).unwrap();
        assert_eq!(
            registration,
            Registration::Register {
                username: "123456".into(),
                password: "p w".into()
            }
        );
        assert!(!format!("{registration:?}").contains("p w"));
        let remove = element("<query xmlns='jabber:iq:register'><remove/></query>");
        assert_eq!(
            parse(NetworkId::Icq, &remove).unwrap(),
            Registration::Unregister
        );
    }

    #[test]
    fn refusals() {
        let condition =
            |network, xml: &str| parse(network, &element(xml)).unwrap_err().defined_condition;
        assert_eq!(
            condition(
                NetworkId::Icq,
                "<query xmlns='jabber:iq:register'><username>123</username><password/></query>"
            ),
            DefinedCondition::NotAcceptable
        );
        assert_eq!(
            condition(NetworkId::Icq, "<query xmlns='jabber:iq:register'><username>abc</username><password>x</password></query>"),
            DefinedCondition::NotAcceptable
        );
        assert_eq!(
            condition(NetworkId::Msn, "<query xmlns='jabber:iq:register'><username>alice</username><password>x</password></query>"),
            DefinedCondition::NotAcceptable
        );
        assert_eq!(
            condition(
                NetworkId::Icq,
                "<query xmlns='jabber:iq:register'><remove/><username>1</username></query>"
            ),
            DefinedCondition::BadRequest
        );
        assert_eq!(
            condition(NetworkId::Icq, "<query xmlns='jabber:iq:gateway'/>"),
            DefinedCondition::BadRequest
        );
        let error = parse(
            NetworkId::Mig33,
            &element("<query xmlns='jabber:iq:register'/>"),
        )
        .unwrap_err();
        assert_eq!(
            error.texts.get("en").map(String::as_str),
            Some("Both your mig33 username and your password are needed.")
        );
    }
}
