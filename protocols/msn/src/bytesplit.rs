//! Splitting `&str` at ASCII bytes with plain byte loops: on the short
//! fields of this protocol they beat the generic char-pattern searchers.
//! Cutting valid UTF-8 at an ASCII byte always lands on a char boundary.

/// Splits at the first `byte`: `(before, after)`.
pub(crate) fn split_once(text: &str, byte: u8) -> Option<(&str, &str)> {
    let i = text.as_bytes().iter().position(|&b| b == byte)?;
    Some((&text[..i], &text[i + 1..]))
}

/// Every piece between occurrences of `byte` (like `str::split`).
pub(crate) fn split(text: &str, byte: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match split_once(current, byte) {
            Some((piece, after)) => {
                rest = Some(after);
                Some(piece)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_std() {
        for text in ["", "a", "a\n", "a\r\nb", "a\n\nb\r\n", ";x;;y;", "é;ü"] {
            assert_eq!(
                split(text, b';').collect::<Vec<_>>(),
                text.split(';').collect::<Vec<_>>()
            );
            assert_eq!(split_once(text, b';'), text.split_once(';'));
        }
    }
}
