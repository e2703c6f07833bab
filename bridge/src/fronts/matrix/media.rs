//! Links to Matrix media for legacy contacts.
//!
//! The legacy networks cannot carry files, and a homeserver serves media only to its own
//! users (authenticated media), so a file sent from Matrix reaches a legacy contact as a
//! link to the bridge: `<public base>/_retrobridge/media/<server>/<media id>/<name>?sig=…`.
//! The signature (HMAC-SHA256 under a key kept in the database) makes each link a
//! capability for that one file: the bridge fetches it from the homeserver with its own
//! token and streams it back, and refuses links it did not sign.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Makes and checks media links; serves them.
#[derive(Clone)]
pub struct MediaLinks {
    key: Vec<u8>,
    /// Where legacy contacts reach the bridge, without a trailing slash.
    public_base: String,
    homeserver: String,
    as_token: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
pub struct Signature {
    sig: String,
}

impl MediaLinks {
    pub fn new(key: Vec<u8>, public_base: &str, homeserver: &str, as_token: &str) -> Self {
        MediaLinks {
            key,
            public_base: public_base.trim_end_matches('/').to_owned(),
            homeserver: homeserver.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    fn sign(&self, server: &str, media_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(server.as_bytes());
        mac.update(b"/");
        mac.update(media_id.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn verify(&self, server: &str, media_id: &str, sig: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.sign(server, media_id).as_bytes().ct_eq(sig.as_bytes()))
    }

    /// The public link to an `mxc://server/id` file, or `None` for another URL.
    pub fn link(&self, mxc: &str, filename: &str) -> Option<String> {
        let (server, media_id) = mxc.strip_prefix("mxc://")?.split_once('/')?;
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:[]".contains(c))
        };
        if !valid(server) || !valid(media_id) {
            return None;
        }
        let name: String = filename
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = if name.trim_matches('_').is_empty() {
            "file".to_owned()
        } else {
            name
        };
        Some(format!(
            "{}/_retrobridge/media/{server}/{media_id}/{name}?sig={}",
            self.public_base,
            self.sign(server, media_id)
        ))
    }

    /// `GET /_retrobridge/media/{server}/{media_id}/{name}?sig=…`
    pub async fn serve(
        State(links): State<MediaLinks>,
        Path((server, media_id, name)): Path<(String, String, String)>,
        Query(q): Query<Signature>,
    ) -> Response {
        if !links.verify(&server, &media_id, &q.sig) {
            return (StatusCode::FORBIDDEN, "This link is not valid.").into_response();
        }
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
            .unwrap_or("application/octet-stream")
            .to_owned();
        let mut response = Body::from_stream(upstream.bytes_stream()).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = content_type.parse() {
            headers.insert(header::CONTENT_TYPE, v);
        }
        if let Ok(v) = format!("inline; filename=\"{name}\"").parse() {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::MediaLinks;

    #[test]
    fn links_are_signed_per_file() {
        let links = MediaLinks::new(vec![7; 32], "http://bridge.example/", "http://hs", "t");
        let link = links
            .link("mxc://example.org/AbC123", "my report.pdf")
            .expect("a link");
        assert!(
            link.starts_with(
                "http://bridge.example/_retrobridge/media/example.org/AbC123/my_report.pdf?sig="
            ),
            "{link}"
        );
        let sig = link.rsplit_once("sig=").unwrap().1;
        assert!(links.verify("example.org", "AbC123", sig));
        assert!(!links.verify("example.org", "Other", sig), "one file only");
        let other_key = MediaLinks::new(vec![8; 32], "http://b", "http://hs", "t");
        assert!(!other_key.verify("example.org", "AbC123", sig));
        assert_eq!(links.link("https://example.org/x", "x"), None);
        assert_eq!(links.link("mxc://example.org/../../x", "x"), None);
    }
}
