//! The receiver's side of a display-picture transfer against a sender scripted here
//! step by step from the documented flow (PROTOCOL-NOTES "Display picture flow"; libpurple
//! `msn_slp_sip_recv`/`send_ok`/`msn_slpcall_session_init`), with the codec only: no
//! code is shared with [`PictureFetch`].

use msn_proto::p2p::{app_id, flags};
use msn_proto::*;

const ME: &str = "me@example.com";
const BOB: &str = "bob@example.com";

fn ids() -> FetchIds {
    FetchIds {
        session_id: 48_879,
        base_id: 1_000,
        branch: "{11111111-2222-3333-4444-555555555555}".into(),
        call_id: "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}".into(),
    }
}

fn picture(len: usize) -> (Vec<u8>, MsnObject) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let object = MsnObject::for_data(BOB, 3, "TFR2C.tmp", "bob", &data);
    (data, object)
}

/// Bytes as they go on the wire and come back, to exercise the full codec.
fn wire(m: &P2pMessage) -> Vec<u8> {
    m.to_payload()
}

fn feed(fetch: &mut PictureFetch, m: &P2pMessage) -> Vec<P2pMessage> {
    let bytes = wire(m);
    let packet = P2pMessageRef::parse(&bytes).expect("a P2P message");
    fetch.handle(&packet)
}

/// The scripted sender's message: our header fields, its body, its footer.
fn theirs(
    id: u32,
    session_id: u32,
    flags: u32,
    body: &[u8],
    total: u64,
    offset: u64,
    footer: u32,
) -> P2pMessage {
    P2pMessage::new(
        ME,
        P2pHeader {
            session_id,
            id,
            offset,
            total_size: total,
            flags,
            ack_id: id.wrapping_mul(0x0101_0101),
            ..P2pHeader::default()
        },
        body,
        footer,
    )
}

fn single_ack_of(out: &[P2pMessage], acked: &P2pMessage) {
    assert_eq!(out.len(), 1, "{out:?}");
    let ack = &out[0].header;
    assert!(
        ack.is_ack() && ack.acknowledges(&acked.header),
        "{ack:?} for {:?}",
        acked.header
    );
    assert_eq!(out[0].destination, BOB);
}

#[test]
fn a_picture_is_fetched_step_by_step() {
    let (data, object) = picture(20 * 1024);
    let (mut fetch, invite) = PictureFetch::start(ME, BOB, &object, ids(), 1 << 20);
    // The INVITE: session 0, footer 0, an MSNSLP request for our object.
    assert_eq!(invite.len(), 1);
    assert_eq!(
        (invite[0].header.session_id, invite[0].app_id),
        (0, app_id::NEGOTIATION)
    );
    let slp = SlpMessage::parse(&invite[0].body).expect("MSNSLP");
    assert_eq!(slp.method(), Some("INVITE"));
    assert_eq!(slp.euf_guid(), Some(slp::EUF_GUID_MSNOBJ));
    assert_eq!(slp.session_id(), Some(48_879));
    assert_eq!((slp.to.as_str(), slp.from.as_str()), (BOB, ME));
    let context = slp.context().unwrap().unwrap();
    let asked = MsnObject::parse(
        std::str::from_utf8(&context)
            .unwrap()
            .trim_end_matches('\0'),
    )
    .unwrap();
    assert_eq!(asked.sha1d, object.sha1d);

    // Sender: ack the INVITE (nothing comes back), then 200 OK.
    let ack = P2pMessage::new(ME, invite[0].header.ack(500), &[], 0);
    assert!(feed(&mut fetch, &ack).is_empty());
    let ok = slp.ok().to_bytes();
    let ok = theirs(501, 0, 0, &ok, ok.len() as u64, 0, app_id::NEGOTIATION);
    single_ack_of(&feed(&mut fetch, &ok), &ok);

    // Data preparation, acked.
    let prep = theirs(502, 48_879, 0, &[0; 4], 4, 0, app_id::MSNOBJ);
    single_ack_of(&feed(&mut fetch, &prep), &prep);
    assert_eq!(fetch.outcome(), None);

    // The data in 1202-byte chunks of one identifier: silence until the last, then
    // one ack of the whole and the BYE.
    let mut offset = 0;
    let mut out = Vec::new();
    for chunk in data.chunks(p2p::MAX_CHUNK) {
        let m = theirs(
            503,
            48_879,
            flags::MSNOBJ_DATA,
            chunk,
            data.len() as u64,
            offset,
            app_id::MSNOBJ,
        );
        offset += chunk.len() as u64;
        out = feed(&mut fetch, &m);
        if offset < data.len() as u64 {
            assert!(out.is_empty(), "no ack before the last chunk");
        }
    }
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].header.is_ack());
    assert_eq!(
        (out[0].header.ack_id, out[0].header.ack_size),
        (503, data.len() as u64)
    );
    let bye = SlpMessage::parse(&out[1].body).unwrap();
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.call_id, ids().call_id);
    assert_eq!(fetch.outcome(), Some(&FetchOutcome::Picture(data)));
    // Our identifiers count up from the base.
    assert_eq!(invite[0].header.id, 1_000);
}

#[test]
fn declined_wrong_or_oversized_pictures_fail() {
    let (_, object) = picture(3000);
    let (mut fetch, invite) = PictureFetch::start(ME, BOB, &object, ids(), 1 << 20);
    let slp = SlpMessage::parse(&invite[0].body).unwrap();
    let no = slp.decline().to_bytes();
    let no = theirs(7, 0, 0, &no, no.len() as u64, 0, 0);
    single_ack_of(&feed(&mut fetch, &no), &no);
    assert!(matches!(fetch.outcome(), Some(FetchOutcome::Failed(why)) if why.contains("declined")));

    // Data that does not match the SHA1D.
    let (mut fetch, invite) = PictureFetch::start(ME, BOB, &object, ids(), 1 << 20);
    let slp = SlpMessage::parse(&invite[0].body).unwrap();
    let ok = slp.ok().to_bytes();
    feed(&mut fetch, &theirs(7, 0, 0, &ok, ok.len() as u64, 0, 0));
    let wrong = vec![0u8; 3000];
    feed(
        &mut fetch,
        &theirs(8, 48_879, flags::MSNOBJ_DATA, &wrong, 3000, 0, 1),
    );
    assert!(matches!(fetch.outcome(), Some(FetchOutcome::Failed(why)) if why.contains("SHA1D")));

    // A total larger than the limit is refused before anything is stored.
    let (_, big) = picture(5000);
    let (fetch, invite) = PictureFetch::start(ME, BOB, &big, ids(), 4096);
    assert!(invite.is_empty());
    assert!(matches!(fetch.outcome(), Some(FetchOutcome::Failed(_))));
    // And data larger than the object announced is refused as it comes.
    let (mut fetch, invite) = PictureFetch::start(ME, BOB, &object, ids(), 1 << 20);
    let slp = SlpMessage::parse(&invite[0].body).unwrap();
    let ok = slp.ok().to_bytes();
    feed(&mut fetch, &theirs(7, 0, 0, &ok, ok.len() as u64, 0, 0));
    feed(
        &mut fetch,
        &theirs(8, 48_879, flags::MSNOBJ_DATA, &[1; 10], 1 << 30, 0, 1),
    );
    assert!(matches!(fetch.outcome(), Some(FetchOutcome::Failed(_))));
}

#[test]
fn data_before_the_200_ok_is_ignored_and_nothing_panics() {
    let (_, object) = picture(100);
    let (mut fetch, _) = PictureFetch::start(ME, BOB, &object, ids(), 1 << 20);
    let early = theirs(9, 48_879, flags::MSNOBJ_DATA, &[0; 100], 100, 0, 1);
    assert!(feed(&mut fetch, &early).is_empty());
    assert_eq!(fetch.outcome(), None);
    // An error flag ends it.
    let error = theirs(10, 48_879, flags::TLP_ERROR, &[], 0, 0, 0);
    feed(&mut fetch, &error);
    assert!(matches!(fetch.outcome(), Some(FetchOutcome::Failed(_))));
}
