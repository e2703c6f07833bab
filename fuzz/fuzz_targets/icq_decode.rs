//! Feeds arbitrary bytes to every ICQ decoder, and to both session machines.
#![no_main]
use icq_proto::{
    packet::server::system_message_text, ClientPacket, ClientSession, LoginOptions, PeerPacket,
    ServerPacket, ServerSession,
};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = ClientPacket::decode(data) {
        // Whatever decodes must re-encode to the same value.
        assert_eq!(ClientPacket::decode(&frame.encode()).as_ref(), Ok(&frame));
    }
    if let Ok(frame) = ServerPacket::decode(data) {
        assert_eq!(ServerPacket::decode(&frame.encode()).as_ref(), Ok(&frame));
    }
    let _ = PeerPacket::decode(data);
    let _ = PeerPacket::decode_stream(data);
    let _ = system_message_text(data);

    let now = Instant::now();
    let mut client = ClientSession::new();
    if client.login(1, "pw", LoginOptions::default(), now).is_ok() {
        let _ = client.handle_datagram(data, now);
        while client.poll_event().is_some() {}
    }
    let mut server = ServerSession::new(now);
    let _ = server.handle_datagram(data, now);
});
