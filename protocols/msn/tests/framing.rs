//! Byte-exact framing tests: every command form decoded and encoded.

use msn_proto::*;

fn decode_all(bytes: &[u8]) -> Vec<Result<Command, Error>> {
    let mut d = Decoder::new();
    d.feed(bytes);
    std::iter::from_fn(|| d.next()).collect()
}

fn one(bytes: &[u8]) -> Command {
    let mut all = decode_all(bytes);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0).unwrap()
}

fn cmd(name: &str, trid: Option<u32>, params: &[&str]) -> Command {
    Command::new(name, trid, params)
}

#[test]
fn trid_commands_round_trip_byte_exact() {
    let cases: &[(&[u8], Command)] = &[
        (
            b"VER 1 MSNP9 MSNP8 CVR0\r\n",
            cmd("VER", Some(1), &["MSNP9", "MSNP8", "CVR0"]),
        ),
        (b"VER 1 MSNP9\r\n", cmd("VER", Some(1), &["MSNP9"])),
        (
            b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 6.2.0208 MSMSGS a@b.com\r\n",
            cmd(
                "CVR",
                Some(2),
                &[
                    "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "6.2.0208", "MSMSGS", "a@b.com",
                ],
            ),
        ),
        (
            b"USR 3 TWN I a@b.com\r\n",
            cmd("USR", Some(3), &["TWN", "I", "a@b.com"]),
        ),
        (
            b"XFR 3 NS 127.0.0.1:1865 0 127.0.0.1:1863\r\n",
            cmd(
                "XFR",
                Some(3),
                &["NS", "127.0.0.1:1865", "0", "127.0.0.1:1863"],
            ),
        ),
        (
            b"USR 4 OK a@b.com Alice%20A 1 0\r\n",
            cmd("USR", Some(4), &["OK", "a@b.com", "Alice%20A", "1", "0"]),
        ),
        (b"SYN 5 0\r\n", cmd("SYN", Some(5), &["0"])),
        (b"SYN 5 12 2 1\r\n", cmd("SYN", Some(5), &["12", "2", "1"])),
        (b"CHG 6 NLN 0\r\n", cmd("CHG", Some(6), &["NLN", "0"])),
        (
            b"ILN 6 AWY b@c.com Bob 0\r\n",
            cmd("ILN", Some(6), &["AWY", "b@c.com", "Bob", "0"]),
        ),
        (
            b"ADD 7 FL b@c.com Bob 0\r\n",
            cmd("ADD", Some(7), &["FL", "b@c.com", "Bob", "0"]),
        ),
        (
            b"ADD 0 RL 13 b@c.com Bob\r\n",
            cmd("ADD", Some(0), &["RL", "13", "b@c.com", "Bob"]),
        ),
        (
            b"REM 8 FL 14 b@c.com\r\n",
            cmd("REM", Some(8), &["FL", "14", "b@c.com"]),
        ),
        (
            b"REA 9 15 a@b.com New%20Name\r\n",
            cmd("REA", Some(9), &["15", "a@b.com", "New%20Name"]),
        ),
        (
            b"ADG 10 16 Friends 1 0\r\n",
            cmd("ADG", Some(10), &["16", "Friends", "1", "0"]),
        ),
        (b"RMG 11 17 1\r\n", cmd("RMG", Some(11), &["17", "1"])),
        (
            b"REG 12 18 1 Pals 0\r\n",
            cmd("REG", Some(12), &["18", "1", "Pals", "0"]),
        ),
        (b"XFR 13 SB\r\n", cmd("XFR", Some(13), &["SB"])),
        (
            b"XFR 13 SB 127.0.0.1:1864 CKI 17262740.1050826919.32308\r\n",
            cmd(
                "XFR",
                Some(13),
                &["SB", "127.0.0.1:1864", "CKI", "17262740.1050826919.32308"],
            ),
        ),
        (
            b"CHL 0 15570131571988941333\r\n",
            cmd("CHL", Some(0), &["15570131571988941333"]),
        ),
        (b"QRY 14\r\n", cmd("QRY", Some(14), &[])),
        (
            b"USR 1 a@b.com 123.456\r\n",
            cmd("USR", Some(1), &["a@b.com", "123.456"]),
        ),
        (b"CAL 2 b@c.com\r\n", cmd("CAL", Some(2), &["b@c.com"])),
        (
            b"CAL 2 RINGING 11752013\r\n",
            cmd("CAL", Some(2), &["RINGING", "11752013"]),
        ),
        (
            b"ANS 1 b@c.com 849102291.520491113 11752013\r\n",
            cmd(
                "ANS",
                Some(1),
                &["b@c.com", "849102291.520491113", "11752013"],
            ),
        ),
        (
            b"IRO 1 1 2 a@b.com Alice\r\n",
            cmd("IRO", Some(1), &["1", "2", "a@b.com", "Alice"]),
        ),
        (b"ANS 1 OK\r\n", cmd("ANS", Some(1), &["OK"])),
        (b"ACK 3\r\n", cmd("ACK", Some(3), &[])),
        (b"NAK 3\r\n", cmd("NAK", Some(3), &[])),
        (b"BLP 4 AL\r\n", cmd("BLP", Some(4), &["AL"])),
    ];
    for (bytes, expected) in cases {
        assert_eq!(&one(bytes), expected, "{}", String::from_utf8_lossy(bytes));
        assert_eq!(&expected.to_bytes(), bytes);
    }
}

#[test]
fn asynchronous_commands_have_no_trid() {
    let cases: &[(&[u8], Command)] = &[
        (
            b"NLN BSY b@c.com Bob%20B 268435492\r\n",
            cmd("NLN", None, &["BSY", "b@c.com", "Bob%20B", "268435492"]),
        ),
        (b"FLN b@c.com\r\n", cmd("FLN", None, &["b@c.com"])),
        (
            b"RNG 11752013 127.0.0.1:1864 CKI 849102291.520491113 a@b.com Alice\r\n",
            cmd(
                "RNG",
                None,
                &[
                    "11752013",
                    "127.0.0.1:1864",
                    "CKI",
                    "849102291.520491113",
                    "a@b.com",
                    "Alice",
                ],
            ),
        ),
        (
            b"JOI b@c.com Bob\r\n",
            cmd("JOI", None, &["b@c.com", "Bob"]),
        ),
        (b"BYE b@c.com\r\n", cmd("BYE", None, &["b@c.com"])),
        (b"BYE b@c.com 1\r\n", cmd("BYE", None, &["b@c.com", "1"])),
        (
            b"LSG 0 Other%20Contacts 0\r\n",
            cmd("LSG", None, &["0", "Other%20Contacts", "0"]),
        ),
        (
            b"LST b@c.com Bob 11 0,2\r\n",
            cmd("LST", None, &["b@c.com", "Bob", "11", "0,2"]),
        ),
        (b"GTC A\r\n", cmd("GTC", None, &["A"])),
        (b"BLP AL\r\n", cmd("BLP", None, &["AL"])),
        (b"QNG 50\r\n", cmd("QNG", None, &["50"])),
        (b"PNG\r\n", cmd("PNG", None, &[])),
        (b"OUT\r\n", cmd("OUT", None, &[])),
        (b"OUT OTH\r\n", cmd("OUT", None, &["OTH"])),
    ];
    for (bytes, expected) in cases {
        assert_eq!(&one(bytes), expected, "{}", String::from_utf8_lossy(bytes));
        assert_eq!(&expected.to_bytes(), bytes);
    }
}

#[test]
fn errors_carry_trid_and_description() {
    let c = one(b"911 4\r\n");
    let e = c.server_error().unwrap();
    assert_eq!((e.code, e.trid), (911, Some(4)));
    assert_eq!(e.to_string(), "server error 911: authentication failed");
    assert_eq!(
        one(b"217 2\r\n").server_error().unwrap().description(),
        "user not online"
    );
    let unknown = one(b"999 7\r\n").server_error().unwrap();
    assert_eq!(
        unknown.to_string(),
        "server error 999: unknown error code 999"
    );
    assert_eq!(cmd("911", Some(4), &[]).to_bytes(), b"911 4\r\n");
    assert!(one(b"NLN NLN a@b.c A 0\r\n").server_error().is_none());
}

const TEXT_MSG: &[u8] = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Arial; EF=B; CO=ff; CS=0; PF=22\r\n\r\nHello";

#[test]
fn payload_commands_have_no_crlf_after_payload() {
    let mut wire = format!("MSG 5 A {}\r\n", TEXT_MSG.len()).into_bytes();
    wire.extend_from_slice(TEXT_MSG);
    wire.extend_from_slice(b"PNG\r\n");
    let all = decode_all(&wire);
    assert_eq!(all.len(), 2);
    let msg = all[0].clone().unwrap();
    assert_eq!(
        msg,
        cmd("MSG", Some(5), &["A"]).with_payload(TEXT_MSG.to_vec())
    );
    assert_eq!(all[1].clone().unwrap(), cmd("PNG", None, &[]));
    assert_eq!(msg.to_bytes(), &wire[..wire.len() - 5]);

    let mut incoming = format!("MSG a@b.com Alice%20A {}\r\n", TEXT_MSG.len()).into_bytes();
    incoming.extend_from_slice(TEXT_MSG);
    let c = one(&incoming);
    assert_eq!(c.trid, None);
    assert_eq!(c.params, ["a@b.com", "Alice%20A"]);
    assert_eq!(c.to_bytes(), incoming);

    let hotmail = b"MSG Hotmail Hotmail 5\r\nabcde";
    assert_eq!(
        one(hotmail),
        cmd("MSG", None, &["Hotmail", "Hotmail"]).with_payload(b"abcde".to_vec())
    );

    let qry = b"QRY 9 PROD0038W!61ZTF9 32\r\n0123456789abcdef0123456789abcdef";
    let q = one(qry);
    assert_eq!(q.trid, Some(9));
    assert_eq!(q.params, ["PROD0038W!61ZTF9"]);
    assert_eq!(
        q.payload.as_deref(),
        Some(&b"0123456789abcdef0123456789abcdef"[..])
    );
    assert_eq!(q.to_bytes(), qry);

    assert_eq!(
        one(b"NOT 3\r\nxyz"),
        cmd("NOT", None, &[]).with_payload(b"xyz".to_vec())
    );
    assert_eq!(
        one(b"MSG 1 U 0\r\n"),
        cmd("MSG", Some(1), &["U"]).with_payload(Vec::new())
    );
}

#[test]
fn byte_at_a_time_feeding() {
    let mut wire = format!("MSG 5 A {}\r\n", TEXT_MSG.len()).into_bytes();
    wire.extend_from_slice(TEXT_MSG);
    wire.extend_from_slice(b"NLN NLN b@c.com Bob 0\r\n");
    let mut d = Decoder::new();
    let mut got = Vec::new();
    for b in &wire {
        d.feed(std::slice::from_ref(b));
        while let Some(c) = d.next() {
            got.push(c.unwrap());
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].payload.as_deref(), Some(TEXT_MSG));
    assert_eq!(got[1].name, "NLN");
    assert_eq!(d.buffered(), 0);
}

#[test]
fn liberal_line_ends_and_blank_lines() {
    let all = decode_all(b"\r\nPNG\nQNG 50\r\n\r\n");
    let names: Vec<_> = all.into_iter().map(|c| c.unwrap().name).collect();
    assert_eq!(names, ["PNG", "QNG"]);
}

#[test]
fn bad_lines_are_skipped() {
    let all = decode_all(b"HELLO there\r\nMSG 1 A x\r\nPNG\r\n\xff\xfe\r\nOUT\r\n");
    assert!(matches!(all[0], Err(Error::BadCommandName(_))));
    assert!(matches!(all[1], Err(Error::BadLength(_))));
    assert_eq!(all[2].clone().unwrap().name, "PNG");
    assert!(matches!(all[3], Err(Error::NotUtf8)));
    assert_eq!(all[4].clone().unwrap().name, "OUT");
}

#[test]
fn limits_reject_before_allocating() {
    let mut d = Decoder::new();
    d.feed(b"MSG 1 A 65537\r\n");
    assert_eq!(d.next(), Some(Err(Error::PayloadTooLarge(65537))));
    assert_eq!(d.next(), None);
    d.feed(b"PNG\r\n");
    assert_eq!(d.next(), None, "a failed decoder stays failed");

    let mut d = Decoder::new();
    d.feed(b"MSG 1 A 99999999999999999999\r\n");
    assert!(matches!(d.next(), Some(Err(Error::PayloadTooLarge(_)))));

    let mut d = Decoder::new();
    d.feed(&vec![b'A'; MAX_LINE]);
    assert_eq!(d.next(), Some(Err(Error::LineTooLong)));

    let mut d = Decoder::new();
    d.feed(&vec![b'A'; MAX_LINE - 1]);
    assert_eq!(d.next(), None, "still below the limit");

    // The largest payload is accepted.
    let mut d = Decoder::new();
    d.feed(format!("MSG 1 D {MAX_PAYLOAD}\r\n").as_bytes());
    assert_eq!(d.next(), None);
    d.feed(&vec![b'x'; MAX_PAYLOAD]);
    assert_eq!(
        d.next().unwrap().unwrap().payload.unwrap().len(),
        MAX_PAYLOAD
    );
}

#[test]
fn borrowed_parse_matches_owned() {
    let mut wire = format!("MSG a@b.com Alice {}\r\n", TEXT_MSG.len()).into_bytes();
    wire.extend_from_slice(TEXT_MSG);
    let (c, used) = parse_command(&wire).unwrap().unwrap();
    assert_eq!(used, wire.len());
    assert_eq!(c.name, "MSG");
    assert_eq!(c.param(1), Some("Alice"));
    assert_eq!(c.payload, Some(TEXT_MSG));
    assert_eq!(parse_command(&wire[..wire.len() - 1]).unwrap(), None);
}

#[test]
fn url_helpers() {
    assert_eq!(url_encode("Bob & Co."), "Bob%20%26%20Co.");
    assert_eq!(url_decode("Bob%20%26%20Co."), "Bob & Co.");
}
