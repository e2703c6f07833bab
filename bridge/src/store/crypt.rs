//! Sealed records: XChaCha20-Poly1305 under the database key.
//!
//! A sealed value is `format (1 byte) | nonce (24 bytes) | ciphertext and tag`. The nonce
//! is random for every record (192 bits: no counter to keep, collisions out of reach).
//! The associated data names the record's place (its tree and key), so a sealed value
//! copied to another key (one user's login under another user) is refused like a
//! changed one.
//!
//! Digests of transaction bodies are keyed too ([`Cipher::keyed_digest`]): a plain
//! SHA-256 of a body holding a `login` command would let whoever reads the database try
//! passwords against it offline (the rest of the body is mostly guessable).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::key::DatabaseKey;
use super::StoreError;

/// The first byte of every sealed value (room for another cipher or key later).
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;
/// What sealing adds to a value.
pub(super) const OVERHEAD: usize = 1 + NONCE_LEN + 16;

pub(super) struct Cipher {
    aead: XChaCha20Poly1305,
    /// HMAC-SHA256 keyed with a key derived from the database key (not the key itself).
    digests: Hmac<Sha256>,
}

impl Cipher {
    pub(super) fn new(key: &DatabaseKey) -> Cipher {
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()).expect("any key length");
        derive.update(b"retrobridge transaction digests");
        let digest_key: zeroize::Zeroizing<[u8; 32]> =
            zeroize::Zeroizing::new(derive.finalize().into_bytes().into());
        Cipher {
            aead: XChaCha20Poly1305::new(key.bytes().into()),
            digests: <Hmac<Sha256> as Mac>::new_from_slice(&digest_key[..])
                .expect("any key length"),
        }
    }

    /// `digest` keyed: equal inputs give equal outputs, and nothing can be learnt or
    /// checked from the output without the database key.
    pub(super) fn keyed_digest(&self, digest: &[u8]) -> Vec<u8> {
        let mut mac = self.digests.clone();
        mac.update(digest);
        mac.finalize().into_bytes().to_vec()
    }

    /// Encrypts `plain` for the record at `tree`/`key`.
    pub(super) fn seal(&self, tree: &str, key: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| StoreError::random(&e))?;
        let aad = associated_data(tree, key);
        let sealed = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Sealing)?;
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value sealed for the record at `tree`/`key`; `None` when it was not
    /// sealed under this key for this place, or was changed since.
    pub(super) fn open(&self, tree: &str, key: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < OVERHEAD || sealed[0] != FORMAT {
            return None;
        }
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        let aad = associated_data(tree, key);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .ok()
    }
}

fn associated_data(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tree.len() + 1 + key.len());
    aad.extend_from_slice(tree.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

#[cfg(test)]
mod tests {
    use super::super::key::KeySource;
    use super::*;

    fn cipher(byte: u8) -> Cipher {
        let text = format!("{byte:02x}").repeat(32);
        let key = KeySource::text(std::path::Path::new("unused"), &text)
            .existing()
            .unwrap();
        Cipher::new(&key)
    }

    #[test]
    fn round_trip() {
        let c = cipher(1);
        for plain in [&b""[..], b"x", b"{\"password\":\"hunter2\"}", &[0u8; 5000]] {
            let sealed = c.seal("logins", b"@a:x\0icq", plain).unwrap();
            assert_eq!(sealed.len(), plain.len() + OVERHEAD);
            assert_eq!(c.open("logins", b"@a:x\0icq", &sealed).unwrap(), plain);
        }
    }

    #[test]
    fn the_plain_text_is_not_in_the_sealed_value() {
        let sealed = cipher(1)
            .seal("inbox", b"1", b"login icq 1001 hunter22")
            .unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"hunter22"));
    }

    #[test]
    fn a_wrong_key_is_refused() {
        let sealed = cipher(1).seal("inbox", b"1", b"secret").unwrap();
        assert_eq!(cipher(2).open("inbox", b"1", &sealed), None);
    }

    #[test]
    fn tampering_is_refused() {
        let c = cipher(1);
        let sealed = c.seal("logins", b"k", b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 0x01;
            assert_eq!(c.open("logins", b"k", &changed), None, "byte {i} flipped");
        }
        assert_eq!(c.open("logins", b"k", &sealed[..sealed.len() - 1]), None);
        assert_eq!(c.open("logins", b"k", &sealed[..5]), None);
        // Moved to another record or tree.
        assert_eq!(c.open("logins", b"other", &sealed), None);
        assert_eq!(c.open("inbox", b"k", &sealed), None);
        assert!(c.open("logins", b"k", &sealed).is_some());
    }

    #[test]
    fn keyed_digests_depend_on_the_key() {
        let digest = [7u8; 32];
        assert_eq!(
            cipher(1).keyed_digest(&digest),
            cipher(1).keyed_digest(&digest)
        );
        assert_ne!(
            cipher(1).keyed_digest(&digest),
            cipher(2).keyed_digest(&digest)
        );
        assert_ne!(
            cipher(1).keyed_digest(&digest),
            cipher(1).keyed_digest(&[8u8; 32])
        );
        assert_ne!(cipher(1).keyed_digest(&digest), digest.to_vec());
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let c = cipher(1);
        let mut nonces = std::collections::HashSet::new();
        let mut bodies = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let sealed = c.seal("inbox", b"1", b"same text").unwrap();
            assert!(
                nonces.insert(sealed[1..1 + NONCE_LEN].to_vec()),
                "nonce reused"
            );
            bodies.insert(sealed[1 + NONCE_LEN..].to_vec());
        }
        assert_eq!(
            bodies.len(),
            10_000,
            "the same text seals differently each time"
        );
    }
}
