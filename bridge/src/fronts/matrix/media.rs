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

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::{percent_decode_str, utf8_percent_encode};

pub use crate::fronts::downloads::LinkError;
use crate::fronts::downloads::{
    expiry_and_signature, hex, link_name, refusal, sandbox, signature, unix_now, verify, UNRESERVED,
};

/// Where the links live on the appservice listener.
pub const PREFIX: &str = "/_retrobridge/media/";

/// How long a link works unless the config says otherwise.
pub const DEFAULT_LIFETIME: Duration =
    Duration::from_secs(crate::config::DEFAULT_MEDIA_LINK_LIFETIME_SECS);

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
        let (expires, sig) = expiry_and_signature(query)?;
        let expected = signature(key, &server, &media_id, &name, expires);
        verify(expected, sig, expires, now)?;
        Ok(MediaLink {
            server: server.into_owned(),
            media_id: media_id.into_owned(),
            name: name.into_owned(),
            expires,
        })
    }

    /// Downloads an `mxc://` file with the bridge's token, up to `max` bytes (a larger
    /// one is refused without reading it all); the address must follow the grammar.
    pub async fn download(&self, mxc: &str, max: u64) -> Result<Vec<u8>, String> {
        let (server, media_id) = mxc
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(s, m)| is_server_name(s) && is_media_id(m))
            .ok_or("not a valid Matrix file address")?;
        let url = format!(
            "{}/_matrix/client/v1/media/download/{server}/{media_id}",
            self.homeserver
        );
        let request = self.http.get(&url).bearer_auth(&self.as_token);
        crate::fronts::downloads::fetch_bounded(request, max).await
    }

    /// `GET /_retrobridge/media/{server}/{media_id}/{name}?exp=…&sig=…`
    pub async fn serve(State(links): State<MediaLinks>, uri: Uri) -> Response {
        let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
        let link = match Self::check(&links.key, path_and_query, unix_now()) {
            Ok(link) => link,
            Err(e) => return refusal(e, uri.path()),
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
        let content_type = upstream
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut response = Body::from_stream(upstream.bytes_stream()).into_response();
        sandbox(response.headers_mut(), content_type.as_deref(), &link.name);
        response
    }
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
