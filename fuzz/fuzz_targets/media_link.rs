//! Feeds arbitrary text to the media link checker under a fixed key, as the path and
//! query a request brings (whole, and behind the route's prefix): it must never panic.
//! The same text as an mxc URI and a file name (split at the first newline): a link the
//! bridge makes for them checks out with the same parts, and expires when it says.
#![no_main]
use libfuzzer_sys::fuzz_target;
use retrobridge::fronts::matrix::media::{LinkError, MediaLinks, PREFIX};

const KEY: [u8; 32] = [7; 32];
const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = MediaLinks::check(&KEY, text, NOW);
    let _ = MediaLinks::check(&KEY, &format!("{PREFIX}{text}"), NOW);

    let (mxc, name) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(path) = MediaLinks::path(&KEY, mxc, name, NOW + 1) {
        let link = MediaLinks::check(&KEY, &path, NOW).expect("a link the bridge made");
        assert_eq!(format!("mxc://{}/{}", link.server, link.media_id), mxc);
        assert!(name.starts_with(&link.name) || link.name == "file");
        assert_eq!(
            MediaLinks::check(&KEY, &path, NOW + 1),
            Err(LinkError::Expired(NOW + 1))
        );
    }
});
