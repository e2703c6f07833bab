//! MSN text both ways through the bridge (`bridge/src/networks/msn/format.rs` and the
//! MIME payloads of `MSG`). MSN -> Matrix: arbitrary bytes as a switchboard message
//! (headers, `X-MMS-IM-Format`, body), which re-encodes to itself; a text message's
//! format as Matrix HTML, whose style reads back as the same MSN style. Matrix -> MSN:
//! arbitrary text as a message's plain body and HTML (before and after the first NUL;
//! the whole text as both without one): the style found in the HTML as a header value
//! that reads back as itself, and the text split into `MSG` payloads that fit the
//! switchboard's limit and read back as the same text and style.
#![no_main]
use libfuzzer_sys::fuzz_target;
use msn_proto::{split_text, Message, MessageKind, TextFormat, MAX_MSG_PAYLOAD};
use retrobridge::networks::msn::format;

fn style(f: &TextFormat) -> (bool, bool, bool, bool, u32) {
    (f.bold, f.italic, f.underline, f.strikethrough, f.color)
}

fuzz_target!(|data: &[u8]| {
    // MSN -> Matrix.
    if let Ok(message) = Message::parse(data) {
        let again = Message::parse(&message.to_bytes()).expect("an encoded message parses");
        assert_eq!(again, message);
        if let MessageKind::Text {
            text,
            format: Some(f),
        } = message.kind()
        {
            if let Some(html) = format::to_html(&text, &f) {
                let back = format::from_html(Some(&html));
                assert_eq!(style(&back), style(&f), "html: {html:?}");
            }
        }
    }

    // Matrix -> MSN.
    let text = String::from_utf8_lossy(data);
    let (plain, html) = text.split_once('\0').unwrap_or((&text, &text));
    let f = format::from_html(Some(html));
    assert_eq!(TextFormat::parse(&f.to_header_value()), f);
    for chunk in split_text(plain, Some(&f)) {
        let bytes = Message::text(chunk, Some(&f)).to_bytes();
        assert!(bytes.len() <= MAX_MSG_PAYLOAD, "{} bytes", bytes.len());
        match Message::parse(&bytes)
            .expect("a text message parses")
            .kind()
        {
            MessageKind::Text {
                text,
                format: Some(back),
            } => {
                assert_eq!(text, chunk);
                assert_eq!(back, f);
            }
            other => panic!("a text message reads as {other:?}"),
        }
    }
});
