//! Legacy ids <-> Matrix localparts.
//!
//! Ghost localparts are `template` with `{id}` replaced by the escaped legacy id. The
//! escaping maps any string into the Matrix localpart grammar reversibly:
//! `a-z 0-9 . -` stay; `_` -> `__`; an upper-case ASCII letter -> `_` + lower case;
//! every other byte of the UTF-8 encoding -> `=` + two lower-case hex digits.

use std::fmt::Write as _;

/// The characters an escaped id may contain (used to build namespace regexes).
pub const ESCAPED_CHARSET: &str = "[a-z0-9._=-]";

/// Escapes a legacy id into localpart characters. Lower-case ids that the network treats
/// case-insensitively *before* calling this (see [`crate::model::NetworkId::canonical_id`]).
pub fn escape_localpart(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for ch in id.chars() {
        match ch {
            'a'..='z' | '0'..='9' | '.' | '-' => out.push(ch),
            '_' => out.push_str("__"),
            'A'..='Z' => {
                out.push('_');
                out.push(ch.to_ascii_lowercase());
            }
            _ => {
                let mut buf = [0u8; 4];
                for byte in ch.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "={byte:02x}");
                }
            }
        }
    }
    out
}

/// Reverses [`escape_localpart`]; `None` for strings it cannot have produced.
pub fn unescape_localpart(escaped: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut it = escaped.bytes();
    while let Some(b) = it.next() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => bytes.push(b),
            b'_' => match it.next()? {
                b'_' => bytes.push(b'_'),
                c @ b'a'..=b'z' => bytes.push(c.to_ascii_uppercase()),
                _ => return None,
            },
            b'=' => {
                let hi = hex_digit(it.next()?)?;
                let lo = hex_digit(it.next()?)?;
                let byte = hi << 4 | lo;
                // Only bytes that escaping would not have left as they are.
                if matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'A'..=b'Z') {
                    return None;
                }
                bytes.push(byte);
            }
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// A ghost localpart template such as `icq_{id}`: a prefix and a suffix around the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhostTemplate {
    prefix: String,
    suffix: String,
}

impl GhostTemplate {
    /// Parses a template; it must contain `{id}` exactly once and otherwise only
    /// characters of the localpart grammar.
    pub fn parse(template: &str) -> Result<GhostTemplate, String> {
        let Some((prefix, suffix)) = template.split_once("{id}") else {
            return Err(format!("template {template:?} must contain {{id}}"));
        };
        if suffix.contains("{id}") {
            return Err(format!(
                "template {template:?} contains {{id}} more than once"
            ));
        }
        let valid = |s: &str| {
            s.chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/'))
        };
        if !valid(prefix) || !valid(suffix) {
            return Err(format!(
                "template {template:?} may only contain a-z, 0-9, '.', '_', '=', '-', '/' around {{id}}"
            ));
        }
        if prefix.is_empty() && suffix.is_empty() {
            return Err("template \"{id}\" would claim every user on the homeserver".into());
        }
        Ok(GhostTemplate {
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    }

    /// The localpart for an already canonical legacy id.
    pub fn localpart(&self, id: &str) -> String {
        format!("{}{}{}", self.prefix, escape_localpart(id), self.suffix)
    }

    /// A localpart of at most `max` bytes for an id whose [`localpart`](Self::localpart)
    /// is longer (a Matrix user id holds at most 255 bytes; a hostile server may send a
    /// longer id): the start of the escaped id, `==` (which escaping never produces, so
    /// [`id_of`](Self::id_of) knows it cannot read it back) and a digest of the whole id.
    /// The caller keeps the id behind it.
    pub fn shortened_localpart(&self, id: &str, max: usize) -> String {
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(id.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let escaped = escape_localpart(id);
        let room = max.saturating_sub(self.prefix.len() + self.suffix.len() + 2 + digest.len());
        // Escaped ids are ASCII: any cut is a character boundary.
        let start = &escaped[..room.min(escaped.len())];
        format!("{}{start}=={digest}{}", self.prefix, self.suffix)
    }

    /// The legacy id behind a localpart of this template, if it is one.
    pub fn id_of(&self, localpart: &str) -> Option<String> {
        let inner = localpart
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        if inner.is_empty() {
            return None;
        }
        unescape_localpart(inner)
    }

    /// An anchored regex matching exactly the user ids of this template on `domain`.
    pub fn user_regex(&self, domain: &str) -> String {
        format!(
            "^@{}{}+{}:{}$",
            regex::escape(&self.prefix),
            ESCAPED_CHARSET,
            regex::escape(&self.suffix),
            regex::escape(domain)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_as_design_says() {
        assert_eq!(escape_localpart("alice@hotmail.com"), "alice=40hotmail.com");
        assert_eq!(escape_localpart("Bob_X"), "_bob___x");
        assert_eq!(escape_localpart("12345"), "12345");
        assert_eq!(escape_localpart("é"), "=c3=a9");
        assert_eq!(escape_localpart("a=b"), "a=3db");
    }

    #[test]
    fn rejects_what_escaping_never_produces() {
        for bad in ["_A", "=4", "=zz", "=61", "a b", "_", "=c3"] {
            assert_eq!(unescape_localpart(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn template_round_trip_and_regex() {
        let t = GhostTemplate::parse("msn_{id}").unwrap();
        assert_eq!(t.localpart("alice@hotmail.com"), "msn_alice=40hotmail.com");
        assert_eq!(
            t.id_of("msn_alice=40hotmail.com").as_deref(),
            Some("alice@hotmail.com")
        );
        assert_eq!(t.id_of("icq_123"), None);
        assert_eq!(t.id_of("msn_"), None);
        let re = regex::Regex::new(&t.user_regex("example.org")).unwrap();
        assert!(re.is_match("@msn_alice=40hotmail.com:example.org"));
        assert!(!re.is_match("@msn_:example.org"));
        assert!(!re.is_match("@msn_alice:example.org.evil"));
        assert!(!re.is_match("@xmsn_alice:example.org"));
        assert!(!re.is_match("@msn_Alice:example.org"));
    }

    #[test]
    fn shortened_localparts_fit_and_are_not_read_back() {
        let t = GhostTemplate::parse("msn_{id}").unwrap();
        let long = format!("{}@example.com", "a".repeat(300));
        let short = t.shortened_localpart(&long, 200);
        assert_eq!(short.len(), 200);
        assert!(short.starts_with("msn_aaaa"), "{short}");
        assert_eq!(t.id_of(&short), None, "the caller keeps the id");
        let re = regex::Regex::new(&t.user_regex("x.org")).unwrap();
        assert!(
            re.is_match(&format!("@{short}:x.org")),
            "still in the namespace"
        );
        let other = format!("{}@example.org", "a".repeat(300));
        assert_ne!(
            t.shortened_localpart(&other, 200),
            short,
            "the digest tells them apart"
        );
        assert!(escape_localpart(&long).find("==").is_none());
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(GhostTemplate::parse("icq_").is_err());
        assert!(GhostTemplate::parse("{id}").is_err());
        assert!(GhostTemplate::parse("{id}_{id}").is_err());
        assert!(GhostTemplate::parse("ICQ_{id}").is_err());
    }

    proptest! {
        #[test]
        fn escaping_round_trips(id in any::<String>()) {
            let escaped = escape_localpart(&id);
            prop_assert!(escaped.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-')));
            prop_assert_eq!(unescape_localpart(&escaped), Some(id));
        }

        #[test]
        fn template_regex_matches_every_ghost(id in "\\PC{1,40}") {
            let t = GhostTemplate::parse("icq_{id}").unwrap();
            let re = regex::Regex::new(&t.user_regex("localhost")).unwrap();
            let user = format!("@{}:localhost", t.localpart(&id));
            prop_assert!(re.is_match(&user));
            prop_assert_eq!(t.id_of(&t.localpart(&id)), Some(id));
        }
    }
}
