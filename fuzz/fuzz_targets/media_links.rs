//! The media links the Matrix targets make file links with: one set, built once (it
//! holds an HTTP client, costly to build per input). Included by path, not a target.
use retrobridge::fronts::matrix::media::MediaLinks;

pub static LINKS: std::sync::LazyLock<MediaLinks> = std::sync::LazyLock::new(|| {
    MediaLinks::new(
        vec![7; 32],
        "http://bridge.example",
        "http://hs",
        "t",
        std::time::Duration::from_secs(60),
    )
});
