//! Files served to browsers by the bridge, whoever asks for them: signed, expiring
//! links, and the headers that make every file an inert download or an inert picture.
//! Both fronts serve files this way: the Matrix front its links to Matrix media for
//! legacy contacts (`matrix/media.rs`), the XMPP front the files legacy contacts send
//! (XEP-0066 links to [`FileLinks`]).
//!
//! * A link is signed whole (HMAC-SHA256 under the database's media link key) with its
//!   expiry: a capability for one file under one name until then. A changed link is
//!   refused (403), an expired one gets 410.
//! * Files are served as a homeserver serves them: as downloads (`Content-Disposition:
//!   attachment`) unless their type is one of a few inert ones (images other than SVG,
//!   audio, video, plain text), always sandboxed by a CSP and with `nosniff`, so an
//!   HTML or SVG file never runs as a page of the bridge's origin. The name goes to the
//!   browser per RFC 6266: an ASCII `filename` and the exact `filename*`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

use crate::store::Store;

/// A link keeps this many bytes of a file's name (a file system's usual limit).
pub const MAX_NAME_BYTES: usize = 255;

/// Where the links to stored files live.
pub const FILE_PREFIX: &str = "/_retrobridge/file/";

/// What stays as it is in a link's name and in `filename*`: RFC 3986's unreserved
/// characters (all of them RFC 5987 attr-chars too).
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The types a browser may show in place (Synapse's `INLINE_CONTENT_TYPES`, of its text
/// types only text/plain). SVG is not among them: it is a document that runs scripts.
pub const INLINE_TYPES: &[&str] = &[
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
pub const CONTENT_SECURITY_POLICY: &str =
    "sandbox; default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; media-src 'self'";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// HMAC-SHA256 over the four parts, each after its length: no two different links
/// sign the same bytes.
pub fn signature(key: &[u8], server: &str, media_id: &str, name: &str, expires: u64) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"retrobridge media link v2\0");
    for part in [server, media_id, name] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac.update(&expires.to_be_bytes());
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name a link carries: the file's own, cut at [`MAX_NAME_BYTES`]; "file" for a name
/// that would not stay a path segment (empty, and `.` and `..`, which URLs resolve away).
pub fn link_name(filename: &str) -> &str {
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
pub fn served_type(upstream: Option<&str>) -> (String, bool) {
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
pub fn text_charset(params: &str) -> String {
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
pub fn content_disposition(inline: bool, name: &str) -> String {
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

/// Sets the headers every served file gets: its type (inline only when inert), its
/// name, the sandbox and `nosniff`.
pub fn sandbox(headers: &mut HeaderMap, content_type: Option<&str>, name: &str) {
    let (content_type, inline) = served_type(content_type);
    // Both values are made of visible ASCII only; the fallbacks are never used.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(inline, name))
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
}

/// Sends `request` and reads the answer's body, at most `max` bytes: a larger one is
/// refused without being read whole (by its `Content-Length`, or as it arrives).
pub async fn fetch_bounded(request: reqwest::RequestBuilder, max: u64) -> Result<Vec<u8>, String> {
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("the server did not answer: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the server answered {}", response.status()));
    }
    let too_big = || {
        format!(
            "it is larger than the {} the bridge takes",
            crate::model::size_text(max)
        )
    };
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_big());
    }
    let mut data = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the download broke off: {e}"))?
    {
        if (data.len() + chunk.len()) as u64 > max {
            return Err(too_big());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
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

/// The answer to a refused link.
pub fn refusal(error: LinkError, path: &str) -> Response {
    match error {
        LinkError::Expired(at) => {
            let when = chrono::DateTime::from_timestamp(i64::try_from(at).unwrap_or(0), 0)
                .map(|t| format!(" on {}", t.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            (
                StatusCode::GONE,
                format!("This link expired{when}: ask the sender to send the file again."),
            )
                .into_response()
        }
        e => {
            tracing::debug!(path, "file link refused: {e:?}");
            (StatusCode::FORBIDDEN, "This link is not valid.").into_response()
        }
    }
}

/// Checks `sig` against the expected signature in constant time, then the expiry.
pub fn verify(expected: [u8; 32], sig: &str, expires: u64, now: u64) -> Result<(), LinkError> {
    use subtle::ConstantTimeEq;
    if !bool::from(hex(&expected).as_bytes().ct_eq(sig.as_bytes())) {
        return Err(LinkError::Forged);
    }
    if now >= expires {
        return Err(LinkError::Expired(expires));
    }
    Ok(())
}

/// Reads `exp=<unix seconds>&sig=<hex>` as the bridge writes it (`exp=+7` or `exp=07`
/// is not another way to say 7).
pub fn expiry_and_signature(query: &str) -> Result<(u64, &str), LinkError> {
    let (exp, sig) = query.split_once('&').ok_or(LinkError::Malformed)?;
    let exp = exp.strip_prefix("exp=").ok_or(LinkError::Malformed)?;
    let expires = exp
        .parse::<u64>()
        .ok()
        .filter(|e| e.to_string() == exp)
        .ok_or(LinkError::Malformed)?;
    let sig = sig.strip_prefix("sig=").ok_or(LinkError::Malformed)?;
    Ok((expires, sig))
}

/// Links to the files legacy contacts sent, kept in the store
/// (`/_retrobridge/file/<id>/<name>?exp=…&sig=…`), and their serving.
#[derive(Clone)]
pub struct FileLinks {
    key: Vec<u8>,
    public_base: String,
    pub lifetime: Duration,
    store: Store,
}

impl FileLinks {
    pub fn new(key: Vec<u8>, public_base: &str, lifetime: Duration, store: Store) -> FileLinks {
        FileLinks {
            key,
            public_base: public_base.trim_end_matches('/').to_owned(),
            lifetime,
            store,
        }
    }

    /// The public link to stored file `id` under `name`, good for the lifetime.
    pub fn link(&self, id: u64, name: &str) -> String {
        let expires = unix_now().saturating_add(self.lifetime.as_secs());
        format!(
            "{}{}",
            self.public_base,
            Self::path(&self.key, id, name, expires)
        )
    }

    /// Signed like a media link whose server is empty (no media link has one), so one
    /// kind of link never passes for the other.
    fn sign(key: &[u8], id: u64, name: &str, expires: u64) -> [u8; 32] {
        signature(key, "", &format!("file:{id}"), name, expires)
    }

    pub fn path(key: &[u8], id: u64, name: &str, expires: u64) -> String {
        let name = link_name(name);
        let sig = hex(&Self::sign(key, id, name, expires));
        format!(
            "{FILE_PREFIX}{id}/{}?exp={expires}&sig={sig}",
            utf8_percent_encode(name, UNRESERVED)
        )
    }

    /// Reads and verifies a link's path and query: the file id and name.
    pub fn check(key: &[u8], path_and_query: &str, now: u64) -> Result<(u64, String), LinkError> {
        let malformed = |_| LinkError::Malformed;
        let (path, query) = path_and_query.split_once('?').ok_or(LinkError::Malformed)?;
        let rest = path.strip_prefix(FILE_PREFIX).ok_or(LinkError::Malformed)?;
        let (id, name) = rest.split_once('/').ok_or(LinkError::Malformed)?;
        let id = id
            .parse::<u64>()
            .ok()
            .filter(|n| n.to_string() == id)
            .ok_or(LinkError::Malformed)?;
        let name = percent_decode_str(name).decode_utf8().map_err(malformed)?;
        let (expires, sig) = expiry_and_signature(query)?;
        verify(Self::sign(key, id, &name, expires), sig, expires, now)?;
        Ok((id, name.into_owned()))
    }

    /// `GET /_retrobridge/file/{id}/{name}?exp=…&sig=…`
    pub async fn serve(
        axum::extract::State(links): axum::extract::State<FileLinks>,
        uri: Uri,
    ) -> Response {
        let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
        let (id, name) = match Self::check(&links.key, path_and_query, unix_now()) {
            Ok(found) => found,
            Err(e) => return refusal(e, uri.path()),
        };
        let data = match links.store.file(id) {
            Ok(Some(data)) => data,
            Ok(None) => {
                return (StatusCode::NOT_FOUND, "The file is no longer kept.").into_response()
            }
            Err(e) => {
                tracing::warn!("could not read a stored file: {e}");
                return (StatusCode::SERVICE_UNAVAILABLE, "Try again later.").into_response();
            }
        };
        let mut response = Body::from(data).into_response();
        let mime = crate::model::mime_of(&name);
        sandbox(response.headers_mut(), Some(&mime), &name);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn file_links_are_signed_per_file_name_and_expiry() {
        let path = FileLinks::path(&KEY, 42, "photo 1.png", NOW + 60);
        assert!(
            path.starts_with("/_retrobridge/file/42/photo%201.png?exp="),
            "{path}"
        );
        assert_eq!(
            FileLinks::check(&KEY, &path, NOW),
            Ok((42, "photo 1.png".into()))
        );
        let other_id = path.replacen("/42/", "/43/", 1);
        assert_eq!(
            FileLinks::check(&KEY, &other_id, NOW),
            Err(LinkError::Forged)
        );
        let other_name = path.replacen("photo%201", "photo%202", 1);
        assert_eq!(
            FileLinks::check(&KEY, &other_name, NOW),
            Err(LinkError::Forged)
        );
        assert_eq!(
            FileLinks::check(&[8; 32], &path, NOW),
            Err(LinkError::Forged)
        );
        assert_eq!(
            FileLinks::check(&KEY, &path, NOW + 60),
            Err(LinkError::Expired(NOW + 60))
        );
        for junk in [
            "",
            "?",
            FILE_PREFIX,
            "/_retrobridge/file/01/a?exp=1&sig=x",
            "/_retrobridge/file/x/a?exp=1&sig=x",
        ] {
            assert_eq!(
                FileLinks::check(&KEY, junk, NOW),
                Err(LinkError::Malformed),
                "{junk}"
            );
        }
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
}
