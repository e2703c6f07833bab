//! MSNObject: the `<msnobj .../>` descriptor of a display picture or
//! emoticon, sent URL-encoded as the last parameter of `CHG`, `ILN` and
//! `NLN`, and base64-encoded as the `Context` of a picture INVITE.
//!
//! `SHA1D` is the base64 SHA-1 of the data; `SHA1C` the base64 SHA-1 of
//! `Creator<c>Size<s>Type<t>Location<l>Friendly<f>SHA1D<d>` (libpurple
//! `msn_object_new_from_image`, Kopete and Miranda compute the same).

use sha1::{Digest, Sha1};

use crate::b64;
use crate::p2p::P2pError;
use crate::urlenc::{url_decode, url_encode};

/// Longest MSNObject text accepted.
pub const MAX_MSNOBJ_LEN: usize = 4096;
/// Most attributes read.
const MAX_ATTRS: usize = 32;

pub const MSNOBJ_TYPE_EMOTICON: u32 = 2;
pub const MSNOBJ_TYPE_DISPLAY_PICTURE: u32 = 3;
/// `Friendly` of an object without a name: an empty UTF-16 string.
pub const FRIENDLY_NONE: &str = "AAA=";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsnObject {
    pub creator: String,
    pub size: u64,
    /// `Type`: 3 display picture, 2 emoticon.
    pub kind: u32,
    pub location: String,
    /// Base64 of a NUL-terminated UTF-16LE name, as on the wire.
    pub friendly: String,
    pub sha1d: String,
    pub sha1c: Option<String>,
    /// Other attributes (`Stamp`, `AvatarID`...), in order, kept verbatim.
    pub extra: Vec<(String, String)>,
}

impl MsnObject {
    /// The object of `data`, with both hashes computed.
    pub fn for_data(
        creator: &str,
        kind: u32,
        location: &str,
        name: &str,
        data: &[u8],
    ) -> MsnObject {
        let mut o = MsnObject {
            creator: creator.to_string(),
            size: data.len() as u64,
            kind,
            location: location.to_string(),
            friendly: encode_friendly(name),
            sha1d: sha1d(data),
            sha1c: None,
            extra: Vec::new(),
        };
        o.sha1c = Some(o.compute_sha1c());
        o
    }

    /// Parses `<msnobj .../>`, raw or URL-encoded (as in `NLN`). Creator,
    /// Size, Type, Location and SHA1D are required (libpurple drops objects
    /// without them); a missing Friendly reads as [`FRIENDLY_NONE`].
    pub fn parse(text: &str) -> Result<MsnObject, P2pError> {
        if text.len() > MAX_MSNOBJ_LEN {
            return Err(P2pError::BadMsnObject("too long"));
        }
        let decoded = url_decode(text.trim_ascii());
        let rest = decoded
            .strip_prefix("<msnobj")
            .ok_or(P2pError::BadMsnObject("not <msnobj"))?;
        let attrs = attributes(rest)?;
        let take = |name: &str| {
            attrs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        let need = |name: &'static str| take(name).ok_or(P2pError::BadMsnObject(name));
        let size = need("Size")?
            .parse()
            .map_err(|_| P2pError::BadMsnObject("Size"))?;
        let kind = need("Type")?
            .parse()
            .map_err(|_| P2pError::BadMsnObject("Type"))?;
        const KNOWN: [&str; 7] = [
            "Creator", "Size", "Type", "Location", "Friendly", "SHA1D", "SHA1C",
        ];
        Ok(MsnObject {
            creator: need("Creator")?,
            size,
            kind,
            location: need("Location")?,
            friendly: take("Friendly").unwrap_or_else(|| FRIENDLY_NONE.to_string()),
            sha1d: need("SHA1D")?,
            sha1c: take("SHA1C"),
            extra: attrs
                .iter()
                .filter(|(n, _)| !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(n)))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// The XML text, fields in the order clients write them.
    pub fn to_xml(&self) -> String {
        let mut s = format!(
            "<msnobj Creator=\"{}\" Size=\"{}\" Type=\"{}\" Location=\"{}\" Friendly=\"{}\" SHA1D=\"{}\"",
            self.creator, self.size, self.kind, self.location, self.friendly, self.sha1d
        );
        if let Some(c) = &self.sha1c {
            s.push_str(&format!(" SHA1C=\"{c}\""));
        }
        for (n, v) in &self.extra {
            s.push_str(&format!(" {n}=\"{v}\""));
        }
        s.push_str("/>");
        s
    }

    /// The form sent as a `CHG`/`NLN` parameter.
    pub fn to_url_encoded(&self) -> String {
        url_encode(&self.to_xml())
    }

    /// The string SHA1C hashes.
    pub fn sha1c_input(&self) -> String {
        format!(
            "Creator{}Size{}Type{}Location{}Friendly{}SHA1D{}",
            self.creator, self.size, self.kind, self.location, self.friendly, self.sha1d
        )
    }

    pub fn compute_sha1c(&self) -> String {
        b64::encode(&Sha1::digest(self.sha1c_input().as_bytes()))
    }

    /// True when SHA1C is absent (older clients) or matches the fields.
    pub fn sha1c_ok(&self) -> bool {
        self.sha1c
            .as_ref()
            .is_none_or(|c| *c == self.compute_sha1c())
    }

    /// True if `data` is what this object describes (size and SHA1D).
    pub fn matches_data(&self, data: &[u8]) -> bool {
        data.len() as u64 == self.size && sha1d(data) == self.sha1d
    }

    /// The decoded `Friendly` name, NULs dropped; `None` when not valid
    /// base64 or longer than 256 UTF-16 units.
    pub fn friendly_name(&self) -> Option<String> {
        let raw = b64::decode(&self.friendly, 512).ok()?;
        let units = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0);
        Some(
            char::decode_utf16(units)
                .map(|c| c.unwrap_or('\u{FFFD}'))
                .collect(),
        )
    }
}

/// Base64 SHA-1 of the data (the SHA1D field).
pub fn sha1d(data: &[u8]) -> String {
    b64::encode(&Sha1::digest(data))
}

/// Base64 of `name` in UTF-16LE with a terminating NUL (an empty name
/// gives `AAA=`).
pub fn encode_friendly(name: &str) -> String {
    let mut raw: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
    raw.extend_from_slice(&[0, 0]);
    b64::encode(&raw)
}

/// `Name="value"` pairs up to `/>` or `>`.
fn attributes(mut rest: &str) -> Result<Vec<(&str, &str)>, P2pError> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.starts_with("/>") || rest.starts_with('>') {
            return Ok(out);
        }
        if out.len() >= MAX_ATTRS {
            return Err(P2pError::BadMsnObject("too many attributes"));
        }
        let (name, after) = rest
            .split_once('=')
            .ok_or(P2pError::BadMsnObject("unterminated element"))?;
        let name = name.trim_end();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(P2pError::BadMsnObject("bad attribute name"));
        }
        let after = after
            .trim_start()
            .strip_prefix('"')
            .ok_or(P2pError::BadMsnObject("unquoted value"))?;
        let (value, after) = after
            .split_once('"')
            .ok_or(P2pError::BadMsnObject("unterminated value"))?;
        out.push((name, value));
        rest = after;
    }
}
