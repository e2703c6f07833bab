//! Feeds arbitrary bytes to every mig33 decoder: the header parser, the generic and
//! typed frame decoders (for the bytes as given and under every packet type code),
//! the streaming decoder (whole and split), and both session machines.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mig33_proto::packet::code;
use mig33_proto::*;

const TYPES: [u16; 27] = [
    code::ERROR,
    code::OK,
    code::PING,
    code::PING_REPLY,
    code::ALERT,
    code::REGISTRATION,
    code::LOGIN,
    code::LOGIN_CHALLENGE,
    code::LOGIN_RESPONSE,
    code::LOGIN_OK,
    code::LOGOUT,
    code::GET_CONTACTS,
    code::GROUP,
    code::CONTACT,
    code::GET_CONTACTS_COMPLETE,
    code::PRESENCE,
    code::ADD_CONTACT,
    code::REMOVE_CONTACT,
    code::MESSAGE,
    code::SET_PRESENCE,
    code::GET_CHATROOMS,
    code::CHATROOM,
    code::GET_CHATROOMS_COMPLETE,
    code::JOIN_CHATROOM,
    code::LEAVE_CHATROOM,
    code::GET_CHATROOM_PARTICIPANTS,
    code::CHATROOM_PARTICIPANTS,
];

fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(data);

    // Generic frames re-encode byte-exact; typed packets round-trip.
    if let Ok(raw) = RawFrame::parse(data) {
        let used = HEADER_LEN + raw.content.len();
        if let Ok(frame) = raw.to_frame() {
            assert_eq!(frame.encode(), &data[..used]);
        }
        if let Ok(env) = Envelope::decode(&raw) {
            let again = Envelope::decode_bytes(&env.encode()).expect("re-encoded packet decodes");
            assert_eq!(again.packet, env.packet);
        }
    }

    // The same content under every known type code.
    if data.len() <= MAX_CONTENT_LEN as usize {
        for packet_type in TYPES {
            let raw = RawFrame {
                packet_type,
                transaction_id: 1,
                content: data,
            };
            if let Ok(packet) = Packet::decode(&raw) {
                let bytes = packet.encode(1);
                assert_eq!(
                    Packet::decode(&RawFrame::parse(&bytes).unwrap()).unwrap(),
                    packet
                );
            }
        }
    }

    // Streaming, whole and split in two.
    let split = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut decoder = FrameDecoder::new();
    for part in [&data[..split], &data[split..]] {
        decoder.feed(part);
        while let Ok(Some(raw)) = decoder.next_raw() {
            let _ = Envelope::decode(&raw);
        }
    }

    // Both session machines, in every state reachable from the bytes alone.
    let mut client = ClientSession::new(ClientConfig::new("alice", "secret"));
    client.handle_input(data);
    while client.poll_event().is_some() {}
    let _ = client.poll_transmit();
    let mut server = ServerSession::new("challenge", "session");
    server.handle_input(data);
    while server.poll_event().is_some() {}
    let _ = server.poll_transmit();
});
