//! Looking for secrets where they must not be: in a database folder's files (in the
//! encodings a file could plausibly hold them in) and in a log.

use std::path::{Path, PathBuf};

/// The encodings of `secret` a file could plausibly hold it in.
pub fn encodings(secret: &str) -> Vec<(&'static str, Vec<u8>)> {
    let utf16 = |le: bool| -> Vec<u8> {
        secret
            .encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    };
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    // How Rust prints bytes (`{:?}` of a byte slice: sled logs values so at trace).
    let debug = format!("{:?}", secret.as_bytes());
    vec![
        ("UTF-8", secret.as_bytes().to_vec()),
        ("UTF-16LE", utf16(true)),
        ("UTF-16BE", utf16(false)),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
        (
            "bytes printed",
            debug.trim_matches(['[', ']']).as_bytes().to_vec(),
        ),
    ]
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read folder") {
        let entry = entry.expect("folder entry");
        if entry.file_type().expect("file type").is_dir() {
            files.extend(files_under(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// Every (file, secret, encoding) found under `dir`.
pub fn in_files(dir: &Path, secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).expect("read file");
        for &secret in secrets {
            for (encoding, needle) in encodings(secret) {
                if find(&bytes, &needle).is_some() {
                    found.push(format!("{secret} ({encoding}) in {}", file.display()));
                }
            }
        }
    }
    found
}

/// Every (secret, encoding) found in a log, with its line.
pub fn in_log(log: &[u8], secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for &secret in secrets {
        for (encoding, needle) in encodings(secret) {
            if let Some(at) = find(log, &needle) {
                let line_start = log[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let line_end = log[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(log.len(), |p| at + p);
                found.push(format!(
                    "{secret} ({encoding}): {}",
                    String::from_utf8_lossy(&log[line_start..line_end])
                ));
            }
        }
    }
    found
}
