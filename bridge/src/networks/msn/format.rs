//! Text formatting between MSN's `X-MMS-IM-Format` header and Matrix HTML.
//!
//! MSN styles a whole message (one font, one colour, B/I/U/S effects), so:
//! * MSN -> Matrix: the effects and a non-black colour wrap the whole escaped body.
//!   The plain body stays the message text as sent.
//! * Matrix -> MSN: a style used anywhere in the HTML becomes the message's style
//!   (the closest MSN can express); the body sent is the event's plain `body`.

use msn_proto::TextFormat;

/// HTML for a received message, or `None` when the format adds nothing visible.
pub fn to_html(text: &str, format: &TextFormat) -> Option<String> {
    let (r, g, b) = format.rgb();
    let coloured = format.color != 0;
    if !(format.bold || format.italic || format.underline || format.strikethrough || coloured) {
        return None;
    }
    let mut open = String::new();
    let mut close = String::new();
    if coloured {
        open.push_str(&format!("<font color=\"#{r:02x}{g:02x}{b:02x}\">"));
        close.insert_str(0, "</font>");
    }
    for (on, tag) in [
        (format.bold, "b"),
        (format.italic, "i"),
        (format.underline, "u"),
        (format.strikethrough, "del"),
    ] {
        if on {
            open.push_str(&format!("<{tag}>"));
            close.insert_str(0, &format!("</{tag}>"));
        }
    }
    Some(format!("{open}{}{close}", escape(text)))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The MSN format for a message sent from Matrix: the default font with the
/// whole-message styles found in `html` (if any).
pub fn from_html(html: Option<&str>) -> TextFormat {
    let mut format = TextFormat::default();
    let Some(html) = html else { return format };
    let lower = html.to_ascii_lowercase();
    let has_tag = |names: &[&str]| {
        names.iter().any(|n| {
            lower.match_indices(&format!("<{n}")).any(|(i, m)| {
                // `<b>` or `<b ...>`, not `<br>` / `<blockquote>`.
                matches!(lower.as_bytes().get(i + m.len()), Some(b'>' | b' ' | b'/'))
            })
        })
    };
    format.bold = has_tag(&["b", "strong"]);
    format.italic = has_tag(&["i", "em"]);
    format.underline = has_tag(&["u"]);
    format.strikethrough = has_tag(&["del", "s", "strike"]);
    if let Some((r, g, b)) = find_color(&lower) {
        format.set_rgb(r, g, b);
    }
    format
}

/// The first `color="#rrggbb"` / `data-mx-color="#rrggbb"` attribute: inside a tag only,
/// so a message whose text says `color='#00ff00'` is not coloured (found by fuzzing).
fn find_color(lower: &str) -> Option<(u8, u8, u8)> {
    let tags = lower
        .split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(tag, _)| tag));
    for tag in tags {
        for (i, _) in tag.match_indices("color=") {
            let rest = tag[i + "color=".len()..].trim_start_matches(['"', '\'']);
            let Some(hex) = rest.strip_prefix('#') else {
                continue;
            };
            if hex.len() >= 6 && hex.is_char_boundary(6) {
                if let Ok(v) = u32::from_str_radix(&hex[..6], 16) {
                    return Some(((v >> 16) as u8, (v >> 8) as u8, v as u8));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msn_to_html() {
        let f = TextFormat::parse("FN=Arial; EF=BI; CO=ff; CS=0; PF=22");
        // CO is BBGGRR: ff is red.
        assert_eq!(
            to_html("a<b & c\nd", &f).as_deref(),
            Some("<font color=\"#ff0000\"><b><i>a&lt;b &amp; c<br>d</i></b></font>")
        );
        let plain = TextFormat::parse("FN=Arial; EF=; CO=0; CS=0; PF=22");
        assert_eq!(to_html("hi", &plain), None);
        let f = TextFormat::parse("EF=US; CO=ff8000");
        assert_eq!(
            to_html("x", &f).as_deref(),
            Some("<font color=\"#0080ff\"><u><del>x</del></u></font>")
        );
    }

    #[test]
    fn html_to_msn() {
        // Text that reads like an attribute is text: only tags carry a colour.
        let f = from_html(Some("say color=&quot;#00ff00&quot; or color='#00ff00'"));
        assert_eq!(f.color, 0);
        let f = from_html(Some(
            "x <font color=\"nope\" data-mx-color=\"#0000ff\">y</font>",
        ));
        assert_eq!(
            f.to_header_value(),
            TextFormat::parse(&f.to_header_value()).to_header_value()
        );
        assert_ne!(f.color, 0);
        let f = from_html(Some("<strong>hi</strong> <em>there</em>"));
        assert!(f.bold && f.italic && !f.underline && !f.strikethrough);
        let f = from_html(Some("line<br>two <blockquote>q</blockquote>"));
        assert!(!f.bold && !f.italic);
        let f = from_html(Some("<u>x</u><del>y</del>"));
        assert!(f.underline && f.strikethrough);
        let f = from_html(Some("<font color=\"#FF8000\">x</font>"));
        assert_eq!(f.rgb(), (0xff, 0x80, 0x00));
        assert_eq!(f.color, 0x0080ff);
        let f = from_html(Some("<span data-mx-color='#00ff00'>x</span><s>y</s>"));
        assert_eq!(f.rgb(), (0, 0xff, 0));
        assert!(f.strikethrough);
        assert_eq!(from_html(None), TextFormat::default());
        // Malformed input never panics.
        let _ = from_html(Some("color=#é<b"));
    }

    #[test]
    fn round_trip() {
        let f = from_html(Some("<b><font color=\"#123456\">x</font></b>"));
        assert_eq!(
            to_html("x", &f).as_deref(),
            Some("<font color=\"#123456\"><b>x</b></font>")
        );
    }
}
