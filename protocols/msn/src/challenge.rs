//! The `CHL`/`QRY` challenge: MD5 over the challenge and a client key.

use md5::{Digest, Md5};

/// Product id sent in `QRY` (MSNP9 era, MSN Messenger 6).
pub const PRODUCT_ID: &str = "PROD0038W!61ZTF9";
/// Key paired with [`PRODUCT_ID`].
pub const PRODUCT_KEY: &str = "VT6PX?UQTM4WM%YR";
/// Older id/key pair, also accepted by servers of the time.
pub const OLD_PRODUCT_ID: &str = "msmsgs@msnmsgr.com";
pub const OLD_PRODUCT_KEY: &str = "Q1P7W2E4J9R8U3S5";

/// `md5hex(challenge + key)`: the 32-byte `QRY` payload.
pub fn challenge_response(challenge: &str, key: &str) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// The key for a product id, if known (server side of the check).
pub fn product_key(product_id: &str) -> Option<&'static str> {
    match product_id {
        PRODUCT_ID => Some(PRODUCT_KEY),
        OLD_PRODUCT_ID => Some(OLD_PRODUCT_KEY),
        _ => None,
    }
}

/// Server-side check of a `QRY` answer.
pub fn verify_response(challenge: &str, product_id: &str, answer: &[u8]) -> bool {
    product_key(product_id)
        .is_some_and(|key| challenge_response(challenge, key).as_bytes() == answer)
}
