//! XEP-0004 data forms: the fields registration and ad-hoc commands ask for, and reading
//! what a client submitted.

use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ns;

use super::xml_text;

/// A field to fill in.
pub fn field(var: &str, type_: FieldType, label: &str, required: bool) -> Field {
    let mut field = Field::new(var, type_);
    field.label = Some(xml_text(label).into_owned());
    field.required = required;
    field
}

/// `field` with a value already in it.
pub fn with_value(mut field: Field, value: &str) -> Field {
    field.values.push(xml_text(value).into_owned());
    field
}

/// A `list-single` field offering `options` (value, label).
pub fn list(var: &str, label: &str, required: bool, options: &[(&str, &str)]) -> Field {
    let mut field = field(var, FieldType::ListSingle, label, required);
    field.options = options
        .iter()
        .map(|(value, label)| Option_ {
            label: Some(xml_text(label).into_owned()),
            value: xml_text(value).into_owned(),
        })
        .collect();
    field
}

/// A form to fill in, with its `FORM_TYPE` when it has one.
pub fn form(
    form_type: Option<&str>,
    title: &str,
    instructions: &str,
    fields: Vec<Field>,
) -> DataForm {
    let mut form = match form_type {
        Some(form_type) => DataForm::new(DataFormType::Form, form_type, fields),
        None => DataForm {
            type_: DataFormType::Form,
            title: None,
            instructions: None,
            fields,
        },
    };
    form.title = Some(xml_text(title).into_owned());
    form.instructions = Some(xml_text(instructions).into_owned());
    form
}

/// The submitted form among `parent`'s children (`<x xmlns='jabber:x:data' type='submit'>`),
/// if there is one that parses.
pub fn submitted(parent: &Element) -> Option<DataForm> {
    parent
        .children()
        .filter(|c| c.is("x", ns::DATA_FORMS))
        .filter_map(|c| DataForm::try_from(c.clone()).ok())
        .find(|form| form.type_ == DataFormType::Submit)
}

/// The trimmed first value of field `var`, `None` when absent or blank.
pub fn value<'a>(form: &'a DataForm, var: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .and_then(|f| f.values.first())
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The first value of field `var` as sent (passwords keep their spaces), `None` when
/// absent or empty.
pub fn raw_value<'a>(form: &'a DataForm, var: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .and_then(|f| f.values.first())
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};

    #[test]
    fn a_form_and_its_submission() {
        let f = form(
            Some("jabber:iq:register"),
            "Title",
            "Fill\u{7} in",
            vec![
                with_value(
                    field("username", FieldType::TextSingle, "Name", true),
                    "bob",
                ),
                list("state", "State", false, &[("away", "Away")]),
            ],
        );
        assert_xml(
            f,
            "<x xmlns='jabber:x:data' type='form'>\
               <title>Title</title><instructions>Fill\u{FFFD} in</instructions>\
               <field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>\
               <field var='username' label='Name'><required/><value>bob</value></field>\
               <field var='state' type='list-single' label='State'><option label='Away'><value>away</value></option></field>\
             </x>",
        );
        let parent = element(
            "<command xmlns='http://jabber.org/protocol/commands'>\
               <x xmlns='jabber:x:data' type='form'/>\
               <x xmlns='jabber:x:data' type='submit'>\
                 <field var='username'><value>  bob </value></field>\
                 <field var='password'><value> pw </value></field>\
                 <field var='blank'><value>  </value></field>\
               </x>\
             </command>",
        );
        let sent = submitted(&parent).unwrap();
        assert_eq!(value(&sent, "username"), Some("bob"));
        assert_eq!(raw_value(&sent, "password"), Some(" pw "));
        assert_eq!(value(&sent, "blank"), None);
        assert_eq!(value(&sent, "missing"), None);
        assert!(submitted(&element("<command xmlns='x'/>")).is_none());
    }
}
