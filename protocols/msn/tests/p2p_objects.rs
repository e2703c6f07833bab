//! MSNObject and the file transfer context.
//!
//! Reference data:
//! * AMSN_OBJ: an MSNObject written by aMSN (`Location="amsn.tmp"`), quoted
//!   in the GLiveMsgr sources (Main.cs); its SHA1C is checked against the
//!   string format of libpurple `msn_object_new_from_image`.
//! * PIDGIN_OBJ: the base64 `Context` of the libpurple INVITE in
//!   tests/slp.rs, decoded: libpurple's `msn_object_to_string` output for
//!   an object without SHA1C, with Friendly "rtqnsy".
//! * SHA-1("abc") is the FIPS 180-1 test vector a9993e36...d89d.
//! * Version 2 file context: libpurple 2.x `gen_context` (slplink.c):
//!   u32 574, u32 2, u32 size, u32 0, u32 0, 550 bytes of NUL-padded UTF-16LE
//!   name, then four 0xFF bytes.
//! * Version 3 file context: the first 34 bytes of the Context of a WLM file
//!   INVITE captured by the author of msnc1 (yyc), quoted in its source
//!   (`fgIAAAMAAADCGQAAAAAAAAEAAABiAGIALgB0AHgAdAAAAA...`: 638, 3, 6594,
//!   type 1, "bb.txt"), decoded with Python's base64, not this crate.

use msn_proto::*;
use proptest::prelude::*;

const AMSN_OBJ: &str = "<msnobj Creator=\"karl113@hotmail.com\" Size=\"15045\"\tType=\"3\" Location=\"amsn.tmp\" Friendly=\"AAA=\" SHA1D=\"n42ExCY45hQyzyZ39AC7aZmP3j8=\" SHA1C=\"exiHARLx1BqTCBnT2KT0A6bogH0=\" />";
const PIDGIN_OBJ: &str = r#"<msnobj Creator="energyfai@hotmail.com" Size="2481" Type="3" Location="0" Friendly="cgB0AHEAbgBzAHkAAAA=" SHA1D="jh1w8HJ51npankgc8U5Flr+n8x8="/>"#;

#[test]
fn amsn_object_sha1c_matches_libpurple_formula() {
    let o = MsnObject::parse(AMSN_OBJ).unwrap();
    assert_eq!(o.creator, "karl113@hotmail.com");
    assert_eq!((o.size, o.kind), (15045, MSNOBJ_TYPE_DISPLAY_PICTURE));
    assert_eq!(o.location, "amsn.tmp");
    assert_eq!(
        o.sha1c_input(),
        "Creatorkarl113@hotmail.comSize15045Type3Locationamsn.tmpFriendlyAAA=SHA1Dn42ExCY45hQyzyZ39AC7aZmP3j8="
    );
    assert_eq!(o.compute_sha1c(), "exiHARLx1BqTCBnT2KT0A6bogH0=");
    assert!(o.sha1c_ok());
    assert_eq!(o.friendly_name().as_deref(), Some(""));
    let mut tampered = o.clone();
    tampered.size += 1;
    assert!(!tampered.sha1c_ok());
}

#[test]
fn pidgin_object_round_trips_byte_exact() {
    let o = MsnObject::parse(PIDGIN_OBJ).unwrap();
    assert_eq!(o.sha1c, None);
    assert!(o.sha1c_ok());
    assert_eq!(o.friendly_name().as_deref(), Some("rtqnsy"));
    assert_eq!(encode_friendly("rtqnsy"), "cgB0AHEAbgBzAHkAAAA=");
    assert_eq!(o.to_xml(), PIDGIN_OBJ);
    // As it arrives in NLN/ILN: URL-encoded.
    let nln = o.to_url_encoded();
    assert!(nln.starts_with("%3Cmsnobj%20Creator%3D%22energyfai%40hotmail.com%22"));
    assert_eq!(MsnObject::parse(&nln).unwrap(), o);
}

#[test]
fn hashes_of_data() {
    assert_eq!(sha1d(b"abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    assert_eq!(encode_friendly(""), FRIENDLY_NONE);
    let o = MsnObject::for_data("me@x.com", 3, "TFR2C.tmp", "", b"abc");
    assert_eq!(o.sha1d, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    assert_eq!(o.size, 3);
    assert!(o.sha1c_ok() && o.sha1c.is_some());
    assert!(o.matches_data(b"abc") && !o.matches_data(b"abd"));
    assert_eq!(
        o.to_xml(),
        format!(
            "<msnobj Creator=\"me@x.com\" Size=\"3\" Type=\"3\" Location=\"TFR2C.tmp\" Friendly=\"AAA=\" SHA1D=\"qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\" SHA1C=\"{}\"/>",
            o.sha1c.as_deref().unwrap()
        )
    );
}

#[test]
fn keeps_unknown_attributes_and_rejects_incomplete() {
    let with_stamp = PIDGIN_OBJ.replace("/>", " Stamp=\"abc\"/>");
    let o = MsnObject::parse(&with_stamp).unwrap();
    assert_eq!(o.extra, [("Stamp".to_string(), "abc".to_string())]);
    assert_eq!(o.to_xml(), with_stamp);
    for bad in [
        PIDGIN_OBJ.replace(" SHA1D=\"jh1w8HJ51npankgc8U5Flr+n8x8=\"", ""),
        PIDGIN_OBJ.replace("Size=\"2481\"", "Size=\"big\""),
        PIDGIN_OBJ.replace("/>", ""),
        PIDGIN_OBJ.replace("<msnobj", "<msnobject"),
        format!("{PIDGIN_OBJ}{}", " ".repeat(MAX_MSNOBJ_LEN)),
    ] {
        assert!(MsnObject::parse(&bad).is_err(), "{bad}");
    }
}

fn libpurple_v2_context(name: &str, size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [574u32, 2, size, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut field = vec![0u8; 0x226];
    for (i, u) in name.encode_utf16().enumerate() {
        field[2 * i..2 * i + 2].copy_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&field);
    out.extend_from_slice(&[0xFF; 4]);
    out
}

#[test]
fn version_2_matches_libpurple_gen_context() {
    let expected = libpurple_v2_context("photo é.png", 6594);
    assert_eq!(expected.len(), CONTEXT_LEN_V2);
    let ctx = FileContext {
        kind: FILE_TYPE_PREVIEW, // libpurple wrote 0 and no preview
        ..FileContext::new("photo é.png", 6594)
    };
    assert_eq!(ctx.to_bytes(), expected);
    let back = FileContext::parse(&expected).unwrap();
    assert_eq!(back, ctx);
    assert_eq!(FileContext::from_base64(&ctx.to_base64()).unwrap(), ctx);
}

#[test]
fn version_3_from_wlm_capture() {
    let prefix = [
        0x7e, 0x02, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0xc2, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x62, 0x00, 0x62, 0x00, 0x2e, 0x00, 0x74, 0x00, 0x78, 0x00,
        0x74, 0x00, 0x00, 0x00,
    ];
    let mut bytes = vec![0u8; 638];
    bytes[..prefix.len()].copy_from_slice(&prefix);
    bytes[570..574].copy_from_slice(&[0xFF; 4]);
    let ctx = FileContext::parse(&bytes).unwrap();
    assert_eq!(
        ctx,
        FileContext {
            version: 3,
            file_size: 6594,
            kind: FILE_TYPE_NO_PREVIEW,
            name: "bb.txt".into(),
            preview: vec![],
        }
    );
    assert_eq!(ctx.to_bytes(), bytes);
    // A preview follows the header.
    let mut with_preview = bytes.clone();
    with_preview.extend_from_slice(b"\x89PNG");
    assert_eq!(
        FileContext::parse(&with_preview).unwrap().preview,
        b"\x89PNG"
    );
}

#[test]
fn names_are_cleaned_and_bounded() {
    let mut raw = libpurple_v2_context("a\u{1}b\tc", 1);
    assert_eq!(FileContext::parse(&raw).unwrap().name, "abc");
    // Text after a NUL is ignored.
    raw[20 + 2 * 5] = b'z';
    raw[20 + 2 * 4] = 0;
    raw[20 + 2 * 3] = 0; // "a\u{1}b" then NUL
    assert_eq!(FileContext::parse(&raw).unwrap().name, "ab");
    // A full field without NUL keeps 259 units.
    let long = "x".repeat(400);
    let ctx = FileContext::parse(&libpurple_v2_context(&long[..275], 1)).unwrap();
    assert_eq!(ctx.name.len(), 259);
    assert_eq!(FileContext::new(&long, 1).name.len(), 259);
    // Unpaired surrogate.
    let mut lone = libpurple_v2_context("", 1);
    lone[20..22].copy_from_slice(&0xD800u16.to_le_bytes());
    assert_eq!(FileContext::parse(&lone).unwrap().name, "\u{FFFD}");
}

#[test]
fn rejects_bad_contexts() {
    let good = libpurple_v2_context("f", 1);
    assert!(FileContext::parse(&good[..573]).is_err());
    let mut v9 = good.clone();
    v9[4] = 9;
    assert!(FileContext::parse(&v9).is_err());
    let mut v3_long = good.clone();
    v3_long[4] = 3;
    v3_long[0..4].copy_from_slice(&638u32.to_le_bytes());
    assert!(FileContext::parse(&v3_long).is_err()); // only 574 bytes present
    let mut huge = good.clone();
    huge.resize(574 + MAX_PREVIEW + 1, 0);
    assert!(FileContext::parse(&huge).is_err());
    assert!(FileContext::from_base64(&"A".repeat(200_000)).is_err());
    assert!(FileContext::from_base64("not base64!").is_err());
}

proptest! {
    #[test]
    fn msnobject_never_panics(s in "\\PC{0,300}") {
        let _ = MsnObject::parse(&s);
        let _ = MsnObject::parse(&format!("<msnobj {s}"));
    }

    #[test]
    fn context_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = FileContext::parse(&bytes);
        let mut v3 = bytes.clone();
        if v3.len() >= 8 { v3[4..8].copy_from_slice(&3u32.to_le_bytes()); }
        let _ = FileContext::parse(&v3);
    }

    #[test]
    fn context_round_trip(name in "[^\\x00-\\x1f\\x7f-\\x9f]{0,100}", size in any::<u64>(), v3 in any::<bool>()) {
        let ctx = FileContext { version: if v3 { 3 } else { 2 }, ..FileContext::new(&name, size) };
        prop_assert_eq!(FileContext::parse(&ctx.to_bytes()).unwrap(), ctx);
    }

    #[test]
    fn object_round_trip(creator in "[a-z]{1,10}@[a-z]{1,10}\\.com", data in proptest::collection::vec(any::<u8>(), 0..200), name in "\\PC{0,20}") {
        let o = MsnObject::for_data(&creator, 3, "TFR1.tmp", &name, &data);
        let back = MsnObject::parse(&o.to_url_encoded()).unwrap();
        prop_assert!(back.sha1c_ok() && back.matches_data(&data));
        prop_assert_eq!(back.friendly_name(), Some(name));
    }
}
