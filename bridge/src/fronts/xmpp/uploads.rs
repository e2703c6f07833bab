//! Files XMPP users share. A client sends a file as a link to the server's upload service
//! (XEP-0363), usually with the same link as out-of-band data (XEP-0066). Where the
//! network carries files (MSN), a link whose host the operator listed (`xmpp.file_hosts`)
//! is fetched and sent as a file; every other link crosses as the text it is. The bridge
//! never fetches an address a user names on its own say-so: that would let a user make
//! it open any address its operator can reach.

use reqwest::Url;

use crate::model::FileData;

/// The link in `text` when the message is a link and nothing else (how clients send a
/// file), on one of `hosts`, over http(s).
pub fn shared_file(text: &str, hosts: &[String]) -> Option<Url> {
    let text = text.trim();
    if text.contains(char::is_whitespace) {
        return None;
    }
    let url = Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return None;
    }
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let listed = hosts.iter().any(|entry| match entry.rsplit_once(':') {
        // `host:port`: that port; a bare host: the scheme's own port.
        Some((h, p)) if !entry.ends_with(']') => {
            h.eq_ignore_ascii_case(host) && p.parse::<u16>().ok() == Some(port)
        }
        _ => entry.eq_ignore_ascii_case(host) && url.port().is_none(),
    });
    listed.then_some(url)
}

/// The file a name: the link's last path segment, decoded and cleaned.
pub fn name_of(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    crate::core::sanitize::clean_file_name(&decoded)
}

/// Fetches a shared file, at most `max` bytes, following no redirect (a listed host
/// could otherwise send the bridge anywhere).
pub async fn fetch(url: Url, max: u64) -> Result<FileData, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let name = name_of(&url);
    let data = crate::fronts::downloads::fetch_bounded(client.get(url), max).await?;
    Ok(FileData::new(&name, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_links_on_listed_hosts_are_fetched() {
        let hosts = vec!["upload.example.org".to_owned(), "127.0.0.1:5280".to_owned()];
        let yes = |t: &str| shared_file(t, &hosts).is_some();
        assert!(yes("https://upload.example.org/abc/cat.png"));
        assert!(yes(" https://UPLOAD.example.org/abc/cat.png\n"));
        assert!(yes("http://127.0.0.1:5280/share/x/notes.txt"));
        // Another host, port, scheme, or a link inside other words: text.
        assert!(!yes("https://evil.example.net/cat.png"));
        assert!(!yes("https://upload.example.org.evil.net/cat.png"));
        assert!(!yes("https://upload.example.org:8443/cat.png"));
        assert!(!yes("http://127.0.0.1:22/x"));
        assert!(!yes("ftp://upload.example.org/cat.png"));
        assert!(!yes("look https://upload.example.org/abc/cat.png"));
        assert!(!yes("https://user@upload.example.org/cat.png"));
        assert!(!yes("https://upload.example.org@evil.net/cat.png"));
        assert!(!yes("not a link"));
        assert!(shared_file("https://upload.example.org/a", &[]).is_none());
    }

    #[test]
    fn names_come_from_the_path() {
        let name = |t: &str| name_of(&Url::parse(t).unwrap());
        assert_eq!(
            name("https://h/a/b/holiday%20photo.jpg"),
            "holiday photo.jpg"
        );
        assert_eq!(name("https://h/a/..%2F..%2Fetc%2Fpasswd"), "passwd");
        assert_eq!(name("https://h/"), "file");
    }
}
