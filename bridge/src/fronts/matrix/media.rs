//! Links to Matrix media for legacy contacts.
//!
//! The legacy networks cannot carry files, and a homeserver serves media only to its own
//! users (authenticated media), so a file sent from Matrix reaches a legacy contact as a
//! link to the bridge:
//! `<public base>/_retrobridge/media/<server>/<media id>/<name>?exp=<unix time>&sig=<hex>`.
//!
//! * The signature (HMAC-SHA256 under a key kept sealed in the database) covers the
//!   server, the media id, the name and the expiry: a link is a capability for that one
//!   file, under that name, until then (`appservice.media_link_lifetime_seconds`, 7 days
//!   by default). A changed link is refused (403), an expired one gets 410.
//! * Only `mxc://` URIs whose server name and media id follow the spec's grammar get a
//!   link: the bridge fetches `/_matrix/client/v1/media/download/<server>/<media id>`
//!   with its own token, and nothing else may end up in that path (`mxc://../config`
//!   would reach the media config endpoint).
//! * Files are served as a homeserver serves them: as downloads (`Content-Disposition:
//!   attachment`) unless their type is one of a few inert ones (images other than SVG,
//!   audio, video, plain text), always sandboxed by a CSP and with `nosniff`, so an
//!   uploaded HTML or SVG file never runs as a page of the bridge's origin. The name
//!   goes to the browser per RFC 6266: an ASCII `filename` and the exact `filename*`.
//!
//! [`MediaLinks::check`] reads and verifies a link without I/O (the fuzz target
//! `fuzz/fuzz_targets/media_link.rs` feeds it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

/// Where the links live on the appservice listener.
pub const PREFIX: &str = "/_retrobridge/media/";

/// How long a link works unless the config says otherwise.
pub const DEFAULT_LIFETIME: Duration =
    Duration::from_secs(crate::config::DEFAULT_MEDIA_LINK_LIFETIME_SECS);

/// A link keeps this many bytes of a file's name (a file system's usual limit).
const MAX_NAME_BYTES: usize = 255;

/// What stays as it is in a link's name and in `filename*`: RFC 3986's unreserved
/// characters (all of them RFC 5987 attr-chars too).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The types a browser may show in place (Synapse's `INLINE_CONTENT_TYPES`, of its text
/// types only text/plain). SVG is not among them: it is a document that runs scripts.
const INLINE_TYPES: &[&str] = &[
    "text/plain",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// Sent with every file: no scripts, no requests, an origin of its own. Inline styles
/// and same-origin media let browsers show an image, audio or video file (Synapse sends
/// the same for its media).
const CONTENT_SECURITY_POLICY: &str =
    "sandbox; default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; media-src 'self'";

/// Makes and checks media links; serves them.
#[derive(Clone)]
pub struct MediaLinks {
    key: Vec<u8>,
    /// Where legacy contacts reach the bridge, without a trailing slash.
    public_base: String,
    lifetime: Duration,
    homeserver: String,
    as_token: String,
    http: reqwest::Client,
}

/// A link the bridge made, as [`MediaLinks::check`] read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLink {
    pub server: String,
    pub media_id: String,
    pub name: String,
    /// Unix time (seconds) from which the link no longer works.
    pub expires: u64,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not the form of a link the bridge makes.
    Malformed,
    /// The signature does not match: a link the bridge did not make, or one changed.
    Forged,
    /// A link the bridge made, expired at this Unix time.
    Expired(u64),
}

impl MediaLinks {
    pub fn new(
        key: Vec<u8>,
        public_base: &str,
        homeserver: &str,
        as_token: &str,
        lifetime: Duration,
    ) -> Self {
        MediaLinks {
            key,
            public_base: public_base.trim_end_matches('/').to_owned(),
            lifetime,
            homeserver: homeserver.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The public link to an `mxc://server/id` file, good for the configured lifetime;
    /// `None` for another URL or one outside the spec's grammar.
    pub fn link(&self, mxc: &str, filename: &str) -> Option<String> {
        let expires = unix_now().saturating_add(self.lifetime.as_secs());
        let path = Self::path(&self.key, mxc, filename, expires)?;
        Some(format!("{}{path}", self.public_base))
    }

    /// The path and query of a link to `mxc` under `filename`, good until `expires` (Unix
    /// seconds), signed with `key`; `None` for another URL or one outside the grammar.
    pub fn path(key: &[u8], mxc: &str, filename: &str, expires: u64) -> Option<String> {
        let (server, media_id) = mxc.strip_prefix("mxc://")?.split_once('/')?;
        if !is_server_name(server) || !is_media_id(media_id) {
            return None;
        }
        let name = link_name(filename);
        let sig = hex(&signature(key, server, media_id, name, expires));
        Some(format!(
            "{PREFIX}{server}/{media_id}/{}?exp={expires}&sig={sig}",
            utf8_percent_encode(name, UNRESERVED)
        ))
    }

    /// Reads a link's path and query as the listener receives them and verifies its
    /// signature with `key`, then its expiry against `now` (Unix seconds).
    pub fn check(key: &[u8], path_and_query: &str, now: u64) -> Result<MediaLink, LinkError> {
        use subtle::ConstantTimeEq;
        let malformed = |_| LinkError::Malformed;
        let (path, query) = path_and_query.split_once('?').ok_or(LinkError::Malformed)?;
        let mut parts = path
            .strip_prefix(PREFIX)
            .ok_or(LinkError::Malformed)?
            .split('/');
        let (Some(server), Some(media_id), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        // Decoded before the grammar is checked: `%2e%2e` is `..` to the homeserver too.
        let server = percent_decode_str(server)
            .decode_utf8()
            .map_err(malformed)?;
        let media_id = percent_decode_str(media_id)
            .decode_utf8()
            .map_err(malformed)?;
        let name = percent_decode_str(name).decode_utf8().map_err(malformed)?;
        if !is_server_name(&server) || !is_media_id(&media_id) {
            return Err(LinkError::Malformed);
        }
        let (exp, sig) = query.split_once('&').ok_or(LinkError::Malformed)?;
        let exp = exp.strip_prefix("exp=").ok_or(LinkError::Malformed)?;
        // Only the form the bridge writes: `exp=+7` or `exp=07` is not another way to say 7.
        let expires = exp
            .parse::<u64>()
            .ok()
            .filter(|e| e.to_string() == exp)
            .ok_or(LinkError::Malformed)?;
        let sig = sig.strip_prefix("sig=").ok_or(LinkError::Malformed)?;
        let expected = hex(&signature(key, &server, &media_id, &name, expires));
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return Err(LinkError::Forged);
        }
        if now >= expires {
            return Err(LinkError::Expired(expires));
        }
        Ok(MediaLink {
            server: server.into_owned(),
            media_id: media_id.into_owned(),
            name: name.into_owned(),
            expires,
        })
    }

    /// `GET /_retrobridge/media/{server}/{media_id}/{name}?exp=…&sig=…`
    pub async fn serve(State(links): State<MediaLinks>, uri: Uri) -> Response {
        let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
        let link = match Self::check(&links.key, path_and_query, unix_now()) {
            Ok(link) => link,
            Err(LinkError::Expired(at)) => {
                let when = chrono::DateTime::from_timestamp(i64::try_from(at).unwrap_or(0), 0)
                    .map(|t| format!(" on {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default();
                return (
                    StatusCode::GONE,
                    format!("This link expired{when}: ask the sender to send the file again."),
                )
                    .into_response();
            }
            Err(e) => {
                tracing::debug!(path = uri.path(), "media link refused: {e:?}");
                return (StatusCode::FORBIDDEN, "This link is not valid.").into_response();
            }
        };
        let (server, media_id) = (&link.server, &link.media_id);
        let url = format!(
            "{}/_matrix/client/v1/media/download/{server}/{media_id}",
            links.homeserver
        );
        let upstream = match links
            .http
            .get(&url)
            .bearer_auth(&links.as_token)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%server, %media_id, "media download failed: {e}");
                return (StatusCode::BAD_GATEWAY, "The homeserver did not answer.").into_response();
            }
        };
        let status = upstream.status();
        if !status.is_success() {
            tracing::info!(%server, %media_id, %status, "media download refused");
            let code = if status == reqwest::StatusCode::NOT_FOUND {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_GATEWAY
            };
            return (code, "The file is not available.").into_response();
        }
        let (content_type, inline) = served_type(
            upstream
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let mut response = Body::from_stream(upstream.bytes_stream()).into_response();
        let headers = response.headers_mut();
        // Both values are made of visible ASCII only; the fallbacks are never used.
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&content_disposition(inline, &link.name))
                .unwrap_or(HeaderValue::from_static("attachment")),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// HMAC-SHA256 over the four parts, each after its length: no two different links
/// sign the same bytes.
fn signature(key: &[u8], server: &str, media_id: &str, name: &str, expires: u64) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"retrobridge media link v2\0");
    for part in [server, media_id, name] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.update(&expires.to_be_bytes());
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spec's server name: a DNS name, an IPv4 address or a bracketed IPv6 address, with
/// an optional port. A DNS name's labels must not be empty (the spec's grammar alone
/// lets `..` through).
pub fn is_server_name(s: &str) -> bool {
    let (host, port) = match s.rfind(':') {
        Some(i) if !s[..i].contains(':') || s[..i].ends_with(']') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    if let Some(port) = port {
        let digits = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u16>().is_err() {
            return false;
        }
    }
    if let Some(ip) = host.strip_prefix('[') {
        return ip
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    (1..=255).contains(&host.len())
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A media id as the spec's `mxc://` URIs have them: `[A-Za-z0-9_-]+`.
pub fn is_media_id(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The name a link carries: the file's own, cut at [`MAX_NAME_BYTES`]; "file" for a name
/// that would not stay a path segment (empty, and `.` and `..`, which URLs resolve away).
fn link_name(filename: &str) -> &str {
    let mut end = filename.len().min(MAX_NAME_BYTES);
    while !filename.is_char_boundary(end) {
        end -= 1;
    }
    match &filename[..end] {
        "" | "." | ".." => "file",
        name => name,
    }
}

/// The `Content-Type` to send and whether the browser may show the file in place. Only
/// types on the list are shown, and as the list writes them (text in a known charset);
/// anything else is a download, typed by the upstream's `type/subtype` when it is one.
fn served_type(upstream: Option<&str>) -> (String, bool) {
    let upstream = upstream.unwrap_or_default();
    let (essence, params) = upstream.split_once(';').unwrap_or((upstream, ""));
    let essence = essence.trim().to_ascii_lowercase();
    if let Some(&inline) = INLINE_TYPES.iter().find(|t| **t == essence) {
        return match inline {
            "text/plain" => (
                format!("text/plain; charset={}", text_charset(params)),
                true,
            ),
            other => (other.to_owned(), true),
        };
    }
    let token = |s: &str| {
        (1..=127).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => (essence, false),
        _ => ("application/octet-stream".to_owned(), false),
    }
}

/// The charset of a text file shown in place: the upstream's when it is a common one,
/// UTF-8 otherwise (what Matrix clients upload; and no label such as UTF-7 that old
/// browsers decode into markup).
fn text_charset(params: &str) -> String {
    let known = |c: &str| {
        matches!(
            c,
            "utf-8"
                | "us-ascii"
                | "utf-16"
                | "utf-16le"
                | "utf-16be"
                | "koi8-r"
                | "shift_jis"
                | "euc-jp"
                | "euc-kr"
                | "gb2312"
                | "gbk"
                | "gb18030"
                | "big5"
        ) || c
            .strip_prefix("iso-8859-")
            .is_some_and(|n| matches!(n.parse::<u8>(), Ok(1..=16)) && n.len() <= 2)
            || c.strip_prefix("windows-125")
                .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
    };
    params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|c| known(c))
        .unwrap_or_else(|| "utf-8".to_owned())
}

/// RFC 6266: `filename` in quotes with what old browsers may misread replaced (quotes,
/// backslashes, `%`, `;`, `/`, controls, non-ASCII), and the exact name in `filename*`.
fn content_disposition(inline: bool, name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if !"\"\\%;/".contains(c) => c,
            _ => '_',
        })
        .collect();
    format!(
        "{}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        utf8_percent_encode(name, UNRESERVED)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const NOW: u64 = 1_700_000_000;

    fn path(mxc: &str, name: &str) -> String {
        MediaLinks::path(&KEY, mxc, name, NOW + 60).expect("a link")
    }

    #[test]
    fn links_are_signed_per_file() {
        let links = MediaLinks::new(
            vec![7; 32],
            "http://bridge.example/",
            "http://hs",
            "t",
            DEFAULT_LIFETIME,
        );
        let link = links
            .link("mxc://example.org/AbC123", "my report.pdf")
            .expect("a link");
        let prefix =
            "http://bridge.example/_retrobridge/media/example.org/AbC123/my%20report.pdf?exp=";
        assert!(link.starts_with(prefix), "{link}");
        let (exp, sig) = link[prefix.len()..].split_once("&sig=").unwrap();
        let exp: u64 = exp.parse().unwrap();
        let lifetime = exp - unix_now();
        assert!((DEFAULT_LIFETIME.as_secs() - 5..=DEFAULT_LIFETIME.as_secs()).contains(&lifetime));
        assert_eq!(sig.len(), 64, "the signature ends the link");
        let path = &link["http://bridge.example".len()..];
        let checked = MediaLinks::check(&KEY, path, unix_now()).expect("valid");
        assert_eq!(
            checked,
            MediaLink {
                server: "example.org".into(),
                media_id: "AbC123".into(),
                name: "my report.pdf".into(),
                expires: exp,
            }
        );
        assert_eq!(
            MediaLinks::check(&[8; 32], path, unix_now()),
            Err(LinkError::Forged),
            "another key"
        );
        assert_eq!(links.link("https://example.org/x", "x"), None);
        assert_eq!(links.link("mxc://example.org/../../x", "x"), None);
        assert_eq!(links.link("mxc://../config", "x"), None);
    }

    #[test]
    fn the_signature_covers_server_id_name_and_expiry() {
        let good = path("mxc://example.org/AbC123", "notes.txt");
        assert!(MediaLinks::check(&KEY, &good, NOW).is_ok());
        let changed = [
            good.replace("/example.org/", "/example.net/"),
            good.replace("/example.org/", "/example.org:8448/"),
            good.replace("/AbC123/", "/AbC124/"),
            good.replace("/notes.txt?", "/evil.exe?"),
            good.replace("/notes.txt?", "/notes.txt%22%3B%20x%3Dy?"),
            good.replace(&format!("exp={}", NOW + 60), &format!("exp={}", NOW + 61)),
            good.replace(&format!("exp={}", NOW + 60), &format!("exp={}", u64::MAX)),
        ];
        for link in changed {
            assert_ne!(link, good);
            assert_eq!(
                MediaLinks::check(&KEY, &link, NOW),
                Err(LinkError::Forged),
                "{link}"
            );
        }
        // Other spellings of the same expiry are not links the bridge made.
        for exp in [format!("0{}", NOW + 60), format!("+{}", NOW + 60)] {
            let link = good.replace(&format!("exp={}", NOW + 60), &format!("exp={exp}"));
            assert_eq!(
                MediaLinks::check(&KEY, &link, NOW),
                Err(LinkError::Malformed),
                "{link}"
            );
        }
        // A signature cut short, or with a digit changed.
        let cut = format!(
            "{}0",
            good.trim_end_matches(|c: char| c.is_ascii_hexdigit())
        );
        assert_eq!(MediaLinks::check(&KEY, &cut, NOW), Err(LinkError::Forged));
        let last = good.chars().last().unwrap();
        let flipped = format!(
            "{}{}",
            &good[..good.len() - 1],
            if last == '0' { '1' } else { '0' }
        );
        assert_eq!(
            MediaLinks::check(&KEY, &flipped, NOW),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn links_expire() {
        let link = path("mxc://example.org/AbC123", "a.png");
        assert!(MediaLinks::check(&KEY, &link, NOW + 59).is_ok());
        assert_eq!(
            MediaLinks::check(&KEY, &link, NOW + 60),
            Err(LinkError::Expired(NOW + 60))
        );
        assert_eq!(
            MediaLinks::check(&KEY, &link, u64::MAX),
            Err(LinkError::Expired(NOW + 60))
        );
        // The expiry is checked after the signature: a forged link says so.
        let forged = link.replace(&format!("exp={}", NOW + 60), &format!("exp={}", NOW + 600));
        assert_eq!(
            MediaLinks::check(&KEY, &forged, NOW + 60),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn server_names_and_media_ids_follow_the_grammar() {
        for good in [
            "example.org",
            "localhost",
            "matrix.example.org:8448",
            "1.2.3.4",
            "1.2.3.4:8448",
            "[::1]",
            "[::1]:8448",
            "[2001:db8::7]:443",
            "xn--bcher-kva.example",
        ] {
            assert!(is_server_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/",
            "a/b",
            "%2e%2e",
            "example..org",
            ".example.org",
            "example.org.",
            "exa mple.org",
            " example.org",
            "example.org:",
            "example.org:port",
            "example.org:99999",
            "example.org:+80",
            "example.org:1:2",
            "::1",
            "[::1",
            "[::1]x",
            "[not-ipv6]",
            "[::1%eth0]",
            "example.org?x",
            "example.org#x",
            "exämple.org",
            "user@example.org",
        ] {
            assert!(!is_server_name(bad), "{bad:?}");
        }
        assert!(!is_server_name(&"a".repeat(256)));
        for good in ["AbC123", "a", "abc_DEF-123"] {
            assert!(is_media_id(good), "{good}");
        }
        for bad in ["", "..", "a.b", "a/b", "%2e", "a b", "a?b", "a#b", "ä"] {
            assert!(!is_media_id(bad), "{bad:?}");
        }
        for mxc in [
            "mxc://../config",
            "mxc://localhost/../../x",
            "mxc://localhost/..",
            "mxc://localhost/a/b",
            "mxc:///abc",
            "mxc://localhost/",
            "mxc://local host/abc",
            "mxc://%2e%2e/abc",
            "mxc://localhost",
        ] {
            assert_eq!(MediaLinks::path(&KEY, mxc, "x", NOW), None, "{mxc}");
        }
        assert!(MediaLinks::path(&KEY, "mxc://[::1]:8448/abc", "x", NOW).is_some());
    }

    #[test]
    fn links_outside_the_grammar_are_malformed_even_when_signed() {
        // Signed as `..`, sent as `%2e%2e`: the grammar is checked on the decoded name.
        let exp = NOW + 60;
        let sig = hex(&signature(&KEY, "..", "config", "x", exp));
        let link = format!("{PREFIX}%2e%2e/config/x?exp={exp}&sig={sig}");
        assert_eq!(
            MediaLinks::check(&KEY, &link, NOW),
            Err(LinkError::Malformed)
        );
        let good = path("mxc://example.org/AbC123", "x");
        for bad in [
            good.replace('?', "/more?"),
            good.replace("/x?", "?"),
            good.replace("&sig=", "&x=1&sig="),
            format!("{good}&more=1"),
            good.replace("exp=", "e="),
            good.split_once('?').unwrap().0.to_owned(),
            good.replace(PREFIX, "/_retrobridge/other/"),
            good.replace("/x?", "/%ff?"),
        ] {
            assert!(MediaLinks::check(&KEY, &bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_survive_the_link() {
        for name in [
            "notes.txt",
            "my report.pdf",
            "quote\"d; name=x.txt",
            "line\r\nbreak.txt",
            "Übersicht – 2024.pdf",
            "日本語.png",
            "a/b\\c%41?#&=.txt",
            "...",
        ] {
            let link = path("mxc://example.org/AbC123", name);
            assert!(!link.contains(['\r', '\n', ' ', '"']), "{link}");
            assert_eq!(MediaLinks::check(&KEY, &link, NOW).unwrap().name, name);
        }
        for (name, kept) in [("", "file"), (".", "file"), ("..", "file")] {
            let link = path("mxc://example.org/AbC123", name);
            assert_eq!(MediaLinks::check(&KEY, &link, NOW).unwrap().name, kept);
        }
        let long = "é".repeat(200);
        let link = path("mxc://example.org/AbC123", &long);
        let kept = MediaLinks::check(&KEY, &link, NOW).unwrap().name;
        assert_eq!(kept, "é".repeat(127), "cut at a character's boundary");
    }

    #[test]
    fn content_disposition_follows_rfc_6266() {
        assert_eq!(
            content_disposition(false, "notes.txt"),
            "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"
        );
        assert_eq!(
            content_disposition(true, "my report.pdf"),
            "inline; filename=\"my report.pdf\"; filename*=UTF-8''my%20report.pdf"
        );
        assert_eq!(
            content_disposition(false, "a\"; filename=evil.exe"),
            "attachment; filename=\"a__ filename=evil.exe\"; filename*=UTF-8''a%22%3B%20filename%3Devil.exe"
        );
        assert_eq!(
            content_disposition(false, "x\r\nSet-Cookie: a=b"),
            "attachment; filename=\"x__Set-Cookie: a=b\"; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20a%3Db"
        );
        assert_eq!(
            content_disposition(false, "Übersicht.pdf"),
            "attachment; filename=\"_bersicht.pdf\"; filename*=UTF-8''%C3%9Cbersicht.pdf"
        );
        assert_eq!(
            content_disposition(false, "..\\..\\100%.txt"),
            "attachment; filename=\".._.._100_.txt\"; filename*=UTF-8''..%5C..%5C100%25.txt"
        );
        for name in ["a\"b", "a;b", "a\r\nb", "日本", "\u{0}\u{7f}"] {
            let value = content_disposition(false, name);
            assert!(HeaderValue::from_str(&value).is_ok(), "{value}");
            assert!(value.bytes().all(|b| (b' '..=b'~').contains(&b)), "{value}");
            assert_eq!(value.matches(';').count(), 2, "{value}");
        }
    }

    #[test]
    fn only_inert_types_are_shown_in_place() {
        let cases = [
            (Some("image/png"), "image/png", true),
            (Some("IMAGE/PNG; x=y"), "image/png", true),
            (Some("image/jpeg"), "image/jpeg", true),
            (Some("video/mp4"), "video/mp4", true),
            (Some("audio/ogg"), "audio/ogg", true),
            (Some("text/plain"), "text/plain; charset=utf-8", true),
            (
                Some("text/plain; charset=ISO-8859-1"),
                "text/plain; charset=iso-8859-1",
                true,
            ),
            (
                Some("text/plain;charset=\"utf-8\""),
                "text/plain; charset=utf-8",
                true,
            ),
            (
                Some("text/plain; charset=utf-7"),
                "text/plain; charset=utf-8",
                true,
            ),
            (
                Some("text/plain; charset=x\r\ny"),
                "text/plain; charset=utf-8",
                true,
            ),
            (Some("image/svg+xml"), "image/svg+xml", false),
            (Some("text/html"), "text/html", false),
            (Some("text/html; charset=utf-8"), "text/html", false),
            (
                Some("application/xhtml+xml"),
                "application/xhtml+xml",
                false,
            ),
            (Some("application/pdf"), "application/pdf", false),
            (Some("text/css"), "text/css", false),
            (Some("text/plain+html"), "text/plain+html", false),
            (
                Some("image/png,text/html"),
                "application/octet-stream",
                false,
            ),
            (Some("nonsense"), "application/octet-stream", false),
            (Some(""), "application/octet-stream", false),
            (None, "application/octet-stream", false),
        ];
        for (upstream, served, inline) in cases {
            assert_eq!(
                served_type(upstream),
                (served.to_owned(), inline),
                "{upstream:?}"
            );
        }
    }

    /// What the fuzz target checks, on a few inputs: no panic, and every link made
    /// is accepted with what it was made for.
    #[test]
    fn made_links_check_out() {
        for (mxc, name) in [
            ("mxc://example.org/AbC", "x"),
            ("mxc://[::1]:8448/AbC", "日本語\r\n.png"),
            ("mxc://1.2.3.4:80/a-b_c", ""),
        ] {
            let link = MediaLinks::path(&KEY, mxc, name, NOW + 1).unwrap();
            let checked = MediaLinks::check(&KEY, &link, NOW).unwrap();
            assert_eq!(
                format!("mxc://{}/{}", checked.server, checked.media_id),
                mxc
            );
        }
        for junk in [
            "",
            "?",
            "/_retrobridge/media/",
            "/_retrobridge/media/a/b/c?&",
            "%",
        ] {
            assert!(MediaLinks::check(&KEY, junk, NOW).is_err());
        }
    }
}
