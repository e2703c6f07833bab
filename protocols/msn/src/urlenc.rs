//! URL encoding as used for friendly names, group names and Passport fields.

use std::borrow::Cow;

/// Percent-encodes everything except ASCII letters, digits and `-_.~`.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes `%XX` escapes. Liberal: malformed escapes are kept literally, `+`
/// stays `+` (MSN never uses it for space), invalid UTF-8 becomes U+FFFD.
pub fn url_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_names() {
        assert_eq!(url_encode("Alice Smith"), "Alice%20Smith");
        assert_eq!(url_encode("a@b.com"), "a%40b.com");
        assert_eq!(url_encode("é"), "%C3%A9");
    }

    #[test]
    fn decodes_liberally() {
        assert_eq!(url_decode("Alice%20Smith"), "Alice Smith");
        assert_eq!(url_decode("%C3%A9t%c3%a9"), "été");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("a+b"), "a+b");
        assert_eq!(url_decode("%FF"), "\u{FFFD}");
    }
}
