//! The core's HTML (Matrix `formatted_body` flavour) <-> XHTML-IM (XEP-0071).
//!
//! Core -> XMPP: the networks' HTML is a small, known subset, not always well-formed XML
//! (`<br>`, entities such as `&nbsp;`), so a lenient reader turns it into a tree (unknown
//! tags keep their text, unclosed ones close at the end, nesting is capped) and each tag
//! becomes what XEP-0071's recommended profile has:
//!
//! | core HTML | XHTML-IM |
//! | --- | --- |
//! | `b`, `strong`, `h1`–`h6` | `strong` |
//! | `i`, `em`, `cite` | `em` |
//! | `u`, `ins` | `span style="text-decoration: underline"` |
//! | `s`, `strike`, `del` | `span style="text-decoration: line-through"` |
//! | `font color`, `span data-mx-color`, `span style="color: …"` | `span style="color: #rrggbb"` |
//! | `code`, `pre` | `span style="font-family: monospace"` |
//! | `a href` (http, https, mailto, xmpp) | `a href` |
//! | `br`, `p`, `blockquote`, `ul`, `ol`, `li` | the same |
//! | `img` | its `alt` text |
//!
//! XMPP -> core: the reverse, in the forms the networks read (`strong`, `em`, `u`, `del`,
//! `font color="#rrggbb"`, `a href`, `br`, `p`, `blockquote`, lists); CSS `font-weight:
//! bold`, `font-style: italic`, `text-decoration` and `color` on any element count as
//! those tags. Colours are kept only as `#rrggbb` (from `#rgb`, `#rrggbb`, `rgb(r, g, b)`
//! or a basic CSS name), so nothing but a colour reaches a `style` attribute.
//!
//! Both directions return `None` when the result would carry no formatting at all, so a
//! message is then sent or received as plain text.

use xmpp_parsers::minidom::{Element, Node};
use xmpp_parsers::ns;

use super::xml_text;
use crate::core::sanitize::is_safe_link;

/// Nesting deeper than this is flattened (its text is kept).
const MAX_DEPTH: usize = 32;

/// The `<html xmlns='http://jabber.org/protocol/xhtml-im'>` payload for the core's HTML,
/// with `prefix` (such as `/me `) as text at the start of the body; `None` when the HTML
/// has no formatting XHTML-IM can show.
pub fn to_xhtml_im(html: &str, prefix: Option<&str>) -> Option<Element> {
    let tree = read_html(html);
    let mut body = Element::builder("body", ns::XHTML).build();
    if let Some(prefix) = prefix {
        body.append_text(xml_text(prefix).into_owned());
    }
    let mut formatted = false;
    for child in tree {
        append_converted(&mut body, child, &mut formatted);
    }
    if !formatted {
        return None;
    }
    Some(Element::builder("html", ns::XHTML_IM).append(body).build())
}

/// The core's HTML for an XHTML-IM payload (`<html xmlns='…xhtml-im'>`, its first body);
/// `None` when it carries no formatting.
pub fn from_xhtml_im(html: &Element) -> Option<String> {
    if !html.is("html", ns::XHTML_IM) {
        return None;
    }
    let body = html.children().find(|c| c.is("body", ns::XHTML))?;
    let mut out = String::new();
    let mut formatted = false;
    write_children(body, &mut out, &mut formatted, 0);
    // Style on the body itself applies to everything.
    let (open, close) = style_tags(body.attr("style"));
    if !open.is_empty() {
        formatted = true;
        out = format!("{open}{out}{close}");
    }
    formatted.then_some(out)
}

// ---- core HTML -> XHTML-IM -------------------------------------------------------------

/// A node of the leniently read HTML.
#[derive(Debug, Clone, PartialEq)]
enum HtmlNode {
    Text(String),
    Tag {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<HtmlNode>,
    },
}

/// A tag being read: its name, attributes and children so far.
type OpenTag = (String, Vec<(String, String)>, Vec<HtmlNode>);

const VOID: &[&str] = &["br", "img", "hr", "wbr", "input", "meta", "link"];

/// Reads HTML into a tree, never failing: what is not a tag is text.
fn read_html(html: &str) -> Vec<HtmlNode> {
    // The open tags: (name, attributes, children so far); the root has no name.
    let mut stack: Vec<OpenTag> = vec![(String::new(), Vec::new(), Vec::new())];
    let mut text = String::new();
    let mut rest = html;
    fn flush(text: &mut String, stack: &mut [OpenTag]) {
        if !text.is_empty() {
            let top = stack.last_mut().expect("the root stays");
            top.2.push(HtmlNode::Text(decode_entities(text)));
            text.clear();
        }
    }
    fn close_top(stack: &mut Vec<OpenTag>) {
        let (name, attrs, children) = stack.pop().expect("never the root");
        let parent = stack.last_mut().expect("the root stays");
        parent.2.push(HtmlNode::Tag {
            name,
            attrs,
            children,
        });
    }
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        rest = &rest[at..];
        match read_markup(rest) {
            Scan::NotTag => {
                text.push('<');
                rest = &rest[1..];
            }
            // No tag ends before the end of the input: the rest is text (and the reading
            // stays linear).
            Scan::Unterminated => break,
            Scan::Tag(markup, len) => {
                rest = &rest[len..];
                flush(&mut text, &mut stack);
                match markup {
                    Markup::Ignored => {}
                    Markup::Open { name, attrs } if VOID.contains(&name.as_str()) => {
                        let top = stack.last_mut().expect("the root stays");
                        top.2.push(HtmlNode::Tag {
                            name,
                            attrs,
                            children: Vec::new(),
                        });
                    }
                    Markup::Open { name, attrs } => {
                        if stack.len() <= MAX_DEPTH {
                            stack.push((name, attrs, Vec::new()));
                        }
                    }
                    Markup::Close(name) => {
                        if let Some(depth) = stack.iter().skip(1).rposition(|(n, _, _)| *n == name)
                        {
                            while stack.len() > depth + 1 {
                                close_top(&mut stack);
                            }
                        }
                    }
                }
            }
        }
    }
    text.push_str(rest);
    flush(&mut text, &mut stack);
    while stack.len() > 1 {
        close_top(&mut stack);
    }
    stack.pop().map(|root| root.2).unwrap_or_default()
}

enum Scan {
    Tag(Markup, usize),
    /// The `<` starts no tag: it is text.
    NotTag,
    /// A tag starts but the input ends before it does.
    Unterminated,
}

enum Markup {
    Open {
        name: String,
        attrs: Vec<(String, String)>,
    },
    Close(String),
    /// A comment, doctype or processing instruction.
    Ignored,
}

/// The markup at the start of `s` (which starts with `<`) and its length.
fn read_markup(s: &str) -> Scan {
    if let Some(comment) = s.strip_prefix("<!--") {
        let len = comment.find("-->").map_or(s.len(), |end| 4 + end + 3);
        return Scan::Tag(Markup::Ignored, len);
    }
    if s.starts_with("<!") || s.starts_with("<?") {
        return Scan::Tag(Markup::Ignored, s.find('>').map_or(s.len(), |end| end + 1));
    }
    let (closing, after) = match s.strip_prefix("</") {
        Some(after) => (true, after),
        None => (false, &s[1..]),
    };
    let name_len = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(after.len());
    if name_len == 0 || !after.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Scan::NotTag;
    }
    let name = after[..name_len].to_ascii_lowercase();
    let mut rest = &after[name_len..];
    let mut attrs = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if let Some(after_gt) = rest.strip_prefix('>') {
            let len = s.len() - after_gt.len();
            let markup = if closing {
                Markup::Close(name)
            } else {
                Markup::Open { name, attrs }
            };
            return Scan::Tag(markup, len);
        }
        if rest.is_empty() {
            return Scan::Unterminated;
        }
        let attr_len = rest
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
            .unwrap_or(rest.len());
        let attr = rest[..attr_len].to_ascii_lowercase();
        rest = rest[attr_len..].trim_start();
        let mut value = String::new();
        if let Some(after_eq) = rest.strip_prefix('=') {
            let after_eq = after_eq.trim_start();
            match after_eq.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &after_eq[1..];
                    let Some(end) = inner.find(quote) else {
                        return Scan::Unterminated;
                    };
                    value = decode_entities(&inner[..end]);
                    rest = &inner[end + 1..];
                }
                _ => {
                    let end = after_eq
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(after_eq.len());
                    value = decode_entities(&after_eq[..end]);
                    rest = &after_eq[end..];
                }
            }
        }
        if !attr.is_empty() {
            attrs.push((attr, value));
        } else if !rest.is_empty() {
            // A stray character (of any width: found by fuzzing): skip it.
            rest = &rest[rest.chars().next().map_or(0, char::len_utf8)..];
        }
    }
}

/// Decodes the entities the networks and Matrix clients write; an unknown one stays.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // Entities are short: look for the `;` a few bytes ahead only.
        let end = rest.bytes().take(12).position(|b| b == b';');
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{A0}'),
                _ => {
                    let code =
                        if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                            u32::from_str_radix(hex, 16).ok()
                        } else if let Some(dec) = name.strip_prefix('#') {
                            dec.parse().ok()
                        } else {
                            None
                        };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The colour a core tag asks for, as `#rrggbb`.
fn tag_color(name: &str, attrs: &[(String, String)]) -> Option<String> {
    let candidate = match name {
        "font" => attr(attrs, "color").or(attr(attrs, "data-mx-color")),
        "span" => attr(attrs, "data-mx-color").or_else(|| {
            css_declarations(attr(attrs, "style")?)
                .find(|(p, _)| p == "color")
                .map(|(_, v)| v)
        }),
        _ => None,
    }?;
    css_color(candidate)
}

fn xhtml(name: &str) -> Element {
    Element::builder(name, ns::XHTML).build()
}

fn styled_span(style: &str) -> Element {
    Element::builder("span", ns::XHTML)
        .attr(
            xmpp_parsers::minidom::rxml::xml_ncname!("style").into(),
            style,
        )
        .build()
}

/// Appends `node` converted to XHTML-IM to `parent`; sets `formatted` when an element
/// was produced.
fn append_converted(parent: &mut Element, node: HtmlNode, formatted: &mut bool) {
    let (name, attrs, children) = match node {
        HtmlNode::Text(text) => {
            parent.append_text(xml_text(&text).into_owned());
            return;
        }
        HtmlNode::Tag {
            name,
            attrs,
            children,
        } => (name, attrs, children),
    };
    let element = match name.as_str() {
        "b" | "strong" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => Some(xhtml("strong")),
        "i" | "em" | "cite" => Some(xhtml("em")),
        "u" | "ins" => Some(styled_span("text-decoration: underline")),
        "s" | "strike" | "del" => Some(styled_span("text-decoration: line-through")),
        "code" | "pre" => Some(styled_span("font-family: monospace")),
        "font" | "span" => tag_color(&name, &attrs).map(|c| styled_span(&format!("color: {c}"))),
        "a" => attr(&attrs, "href")
            .filter(|h| is_safe_link(h))
            .map(|href| {
                Element::builder("a", ns::XHTML)
                    .attr(
                        xmpp_parsers::minidom::rxml::xml_ncname!("href").into(),
                        xml_text(href).into_owned(),
                    )
                    .build()
            }),
        "br" | "p" | "blockquote" | "ul" | "ol" | "li" => Some(xhtml(&name)),
        "img" => {
            if let Some(alt) = attr(&attrs, "alt") {
                parent.append_text(xml_text(alt).into_owned());
            }
            return;
        }
        // A Matrix reply's quoted fallback is not part of the message.
        "mx-reply" | "script" | "style" | "head" | "title" => return,
        _ => None,
    };
    match element {
        Some(mut element) => {
            for child in children {
                append_converted(&mut element, child, formatted);
            }
            *formatted = true;
            parent.append_child(element);
        }
        None => {
            for child in children {
                append_converted(parent, child, formatted);
            }
        }
    }
}

// ---- CSS -------------------------------------------------------------------------------

/// `property: value` pairs of a `style` attribute, properties lower-cased.
fn css_declarations(style: &str) -> impl Iterator<Item = (String, &str)> {
    style.split(';').filter_map(|declaration| {
        let (property, value) = declaration.split_once(':')?;
        Some((property.trim().to_ascii_lowercase(), value.trim()))
    })
}

/// A CSS colour as `#rrggbb`: `#rgb`, `#rrggbb`, `rgb(r, g, b)` or a basic name.
fn css_color(value: &str) -> Option<String> {
    let value = value.trim().to_ascii_lowercase();
    if let Some(hex) = value.strip_prefix('#') {
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return match hex.len() {
            6 => Some(format!("#{hex}")),
            3 => Some(hex.chars().fold(String::from("#"), |mut s, c| {
                s.push(c);
                s.push(c);
                s
            })),
            _ => None,
        };
    }
    if let Some(args) = value.strip_prefix("rgb(").and_then(|v| v.strip_suffix(')')) {
        let parts: Vec<u8> = args
            .split(',')
            .map(|p| p.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .ok()?;
        let [r, g, b] = parts[..] else { return None };
        return Some(format!("#{r:02x}{g:02x}{b:02x}"));
    }
    let hex = match value.as_str() {
        "black" => "000000",
        "silver" => "c0c0c0",
        "gray" | "grey" => "808080",
        "white" => "ffffff",
        "maroon" => "800000",
        "red" => "ff0000",
        "purple" => "800080",
        "fuchsia" | "magenta" => "ff00ff",
        "green" => "008000",
        "lime" => "00ff00",
        "olive" => "808000",
        "yellow" => "ffff00",
        "navy" => "000080",
        "blue" => "0000ff",
        "teal" => "008080",
        "aqua" | "cyan" => "00ffff",
        "orange" => "ffa500",
        _ => return None,
    };
    Some(format!("#{hex}"))
}

// ---- XHTML-IM -> core HTML -------------------------------------------------------------

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// The core tags a `style` attribute stands for: (opening, closing).
fn style_tags(style: Option<&str>) -> (String, String) {
    let mut open = String::new();
    let mut close = String::new();
    let Some(style) = style else {
        return (open, close);
    };
    let mut wrap = |o: String, c: &str| {
        open.push_str(&o);
        close.insert_str(0, c);
    };
    for (property, value) in css_declarations(style) {
        let value = value.to_ascii_lowercase();
        match property.as_str() {
            "font-weight"
                if value == "bold"
                    || value == "bolder"
                    || value.parse::<u16>().is_ok_and(|w| w >= 600) =>
            {
                wrap("<strong>".into(), "</strong>")
            }
            "font-style" if value == "italic" || value == "oblique" => wrap("<em>".into(), "</em>"),
            "text-decoration" | "text-decoration-line" => {
                if value.contains("underline") {
                    wrap("<u>".into(), "</u>");
                }
                if value.contains("line-through") {
                    wrap("<del>".into(), "</del>");
                }
            }
            "color" => {
                if let Some(color) = css_color(&value) {
                    wrap(format!("<font color=\"{color}\">"), "</font>");
                }
            }
            _ => {}
        }
    }
    (open, close)
}

fn write_children(element: &Element, out: &mut String, formatted: &mut bool, depth: usize) {
    for node in element.nodes() {
        match node {
            Node::Text(text) => escape(text, out),
            Node::Element(child) => write_element(child, out, formatted, depth + 1),
        }
    }
}

fn write_element(element: &Element, out: &mut String, formatted: &mut bool, depth: usize) {
    if depth > MAX_DEPTH {
        write_text_only(element, out);
        return;
    }
    let name = element.name();
    let (tag_open, tag_close): (String, &str) = match name {
        "strong" | "b" => ("<strong>".into(), "</strong>"),
        "em" | "i" | "cite" => ("<em>".into(), "</em>"),
        "u" => ("<u>".into(), "</u>"),
        "s" | "del" | "strike" => ("<del>".into(), "</del>"),
        "br" => {
            *formatted = true;
            out.push_str("<br>");
            return;
        }
        "p" => ("<p>".into(), "</p>"),
        "blockquote" => ("<blockquote>".into(), "</blockquote>"),
        "ul" => ("<ul>".into(), "</ul>"),
        "ol" => ("<ol>".into(), "</ol>"),
        "li" => ("<li>".into(), "</li>"),
        "a" => match element.attr("href").filter(|h| is_safe_link(h)) {
            Some(href) => {
                let mut open = String::from("<a href=\"");
                escape(href, &mut open);
                open.push_str("\">");
                (open, "</a>")
            }
            None => (String::new(), ""),
        },
        "img" => {
            match (element.attr("alt"), element.attr("src")) {
                (Some(alt), _) => escape(alt, out),
                (None, Some(src)) if is_safe_link(src) => {
                    *formatted = true;
                    out.push_str("<a href=\"");
                    escape(src, out);
                    out.push_str("\">");
                    escape(src, out);
                    out.push_str("</a>");
                }
                _ => {}
            }
            return;
        }
        _ => (String::new(), ""),
    };
    let (style_open, style_close) = style_tags(element.attr("style"));
    if !tag_open.is_empty() || !style_open.is_empty() {
        *formatted = true;
    }
    out.push_str(&tag_open);
    out.push_str(&style_open);
    write_children(element, out, formatted, depth);
    out.push_str(&style_close);
    out.push_str(tag_close);
}

/// The text of `element` and its descendants, in document order, without recursion.
fn write_text_only(element: &Element, out: &mut String) {
    let mut iters: Vec<Box<dyn Iterator<Item = &Node> + '_>> = vec![Box::new(element.nodes())];
    while let Some(iter) = iters.last_mut() {
        match iter.next() {
            Some(Node::Text(text)) => escape(text, out),
            Some(Node::Element(child)) => iters.push(Box::new(child.nodes())),
            None => {
                iters.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::{assert_xml, element};

    fn im(body: &str) -> String {
        format!(
            "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>{body}</body></html>"
        )
    }

    /// A stray non-ASCII character among a tag's attributes is skipped, not cut in half.
    #[test]
    fn a_stray_wide_character_in_a_tag_is_skipped() {
        let html = "<s='color: red; x: y'\u{28d}8/!-- ci`g alt='[p>x</s>";
        let _ = to_xhtml_im(html, None);
        let _ = to_xhtml_im("<b \u{1f600}>x</b>", None);
    }

    #[test]
    fn msn_formatting_becomes_xhtml_im() {
        // What the MSN network module produces for a red, bold, italic message.
        let html = "<font color=\"#ff0000\"><b><i>a&lt;b &amp; c<br>d</i></b></font>";
        assert_xml(
            to_xhtml_im(html, None).unwrap(),
            &im("<span style='color: #ff0000'><strong><em>a&lt;b &amp; c<br/>d</em></strong></span>"),
        );
        let html = "<u><del>x</del></u>";
        assert_xml(
            to_xhtml_im(html, None).unwrap(),
            &im("<span style='text-decoration: underline'><span style='text-decoration: line-through'>x</span></span>"),
        );
    }

    #[test]
    fn icq_links_and_emotes() {
        let html =
            "see &lt;this&gt; <a href=\"http://x.org/?a=1&amp;b=2\">http://x.org/?a=1&amp;b=2</a>";
        assert_xml(
            to_xhtml_im(html, Some("/me ")).unwrap(),
            &im("/me see &lt;this&gt; <a href='http://x.org/?a=1&amp;b=2'>http://x.org/?a=1&amp;b=2</a>"),
        );
        // A link a client should not open keeps its text only.
        assert_eq!(
            to_xhtml_im("<a href='javascript:alert(1)'>x</a>", None),
            None
        );
    }

    #[test]
    fn matrix_flavoured_html() {
        assert_xml(
            to_xhtml_im("<span data-mx-color='#0f0'>g</span><s>s</s><strike>t</strike> <span style='color: red; x: y'>r</span>", None).unwrap(),
            &im("<span style='color: #00ff00'>g</span><span style='text-decoration: line-through'>s</span><span style='text-decoration: line-through'>t</span> <span style='color: #ff0000'>r</span>"),
        );
        assert_xml(
            to_xhtml_im("<mx-reply><blockquote>old</blockquote></mx-reply><p>new&nbsp;<code>x</code></p><!-- c --><img alt='[pic]' src='mxc://x'>", None).unwrap(),
            &im("<p>new\u{A0}<span style='font-family: monospace'>x</span></p>[pic]"),
        );
        // Only colours reach a style attribute.
        assert_eq!(
            to_xhtml_im("<font color='red;background:url(x)'>x</font>", None),
            None
        );
    }

    #[test]
    fn plain_or_broken_html_is_plain() {
        assert_eq!(to_xhtml_im("just text &amp; more", None), None);
        assert_eq!(to_xhtml_im("<unknown>x</unknown>", None), None);
        // Broken HTML never fails: unclosed tags close at the end, stray ones are text.
        assert_xml(
            to_xhtml_im("a < b <b>bold <i>both</b> after</i> <b", None).unwrap(),
            &im("a &lt; b <strong>bold <em>both</em></strong> after &lt;b"),
        );
        assert_xml(
            to_xhtml_im("<b>x", None).unwrap(),
            &im("<strong>x</strong>"),
        );
        // Control characters from a network cannot break the stanza.
        let produced = to_xhtml_im("<b>\u{1}</b>", None).unwrap();
        assert_eq!(String::from(&produced).matches('\u{FFFD}').count(), 1);
        // Deep nesting is capped.
        let deep = "<b>".repeat(10_000) + "x";
        let produced = to_xhtml_im(&deep, None).unwrap();
        assert!(String::from(&produced).contains('x'));
        // Unterminated tags and entities stay cheap, whatever their number.
        let hostile = format!("{}{}", "<a x ".repeat(50_000), "&amp".repeat(50_000));
        let started = std::time::Instant::now();
        assert_eq!(to_xhtml_im(&hostile, None), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        for html in [
            "<",
            "<a",
            "<a href='",
            "&#xffffffff;",
            "&#55296;",
            "</>",
            "<1>",
            "<b/>x",
            "<!--",
            "<a =x>y</a>",
        ] {
            let _ = to_xhtml_im(html, None);
        }
    }

    #[test]
    fn xhtml_im_becomes_core_html() {
        // XEP-0071 example 1's body.
        let html = element(&im(
            "<p style='font-weight:bold'>hi!</p><p style='font-size:large'><em>Ay</em> me, <span style='color:#A00'>sad</span> <a href='http://x.org/a?b&amp;c'>link</a></p>",
        ));
        assert_eq!(
            from_xhtml_im(&html).as_deref(),
            Some("<p><strong>hi!</strong></p><p><em>Ay</em> me, <font color=\"#aa0000\">sad</font> <a href=\"http://x.org/a?b&amp;c\">link</a></p>")
        );
        let html = element(&im(
            "<span style='text-decoration: underline line-through'>x</span><br/><strong>&lt;y&gt;</strong><img alt='pic' src='http://p'/>",
        ));
        assert_eq!(
            from_xhtml_im(&html).as_deref(),
            Some("<u><del>x</del></u><br><strong>&lt;y&gt;</strong>pic")
        );
        let html = element(&im(
            "<a href='javascript:x'>t</a> <span style='color: expression(x)'>u</span>",
        ));
        assert_eq!(from_xhtml_im(&html), None);
        assert_eq!(from_xhtml_im(&element(&im("just text"))), None);
        let styled = element(
            "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml' style='color: blue'>x</body></html>",
        );
        assert_eq!(
            from_xhtml_im(&styled).as_deref(),
            Some("<font color=\"#0000ff\">x</font>")
        );
        assert_eq!(from_xhtml_im(&element("<html xmlns='urn:other'/>")), None);
    }

    #[test]
    fn round_trip_keeps_what_the_networks_read() {
        for html in [
            "<font color=\"#ff0000\"><strong><em>a&lt;b &amp; c<br>d</em></strong></font>",
            "<u><del>x</del></u>",
            "see <a href=\"http://x.org/?a=1&amp;b=2\">link</a>",
        ] {
            let im = to_xhtml_im(html, None).unwrap();
            assert_eq!(from_xhtml_im(&im).as_deref(), Some(html));
        }
    }

    #[test]
    fn deep_xhtml_is_converted_on_a_small_stack() {
        let depth = 20_000;
        let xml = im(&format!(
            "{}<b>x</b>{}",
            "<span>".repeat(depth),
            "</span>".repeat(depth)
        ));
        // minidom parses and drops recursively: both happen on a big stack here; the
        // conversion runs on a small one, which only bounded recursion survives.
        let big = |f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .stack_size(256 << 20)
                .spawn(f)
                .unwrap()
                .join()
                .unwrap()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        big(Box::new(move || tx.send(element(&xml)).unwrap()));
        let html = rx.recv().unwrap();
        let (html, out) = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let out = from_xhtml_im(&html);
                (html, out)
            })
            .unwrap()
            .join()
            .unwrap();
        // Past the cap only text is kept.
        assert_eq!(out, None);
        big(Box::new(move || drop(html)));
    }
}
