//! MSNC P2P transport: binary header, packets, acks, chunks, reassembly.
//!
//! Reference bytes are laid out by hand from public sources, never produced
//! by the encoder under test:
//! * Kopete 0.8 `msnp2p.cpp` (`MSNP2P::requestDisplayPicture`) builds its
//!   INVITE packet byte by byte: the three MIME headers, a zeroed 48-byte
//!   header with identifier bytes `58 A9 18 01` at [4..8], ack id bytes
//!   `AB 38 1E 00` at [32..36], the size (text + NUL) at [16..18] and
//!   [24..26], then the text, its NUL and a zero footer.
//! * libpurple `slplink.c` (`msn_slplink_send_ack`) says which fields an ack
//!   copies: session id, total size -> total and ack size, id -> ack id,
//!   ack id -> ack unique id; flags 0x02, no body.

use msn_proto::p2p::{self, app_id, flags, parse_binary, HEADER_LEN, MAX_CHUNK};
use msn_proto::*;
use proptest::prelude::*;

/// The SLP text Kopete puts in its display picture INVITE (Context
/// shortened; its exact value does not matter to the transport).
const KOPETE_TEXT: &str = "INVITE MSNMSGR:bob@hotmail.com  MSNSLP/1.0\r\n\
To: <msnmsgr:bob@hotmail.com>\r\n\
From: <msnmsgr:alice@hotmail.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={33517CE4-02FC-4428-B6F4-39927229B722}\r\n\
CSeq: 0\r\n\
Call-ID: {9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 102\r\n\
\r\n\
EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\n\
SessionID: 1980589\r\n\
AppID: 1\r\n\
Context: PG1zbm9i\r\n\r\n";

/// Kopete's packet, assembled the way its C++ does it.
fn kopete_invite() -> Vec<u8> {
    let size = KOPETE_TEXT.len() + 1; // QCString::size() counts the NUL
    let mut bin = [0u8; 48];
    bin[4..8].copy_from_slice(&[0x58, 0xA9, 0x18, 0x01]);
    bin[32..36].copy_from_slice(&[0xAB, 0x38, 0x1E, 0x00]);
    bin[16] = (size % 256) as u8;
    bin[24] = (size % 256) as u8;
    bin[17] = (size / 256) as u8;
    bin[25] = (size / 256) as u8;
    let mut out = b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@hotmail.com\r\n\r\n".to_vec();
    out.extend_from_slice(&bin);
    out.extend_from_slice(KOPETE_TEXT.as_bytes());
    out.extend_from_slice(&[0; 5]); // the NUL, then the footer 0
    out
}

#[test]
fn parses_kopete_invite_packet() {
    let wire = kopete_invite();
    let m = P2pMessageRef::parse(&wire).unwrap();
    let size = (KOPETE_TEXT.len() + 1) as u64;
    assert_eq!(m.destination, "bob@hotmail.com");
    assert_eq!(
        m.header,
        P2pHeader {
            session_id: 0,
            id: 0x0118_A958,
            offset: 0,
            total_size: size,
            length: size as u32,
            flags: 0,
            ack_id: 0x001E_38AB,
            ack_unique_id: 0,
            ack_size: 0,
        }
    );
    assert_eq!(m.app_id, app_id::NEGOTIATION);
    assert_eq!(&m.body[..m.body.len() - 1], KOPETE_TEXT.as_bytes());
    assert_eq!(m.body.last(), Some(&0));
    assert!(m.header.requires_ack());
    // The encoder gives back Kopete's bytes exactly.
    assert_eq!(m.to_owned().to_payload(), wire);
}

#[test]
fn ack_copies_the_fields_libpurple_copies() {
    let wire = kopete_invite();
    let invite = P2pMessageRef::parse(&wire).unwrap().header;
    let size = KOPETE_TEXT.len() + 1;
    let (lo, hi) = ((size % 256) as u8, (size / 256) as u8);
    let ack = invite.ack(0x0000_1234);
    // Laid out from msn_slplink_send_ack's assignments.
    let expected: [u8; HEADER_LEN] = [
        0, 0, 0, 0, // session id (copied: 0)
        0x34, 0x12, 0, 0, // acker's own identifier
        0, 0, 0, 0, 0, 0, 0, 0, // offset
        lo, hi, 0, 0, 0, 0, 0, 0, // total size = acked total
        0, 0, 0, 0, // length: no body
        2, 0, 0, 0, // flags: ack
        0x58, 0xA9, 0x18, 0x01, // ack id = acked identifier
        0xAB, 0x38, 0x1E, 0x00, // ack unique id = acked ack id
        lo, hi, 0, 0, 0, 0, 0, 0, // ack size = acked total
    ];
    assert_eq!(ack.to_bytes(), expected);
    assert!(ack.acknowledges(&invite));
    assert!(!ack.requires_ack());
    assert!(!ack.acknowledges(&ack));
}

#[test]
fn header_field_offsets() {
    // Distinct bytes per field, offsets from the MSNPiki P2Pv1 table.
    let mut raw = [0u8; HEADER_LEN];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = i as u8;
    }
    let h = P2pHeader::parse(&raw).unwrap();
    assert_eq!(h.session_id, 0x0302_0100);
    assert_eq!(h.id, 0x0706_0504);
    assert_eq!(h.offset, 0x0F0E_0D0C_0B0A_0908);
    assert_eq!(h.total_size, 0x1716_1514_1312_1110);
    assert_eq!(h.length, 0x1B1A_1918);
    assert_eq!(h.flags, 0x1F1E_1D1C);
    assert_eq!(h.ack_id, 0x2322_2120);
    assert_eq!(h.ack_unique_id, 0x2726_2524);
    assert_eq!(h.ack_size, 0x2F2E_2D2C_2B2A_2928);
    assert_eq!(h.to_bytes(), raw);
}

#[test]
fn footer_is_big_endian() {
    let h = P2pHeader {
        session_id: 7,
        length: 4,
        total_size: 4,
        ..Default::default()
    };
    let mut bin = h.to_bytes().to_vec();
    bin.extend_from_slice(&[0, 0, 0, 0]); // data preparation body
    bin.extend_from_slice(&[0, 0, 0, 1]); // AppID 1, big-endian
    let (hh, body, app) = parse_binary(&bin).unwrap();
    assert_eq!((hh, body, app), (h, &[0u8; 4][..], app_id::MSNOBJ));
}

#[test]
fn flag_values() {
    // imfreedom "P2Pv1 Headers" and libpurple p2p.h.
    assert_eq!(flags::ACK, 0x2);
    assert_eq!(flags::MSNOBJ_DATA, 0x20);
    assert_eq!(flags::CLOSE, 0x40);
    assert_eq!(flags::FILE_DATA, 0x0100_0030);
    let err = P2pHeader {
        flags: flags::BINARY_ERROR,
        ..Default::default()
    };
    assert!(err.is_error() && !err.requires_ack());
}

#[test]
fn rejects_bad_packets() {
    let wire = kopete_invite();
    let head_len = wire.len() - (HEADER_LEN + KOPETE_TEXT.len() + 5);
    // Body one byte short of the announced length.
    let mut short = wire.clone();
    short.remove(head_len + HEADER_LEN);
    assert!(matches!(
        P2pMessageRef::parse(&short),
        Err(P2pError::LengthMismatch { .. })
    ));
    // Offset pushing the chunk past the total size.
    let mut far = wire.clone();
    far[head_len + 8] = 1;
    assert!(matches!(
        P2pMessageRef::parse(&far),
        Err(P2pError::OutOfRange { .. })
    ));
    // Too short for header + footer.
    assert_eq!(
        P2pMessageRef::parse(&wire[..head_len + 51]),
        Err(P2pError::TooShort(51))
    );
    let text = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi";
    assert_eq!(P2pMessageRef::parse(text), Err(P2pError::NotP2p));
    let no_dest = b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\n\r\n";
    assert_eq!(P2pMessageRef::parse(no_dest), Err(P2pError::NoDestination));
}

#[test]
fn chunks_of_1202_bytes() {
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let base = P2pHeader {
        session_id: 9,
        id: 100,
        flags: flags::MSNOBJ_DATA,
        ack_id: 55,
        ..Default::default()
    };
    let parts: Vec<_> = p2p::chunks(base, &data, MAX_CHUNK).collect();
    let lens: Vec<_> = parts
        .iter()
        .map(|(h, b)| (h.offset, h.length, b.len()))
        .collect();
    assert_eq!(
        lens,
        [(0, 1202, 1202), (1202, 1202, 1202), (2404, 596, 596)]
    );
    for (h, _) in &parts {
        assert_eq!(
            (h.session_id, h.id, h.total_size, h.flags),
            (9, 100, 3000, 0x20)
        );
    }
    assert!(parts[2].0.is_last_chunk() && !parts[1].0.is_last_chunk());
    // Out of order still reassembles.
    let mut r = Reassembler::new(10_000);
    assert_eq!(r.push(&parts[2].0, parts[2].1), Ok(None));
    assert_eq!(r.push(&parts[0].0, parts[0].1), Ok(None));
    assert_eq!(r.pending(), Some((9, 100)));
    assert_eq!(r.push(&parts[1].0, parts[1].1), Ok(Some(data)));
    assert_eq!(r.pending(), None);
    // Empty data: one empty message.
    let empty: Vec<_> = p2p::chunks(base, &[], MAX_CHUNK).collect();
    assert_eq!(empty.len(), 1);
    assert_eq!((empty[0].0.length, empty[0].0.total_size), (0, 0));
    assert_eq!(r.push(&empty[0].0, empty[0].1), Ok(Some(Vec::new())));
}

#[test]
fn reassembler_rejects_overlaps_strangers_and_oversize() {
    let base = P2pHeader {
        id: 1,
        ..Default::default()
    };
    let data = [7u8; 100];
    let parts: Vec<_> = p2p::chunks(base, &data, 40).collect();
    let mut r = Reassembler::new(100);
    r.push(&parts[0].0, parts[0].1).unwrap();
    assert_eq!(r.push(&parts[0].0, parts[0].1), Err(P2pError::Overlap(0)));
    let mut half = parts[0].0;
    half.offset = 20;
    assert_eq!(r.push(&half, parts[0].1), Err(P2pError::Overlap(20)));
    let mut other = parts[1].0;
    other.id = 2;
    assert!(matches!(
        r.push(&other, parts[1].1),
        Err(P2pError::OtherMessage { id: 2, .. })
    ));
    let mut big = parts[1].0;
    big.total_size = 101;
    assert!(matches!(
        r.push(&big, parts[1].1),
        Err(P2pError::TooLarge { .. })
    ));
    let mut past = parts[1].0;
    past.offset = 90;
    assert!(matches!(
        r.push(&past, parts[1].1),
        Err(P2pError::OutOfRange { .. })
    ));
    // Errors left the message intact.
    r.push(&parts[1].0, parts[1].1).unwrap();
    assert_eq!(r.push(&parts[2].0, parts[2].1), Ok(Some(data.to_vec())));
}

#[test]
fn reassembler_bounds_fragmentation() {
    let mut r = Reassembler::new(1 << 20);
    let mut h = P2pHeader {
        total_size: 1 << 20,
        length: 1,
        ..Default::default()
    };
    let mut result = Ok(None);
    for i in 0..1000u64 {
        h.offset = i * 2;
        result = r.push(&h, &[1]);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(P2pError::TooFragmented));
}

proptest! {
    #[test]
    fn arbitrary_packets_never_panic(bin in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut wire = b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: a@b.c\r\n\r\n".to_vec();
        wire.extend_from_slice(&bin);
        if let Ok(m) = P2pMessageRef::parse(&wire) {
            prop_assert_eq!(m.to_owned().to_payload(), wire);
        }
        let _ = P2pMessageRef::parse(&bin);
    }

    #[test]
    fn header_round_trip(raw in proptest::array::uniform32(any::<u8>()), tail in proptest::array::uniform16(any::<u8>())) {
        let mut b = raw.to_vec();
        b.extend_from_slice(&tail);
        let h = P2pHeader::parse(&b).unwrap();
        prop_assert_eq!(&h.to_bytes()[..], &b[..]);
    }

    #[test]
    fn reassembler_stays_within_limit(
        chunks in proptest::collection::vec((any::<u32>(), 0u64..5000, 0u64..5000, 0usize..300), 0..40)
    ) {
        let limit = 4096u64;
        let mut r = Reassembler::new(limit);
        for (id, offset, total, len) in chunks {
            let h = P2pHeader { id: id % 2, offset, total_size: total, length: len as u32, ..Default::default() };
            let body = vec![0u8; len];
            if let Ok(Some(done)) = r.push(&h, &body) {
                prop_assert!(done.len() as u64 <= limit);
                prop_assert_eq!(done.len() as u64, total);
            }
        }
    }

    #[test]
    fn chunks_cover_data(len in 0usize..5000, max in 1usize..2000) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut r = Reassembler::new(5000);
        let mut out = None;
        for (h, b) in p2p::chunks(P2pHeader::default(), &data, max) {
            prop_assert!(b.len() <= max);
            out = r.push(&h, b).unwrap();
        }
        prop_assert_eq!(out, Some(data));
    }
}

/// The display picture exchange of PROTOCOL-NOTES / MSNPiki "Display
/// Pictures", built from the codec pieces (no state machine yet): every
/// step crosses the wire as a full MSG payload and is acked as libpurple
/// acks. Data preparation is libpurple's: 4 zero bytes, flags 0, the
/// session id, footer = AppID 1.
#[test]
fn display_picture_flow_with_the_codec() {
    use msn_proto::slp::SlpMessage;
    let (rc, sc) = ("rc@hotmail.com", "sc@hotmail.com");
    let picture: Vec<u8> = (0..3000u32).map(|i| (i * 31) as u8).collect();
    let obj = MsnObject::for_data(sc, 3, "TFR2C.tmp", "", &picture);
    let (mut rc_id, mut sc_id) = (1000u32, 5000u32);
    let next = |id: &mut u32| {
        *id += 1;
        *id
    };
    // Sends `body` in chunks from one side and returns what the other side
    // reassembled, plus the last header (the one to ack).
    let send = |dest: &str, base: P2pHeader, body: &[u8], app: u32| {
        let mut r = Reassembler::new(1 << 20);
        let mut out = None;
        let mut last = base;
        for (h, piece) in p2p::chunks(base, body, MAX_CHUNK) {
            let wire = P2pMessage::new(dest, h, piece, app).to_payload();
            let got = P2pMessageRef::parse(&wire).unwrap();
            assert_eq!((got.destination, got.app_id), (dest, app));
            last = got.header;
            out = r.push(&got.header, got.body).unwrap();
        }
        (out.unwrap(), last)
    };
    let ack = |dest: &str, acked: &P2pHeader, id: u32| {
        let wire = P2pMessage::new(dest, acked.ack(id), &[], 0).to_payload();
        let got = P2pMessageRef::parse(&wire).unwrap();
        assert!(got.header.acknowledges(acked));
        assert!(!got.header.requires_ack());
    };

    // RC INVITE -> SC ack.
    let invite = SlpMessage::picture_invite(sc, rc, "{B1}", "{C1}", 77, &obj.to_xml());
    let base = P2pHeader {
        id: next(&mut rc_id),
        ack_id: 1,
        ..Default::default()
    };
    let (text, h) = send(sc, base, &invite.to_bytes(), 0);
    assert!(h.requires_ack());
    ack(rc, &h, next(&mut sc_id));
    let got = SlpMessage::parse(&text).unwrap();
    let ctx = got.context().unwrap().unwrap();
    let asked = MsnObject::parse(std::str::from_utf8(&ctx).unwrap()).unwrap();
    assert_eq!(asked, obj);
    // SC 200 OK -> RC ack.
    let base = P2pHeader {
        id: next(&mut sc_id),
        ack_id: 2,
        ..Default::default()
    };
    let (text, h) = send(rc, base, &got.ok().to_bytes(), 0);
    assert_eq!(SlpMessage::parse(&text).unwrap().status(), Some(200));
    ack(sc, &h, next(&mut rc_id));
    // SC data preparation -> RC ack.
    let base = P2pHeader {
        session_id: 77,
        id: next(&mut sc_id),
        ack_id: 3,
        ..Default::default()
    };
    let (prep, h) = send(rc, base, &[0; 4], app_id::MSNOBJ);
    assert_eq!(prep, [0; 4]);
    ack(sc, &h, next(&mut rc_id));
    // SC data in 1202-byte chunks -> one RC ack after the last.
    let base = P2pHeader {
        session_id: 77,
        id: next(&mut sc_id),
        flags: flags::MSNOBJ_DATA,
        ack_id: 4,
        ..Default::default()
    };
    let (data, h) = send(rc, base, &picture, app_id::MSNOBJ);
    assert!(obj.matches_data(&data));
    ack(sc, &h, next(&mut rc_id));
    // RC BYE -> SC ack.
    let bye = SlpMessage::bye(sc, rc, "{B2}", "{C1}");
    let base = P2pHeader {
        id: next(&mut rc_id),
        ack_id: 5,
        ..Default::default()
    };
    let (text, h) = send(sc, base, &bye.to_bytes(), 0);
    assert_eq!(SlpMessage::parse(&text).unwrap().method(), Some("BYE"));
    ack(rc, &h, next(&mut sc_id));
}
