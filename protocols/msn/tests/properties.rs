//! Property tests: decoders never panic; encoders and decoders agree.

use std::time::Instant;

use msn_proto::*;
use proptest::prelude::*;

const TRID_NAMES: &[&str] = &[
    "VER", "CVR", "USR", "XFR", "SYN", "CHG", "ILN", "ADD", "REM", "REA", "ADG", "CAL", "ANS",
    "IRO", "ACK", "MSG", "QRY", "XYZ",
];
const ASYNC_NAMES: &[&str] = &[
    "NLN", "FLN", "RNG", "JOI", "BYE", "LSG", "LST", "QNG", "OUT", "NOT", "MSG", "PNG",
];

fn param() -> impl Strategy<Value = String> {
    // Never purely numeric, so a TrID-less command stays TrID-less.
    "[a-zA-Z%@.][!-~]{0,12}"
}

fn command() -> impl Strategy<Value = Command> {
    let with_trid = (
        prop::sample::select(TRID_NAMES),
        any::<u32>(),
        prop::collection::vec("[!-~]{1,12}", 0..6),
    )
        .prop_map(|(n, t, p)| (n, Some(t), p));
    let without = (
        prop::sample::select(ASYNC_NAMES),
        Just(0u32),
        prop::collection::vec(param(), 0..6),
    )
        .prop_map(|(n, _, p)| (n, None, p));
    (
        prop_oneof![with_trid, without],
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|((name, trid, mut params), payload)| {
            // `MSG <len>` alone would read as a TrID; real MSG lines always have parameters.
            if name == "MSG" && trid.is_none() && params.is_empty() {
                params.push("x".into());
            }
            Command {
                name: name.to_string(),
                trid,
                params,
                payload: is_payload_command(name).then_some(payload),
            }
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), split in 0usize..2000) {
        let mut d = Decoder::new();
        let cut = split.min(bytes.len());
        d.feed(&bytes[..cut]);
        while d.next().is_some() {}
        d.feed(&bytes[cut..]);
        while d.next().is_some() {}
        if let Ok(m) = MessageRef::parse(&bytes) {
            let _ = m.format();
            let _ = m.to_owned().kind();
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = TextFormat::parse(&text);
        let _ = url_decode(&text);
        let _ = passport::parse_authorization(&text);
        let _ = passport::parse_passport_urls(&text, "https");
        let _ = passport::parse_authentication_info(&text);
        let _ = passport::da_status(&text);
        let mut ns = NsSession::new(NsConfig::new("a@b.com"), Instant::now());
        ns.handle_input(&bytes);
        while ns.poll_event().is_some() {}
        let mut sb = SbSession::invited("a@b.com", "c", "1");
        sb.handle_input(&bytes);
        while sb.poll_event().is_some() {}
    }

    #[test]
    fn commands_round_trip(cmds in prop::collection::vec(command(), 1..8), chunk in 1usize..64) {
        let mut wire = Vec::new();
        for c in &cmds {
            c.encode_into(&mut wire);
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            d.feed(piece);
            while let Some(c) = d.next() {
                got.push(c.unwrap());
            }
        }
        prop_assert_eq!(got, cmds);
    }

    #[test]
    fn messages_round_trip(
        headers in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[!-~]([ -~]{0,30}[!-~])?"), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let m = Message { headers, body };
        prop_assert_eq!(Message::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn formats_round_trip(font in ".{0,20}", b: bool, i: bool, u: bool, s: bool, color in 0u32..0x100_0000, charset: u8, pitch: u8, text in ".{0,50}") {
        let f = TextFormat { font, bold: b, italic: i, underline: u, strikethrough: s, color, charset, pitch_family: pitch };
        prop_assert_eq!(TextFormat::parse(&f.to_header_value()), f.clone());
        let m = Message::text(&text, Some(&f));
        prop_assert_eq!(m.kind(), MessageKind::Text { text, format: Some(f) });
    }

    #[test]
    fn url_round_trip(text in ".{0,40}") {
        let encoded = url_encode(&text);
        prop_assert_eq!(url_decode(&encoded).into_owned(), text);
    }

    #[test]
    fn split_fits_and_loses_nothing(text in ".{0,3000}") {
        let chunks = split_text(&text, Some(&TextFormat::default()));
        prop_assert_eq!(chunks.concat(), text.clone());
        for c in chunks {
            prop_assert!(Message::text(c, Some(&TextFormat::default())).to_bytes().len() <= MAX_MSG_PAYLOAD);
        }
    }
}
