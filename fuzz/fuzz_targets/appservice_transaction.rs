//! What the homeserver PUTs to the appservice endpoint: arbitrary bytes as a transaction
//! body, read as `bridge/src/fronts/matrix/endpoint.rs` reads it (the events and the
//! ephemeral events, each with its header, or the refusal), then each event as the inbox
//! reads it back once recorded, and a message's content as the text a legacy contact gets.
#![no_main]
use libfuzzer_sys::fuzz_target;
use retrobridge::fronts::matrix::endpoint::parse_transaction;
use retrobridge::fronts::matrix::legacy_text;
use retrobridge::fronts::matrix::MatrixEvent;

#[path = "media_links.rs"]
mod media_links;
use media_links::LINKS;

fuzz_target!(|data: &[u8]| {
    let events = match parse_transaction(data) {
        Ok(events) => events,
        Err(refused) => {
            assert!(matches!(refused.errcode, "M_NOT_JSON" | "M_BAD_JSON"));
            return;
        }
    };
    let links = &*LINKS;
    for event in events {
        let Ok(read) = serde_json::from_str::<MatrixEvent>(event.json) else {
            continue;
        };
        // What the inbox can read back was kept by the endpoint.
        let header = event.header.expect("an event the inbox reads has a header");
        assert_eq!(header.kind, read.kind);
        assert_eq!(header.room_id, read.room_id);
        if read.kind == "m.room.message" {
            let _ = legacy_text(Some(links), &read.content);
            let _ = legacy_text(None, &read.content);
        }
    }
});
