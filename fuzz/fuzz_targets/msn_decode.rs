#![no_main]
//! Feeds arbitrary bytes to every MSN decoder: command framing (one shot and
//! split), MIME messages, X-MMS-IM-Format, Passport headers and both client
//! session machines.
use libfuzzer_sys::fuzz_target;
use msn_proto::*;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len());
    let mut d = Decoder::new();
    d.feed(&data[..cut]);
    while let Some(c) = d.next() {
        if let Ok(c) = c {
            let _ = c.server_error();
            let _ = c.to_bytes();
        }
    }
    d.feed(&data[cut..]);
    while let Some(c) = d.next_ref() {
        if let Ok(c) = c {
            if let Some(p) = c.payload {
                let _ = MessageRef::parse(p)
                    .map(|m| (m.format(), m.typing_user(), m.to_owned().kind()));
            }
        }
    }
    let _ = parse_command(data);
    if let Ok(m) = MessageRef::parse(data) {
        let _ = m.format();
        let _ = m.to_owned().kind();
    }
    let text = String::from_utf8_lossy(data);
    let _ = TextFormat::parse(&text).to_header_value();
    let _ = url_decode(&text);
    let _ = passport::parse_authorization(&text);
    let _ = passport::parse_passport_urls(&text, "https");
    let _ = passport::parse_authentication_info(&text);
    let _ = passport::da_status(&text);
    let mut ns = NsSession::new(NsConfig::new("a@b.com"), std::time::Instant::now());
    ns.handle_input(data);
    while ns.poll_event().is_some() {}
    let mut sb = SbSession::outgoing("a@b.com", "cookie");
    sb.handle_input(data);
    while sb.poll_event().is_some() {}
});
