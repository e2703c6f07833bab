//! The LOGIN_RESPONSE password hash.

/// Java's `String.hashCode()` of `challenge + password`: `h = 31 * h + c` over the
/// UTF-16 code units (so a character outside the BMP counts as its two surrogates),
/// wrapping at 32 bits. Sent as a big-endian i32 in LOGIN_RESPONSE field 1.
pub fn login_hash(challenge: &str, password: &str) -> i32 {
    challenge
        .encode_utf16()
        .chain(password.encode_utf16())
        .fold(0i32, |h, unit| {
            h.wrapping_mul(31).wrapping_add(i32::from(unit))
        })
}

#[cfg(test)]
mod tests {
    use super::login_hash;

    // Expected values computed independently in Python, emulating Java:
    // b = s.encode("utf-16-be"); x = 0
    // for each 2-byte unit u: x = (31*x + u) & 0xffffffff; then to signed i32.
    #[test]
    fn ascii() {
        assert_eq!(login_hash("", ""), 0);
        assert_eq!(login_hash("a", ""), 97);
        assert_eq!(login_hash("ab", "c"), 96354);
        assert_eq!(login_hash("hel", "lo"), 99_162_322);
        assert_eq!(login_hash("Xy7kQ2", "secret"), 1_992_105_190);
        assert_eq!(login_hash("challenge-0001", "hunter2"), 2_108_597_031);
    }

    #[test]
    fn wraps_negative() {
        assert_eq!(login_hash("Xy7kQ2", "password"), -871_312_559);
        assert_eq!(
            login_hash("Xy7kQ2", "password").to_be_bytes(),
            [0xcc, 0x10, 0xd3, 0x51]
        );
    }

    #[test]
    fn cyrillic() {
        assert_eq!(login_hash("", "пароль"), 2_078_621_504);
        assert_eq!(login_hash("Xy7kQ2", "пароль"), 682_036_598);
    }

    #[test]
    fn surrogate_pair() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16.
        assert_eq!(login_hash("", "\u{1F600}"), 1_772_899);
        assert_eq!(login_hash("Xy7kQ2", "\u{1F600}"), 439_903_897);
        assert_eq!(login_hash("Xy7kQ2", "пароль\u{1F600}"), -1_691_052_711);
    }
}
