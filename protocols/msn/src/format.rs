//! The `X-MMS-IM-Format` header: font, effects, colour, charset, pitch.

use crate::bytesplit;
use crate::urlenc::{url_decode, url_encode};

/// Text formatting of an instant message.
///
/// `color` is stored as on the wire, `0xBBGGRR` (see [`TextFormat::rgb`]);
/// `charset` and `pitch_family` are the Windows LOGFONT bytes, written in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFormat {
    pub font: String,
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    pub strikethrough: bool,
    pub color: u32,
    pub charset: u8,
    pub pitch_family: u8,
}

impl Default for TextFormat {
    /// What MSN Messenger 6 sends by default.
    fn default() -> TextFormat {
        TextFormat {
            font: "Microsoft Sans Serif".into(),
            bold: false,
            italic: false,
            underline: false,
            strikethrough: false,
            color: 0,
            charset: 0,
            pitch_family: 0x22,
        }
    }
}

impl TextFormat {
    /// Parses the header value. Liberal: unknown keys and unparsable values
    /// are ignored (the field keeps its zero value), any order is accepted.
    pub fn parse(value: &str) -> TextFormat {
        let mut f = TextFormat {
            font: String::new(),
            bold: false,
            italic: false,
            underline: false,
            strikethrough: false,
            color: 0,
            charset: 0,
            pitch_family: 0,
        };
        for part in bytesplit::split(value, b';') {
            let Some((key, val)) = bytesplit::split_once(part, b'=') else {
                continue;
            };
            let val = val.trim_ascii();
            let key = match key.trim_ascii().as_bytes() {
                [a, b] => [a.to_ascii_uppercase(), b.to_ascii_uppercase()],
                _ => continue,
            };
            match &key {
                b"FN" => f.font = url_decode(val).into_owned(),
                b"EF" => {
                    for c in val.bytes() {
                        match c.to_ascii_uppercase() {
                            b'B' => f.bold = true,
                            b'I' => f.italic = true,
                            b'U' => f.underline = true,
                            b'S' => f.strikethrough = true,
                            _ => {}
                        }
                    }
                }
                b"CO" => f.color = u32::from_str_radix(val, 16).unwrap_or(0) & 0xFF_FFFF,
                b"CS" => f.charset = u8::from_str_radix(val, 16).unwrap_or(0),
                b"PF" => f.pitch_family = u8::from_str_radix(val, 16).unwrap_or(0),
                _ => {}
            }
        }
        f
    }

    /// The header value, e.g. `FN=Arial; EF=B; CO=ff; CS=0; PF=22`.
    pub fn to_header_value(&self) -> String {
        let mut effects = String::new();
        for (on, c) in [
            (self.bold, 'B'),
            (self.italic, 'I'),
            (self.underline, 'U'),
            (self.strikethrough, 'S'),
        ] {
            if on {
                effects.push(c);
            }
        }
        format!(
            "FN={}; EF={}; CO={:x}; CS={:x}; PF={:x}",
            url_encode(&self.font),
            effects,
            self.color,
            self.charset,
            self.pitch_family
        )
    }

    /// The colour as `(red, green, blue)`.
    pub fn rgb(&self) -> (u8, u8, u8) {
        let c = self.color;
        (c as u8, (c >> 8) as u8, (c >> 16) as u8)
    }

    pub fn set_rgb(&mut self, red: u8, green: u8, blue: u8) {
        self.color = u32::from(blue) << 16 | u32::from(green) << 8 | u32::from(red);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes() {
        let f = TextFormat::parse("FN=Comic%20Sans%20MS; EF=BIS; CO=ff8000; CS=86; PF=22");
        assert_eq!(f.font, "Comic Sans MS");
        assert!(f.bold && f.italic && f.strikethrough && !f.underline);
        assert_eq!(f.rgb(), (0x00, 0x80, 0xff));
        assert_eq!(f.charset, 0x86);
        assert_eq!(f.pitch_family, 0x22);
        assert_eq!(
            f.to_header_value(),
            "FN=Comic%20Sans%20MS; EF=BIS; CO=ff8000; CS=86; PF=22"
        );
    }

    #[test]
    fn liberal_parse() {
        let f = TextFormat::parse("PF=zz;CO=0;junk;EF=;FN=%E5%AE%8B");
        assert_eq!(f.font, "宋");
        assert_eq!(f.pitch_family, 0);
        assert!(!f.bold);
        let mut g = TextFormat::default();
        g.set_rgb(1, 2, 3);
        assert_eq!(g.color, 0x030201);
    }
}
