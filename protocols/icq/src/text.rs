//! Windows-1252 <-> UTF-8. ICQ v2 text is Windows-1252; every byte decodes to a
//! character (the five unassigned bytes map to the C1 controls of the same value,
//! as WHATWG does), so decoding is total and lossless. Encoding reports every
//! character it could not represent instead of dropping it.

/// Code points of bytes 0x80..=0x9F.
const HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// Text converted to Windows-1252 bytes, with the characters that had no
/// Windows-1252 form (each replaced by `?` in `bytes`), in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub unrepresentable: Vec<char>,
}

impl Encoded {
    /// True when every character was represented exactly.
    pub fn is_lossless(&self) -> bool {
        self.unrepresentable.is_empty()
    }
}

/// Decodes Windows-1252 bytes. Never fails.
pub fn decode_cp1252(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // Fast path: ASCII is the same in both encodings.
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

fn byte_to_char(b: u8) -> char {
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

fn char_to_byte(c: char) -> Option<u8> {
    match u32::from(c) {
        // NUL would end the string early on the wire.
        0 => None,
        n @ (0x01..=0x7F | 0xA0..=0xFF) => Some(n as u8),
        _ => HIGH.iter().position(|&h| h == c).map(|i| 0x80 + i as u8),
    }
}

/// Encodes text as Windows-1252, reporting what could not be represented.
pub fn encode_cp1252(text: &str) -> Encoded {
    let mut out = Encoded {
        bytes: Vec::with_capacity(text.len()),
        unrepresentable: Vec::new(),
    };
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.bytes.push(b),
            None => {
                out.bytes.push(b'?');
                out.unrepresentable.push(c);
            }
        }
    }
    out
}

/// Appends the Windows-1252 form of `text`, `?` for what has none.
pub(crate) fn encode_cp1252_lossy(out: &mut Vec<u8>, text: &str) {
    if text.is_ascii() && !text.contains('\0') {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    out.extend(text.chars().map(|c| char_to_byte(c).unwrap_or(b'?')));
}

/// Characters of `text` that Windows-1252 cannot carry.
pub fn unrepresentable(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| char_to_byte(c).is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (1..=255).collect();
        let text = decode_cp1252(&all);
        let back = encode_cp1252(&text);
        assert!(back.is_lossless());
        assert_eq!(back.bytes, all);
    }

    #[test]
    fn euro_and_quotes() {
        assert_eq!(decode_cp1252(&[0x80, 0x93, b'a', 0x94, 0xE9]), "€“a”é");
        assert_eq!(encode_cp1252("€é").bytes, vec![0x80, 0xE9]);
    }

    #[test]
    fn unrepresentable_characters_are_reported_not_dropped() {
        let e = encode_cp1252("a😀b中\0");
        assert_eq!(e.bytes, b"a?b??".to_vec());
        assert_eq!(e.unrepresentable, vec!['😀', '中', '\0']);
        assert!(!e.is_lossless());
        assert_eq!(unrepresentable("ok ü"), Vec::<char>::new());
    }
}
