//! Base64 for MSNSLP contexts and MSNObject fields. Decoding is liberal
//! about padding (Kopete strips the `=`; papyon notes the same) and checks
//! the decoded size against a limit before allocating.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::p2p::P2pError;

const LIBERAL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

pub(crate) fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes `text` (surrounding whitespace ignored) if it yields at most
/// `max` bytes.
pub(crate) fn decode(text: &str, max: usize) -> Result<Vec<u8>, P2pError> {
    let text = text.trim_ascii();
    // Every 4 characters give at most 3 bytes.
    if text.len() / 4 * 3 > max.saturating_add(3) {
        return Err(P2pError::BadBase64);
    }
    let out = LIBERAL.decode(text).map_err(|_| P2pError::BadBase64)?;
    if out.len() > max {
        return Err(P2pError::BadBase64);
    }
    Ok(out)
}
