//! A Matrix user's message content (arbitrary bytes as JSON): the text a legacy contact
//! gets for it (`legacy_text`: text, HTML, emotes, edits, files with their links,
//! locations), and, for a text in the management room or a chat with an XMPP gateway,
//! what the management commands read from it before running it (whether it holds a
//! password, the command's name and help).
#![no_main]
use libfuzzer_sys::fuzz_target;
use retrobridge::core::{accounts, commands, NetworkId};
use retrobridge::fronts::matrix::legacy_text;
use serde_json::Value;

#[path = "media_links.rs"]
mod media_links;
use media_links::LINKS;

fuzz_target!(|data: &[u8]| {
    let Ok(content) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let links = &*LINKS;
    let text = legacy_text(Some(links), &content);
    let unlinked = legacy_text(None, &content);
    assert_eq!(text.is_some(), unlinked.is_some());

    let Some(body) = content.get("body").and_then(Value::as_str) else {
        return;
    };
    let holds_password = commands::holds_password(body);
    let words: Vec<&str> = body.split_whitespace().collect();
    let Some(first) = words.first() else {
        assert!(!holds_password);
        return;
    };
    let args = &words[1..];
    if holds_password {
        assert!(args.len() >= 3);
    }
    let _ = commands::help(args.first().copied(), false);
    let _ = commands::help(Some(first), true);
    let _ = commands::admin_only(first);
    if let Ok(network) = accounts::parse_network(args.first().copied()) {
        for arg in args {
            let _ = network.canonical_id(arg);
        }
    }
    let _ = accounts::parse_presence(first);
    let _ = NetworkId::parse(first);
});
