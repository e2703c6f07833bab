//! Passport 1.4 (TWN) login over HTTP(S): nexus -> DALogin -> ticket.
//!
//! The header values come from `msn_proto::passport`; this module only does the
//! requests. The password and the ticket are never logged: the `Authorization`
//! header is marked sensitive and errors carry only URLs, statuses and the cause of
//! a failed connection (TLS, refused, DNS, timeout), which the user needs to act.

use std::error::Error as StdError;
use std::time::Duration;

use msn_proto::passport::{
    authorization_header, classify_response, parse_passport_urls, LoginResponse, LoginUrl,
};
use reqwest::header::{HeaderValue, AUTHORIZATION};

/// Each HTTP request must finish within this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// DALogin redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Why no ticket was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassportError {
    /// Wrong e-mail address or password: final.
    BadCredentials,
    /// The configuration or the server's answers make login impossible: final.
    Refused(String),
    /// Fails the same way on every try until someone changes something (TLS handshake,
    /// certificate): worth a few tries, then final. The text says what to change.
    Persistent(String),
    /// Timeouts, unreachable servers, 5xx: worth retrying later.
    Transient(String),
}

impl std::fmt::Display for PassportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassportError::BadCredentials => {
                f.write_str("Passport refused the e-mail address or password")
            }
            PassportError::Refused(why)
            | PassportError::Persistent(why)
            | PassportError::Transient(why) => f.write_str(why),
        }
    }
}

/// Refuses URLs that would send the password in clear text to another machine:
/// `https` is required except for loopback hosts (test servers).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("invalid Passport URL {url:?}: {e}"))?;
    let host = parsed.host_str().unwrap_or("").trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        scheme => Err(format!(
            "refusing Passport URL {url}: it must use https ({scheme} is allowed only for 127.0.0.1, localhost and ::1)"
        )),
    }
}

/// Which request failed: it names the request and the option that sets its address.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Nexus,
    Login,
}

impl Stage {
    fn what(self) -> &'static str {
        match self {
            Stage::Nexus => "the Passport nexus",
            Stage::Login => "Passport login",
        }
    }

    fn option(self) -> &'static str {
        match self {
            Stage::Nexus => "nexus_url",
            Stage::Login => "login_url",
        }
    }
}

/// Why a request could not be made, as found in reqwest's error chain.
#[derive(Debug, PartialEq, Eq)]
enum Cause {
    Tls(String),
    Certificate(String),
    Refused,
    Dns,
    Timeout,
    Other,
}

fn cause_of(error: &(dyn StdError + 'static)) -> Cause {
    let mut timed_out = false;
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return tls_cause(tls);
        }
        next = e.source();
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Cause::Refused,
                std::io::ErrorKind::TimedOut => timed_out = true,
                _ => {}
            }
            // `io::Error::source` skips the error it wraps (tokio-rustls wraps the
            // `rustls::Error`, reqwest wraps that again): follow the wrapped one.
            if let Some(inner) = io.get_ref() {
                next = Some(inner as &(dyn StdError + 'static));
            }
        }
        // hyper-util's connector names a failed resolution "dns error".
        if e.to_string().starts_with("dns error") {
            return Cause::Dns;
        }
    }
    if timed_out {
        Cause::Timeout
    } else {
        Cause::Other
    }
}

fn tls_cause(e: &rustls::Error) -> Cause {
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Cause::Certificate(e.to_string())
        }
        _ => Cause::Tls(e.to_string()),
    }
}

/// Every message of an error chain, without repeats (for causes not named above).
fn chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn http_error(stage: Stage, url: &str, e: reqwest::Error) -> PassportError {
    let at = format!("{} at {url}", stage.what());
    let option = stage.option();
    let cause = if e.is_timeout() {
        Cause::Timeout
    } else {
        cause_of(&e)
    };
    match cause {
        Cause::Tls(detail) => PassportError::Persistent(format!(
            "{at}: TLS handshake failed ({detail}). The server probably serves plain HTTP \
             only (escargot does by default): set networks.msn.options.{option} to its \
             plain-HTTP address (http is allowed on loopback only)"
        )),
        Cause::Certificate(detail) => PassportError::Persistent(format!(
            "{at}: certificate error ({detail}). The bridge does not trust the server's \
             certificate: give the server a certificate from a trusted authority, or set \
             networks.msn.options.{option} to an address that has one"
        )),
        Cause::Refused => PassportError::Transient(format!("{at}: connection refused")),
        Cause::Dns => PassportError::Transient(format!("{at}: DNS lookup failed")),
        Cause::Timeout => PassportError::Transient(format!(
            "{at}: timed out (no answer within {} s)",
            HTTP_TIMEOUT.as_secs()
        )),
        Cause::Other => PassportError::Transient(format!("{at} failed: {}", chain_text(&e))),
    }
}

/// The scheme bare `host/path` addresses get: that of the URL they came from.
fn scheme_of(url: &str) -> &'static str {
    if url.starts_with("http://") {
        "http"
    } else {
        "https"
    }
}

/// Asks the nexus where to log in (`DALogin`).
async fn dalogin(client: &reqwest::Client, nexus_url: &str) -> Result<LoginUrl, PassportError> {
    check_url(nexus_url).map_err(PassportError::Refused)?;
    let nexus = client
        .get(nexus_url)
        .send()
        .await
        .map_err(|e| http_error(Stage::Nexus, nexus_url, e))?;
    if nexus.status().is_server_error() {
        return Err(PassportError::Transient(format!(
            "the Passport nexus answered {}",
            nexus.status()
        )));
    }
    nexus
        .headers()
        .get("PassportURLs")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_passport_urls(v, scheme_of(nexus_url)))
        .ok_or_else(|| PassportError::Refused("the Passport nexus gave no DALogin address".into()))
}

/// Logs in to Passport with the policy string from `USR TWN S` and returns the ticket.
/// `login_url`, when set, replaces the nexus' `DALogin` (the nexus is then not asked).
pub async fn login(
    nexus_url: &str,
    login_url: Option<&str>,
    email: &str,
    password: &str,
    policy: &str,
) -> Result<String, PassportError> {
    let client = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PassportError::Refused(format!("cannot build an HTTP client: {e}")))?;
    let (mut url, default_scheme) = match login_url {
        Some(login_url) => {
            check_url(login_url).map_err(PassportError::Refused)?;
            let scheme = scheme_of(login_url);
            let url = LoginUrl::parse(login_url, scheme).ok_or_else(|| {
                PassportError::Refused(format!("invalid Passport login URL {login_url:?}"))
            })?;
            (url, scheme)
        }
        None => (dalogin(&client, nexus_url).await?, scheme_of(nexus_url)),
    };
    let mut auth = HeaderValue::from_str(&authorization_header(email, password, policy))
        .map_err(|_| PassportError::Refused("the credentials cannot be sent in a header".into()))?;
    auth.set_sensitive(true);
    for _ in 0..=MAX_REDIRECTS {
        let target = url.to_url();
        check_url(&target).map_err(PassportError::Refused)?;
        let reply = client
            .get(&target)
            .header(AUTHORIZATION, auth.clone())
            .send()
            .await
            .map_err(|e| http_error(Stage::Login, &target, e))?;
        let status = reply.status().as_u16();
        let headers = reply.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match classify_response(status, header, default_scheme) {
            LoginResponse::Ticket(ticket) => return Ok(ticket),
            LoginResponse::Redirect(next) => url = next,
            LoginResponse::BadCredentials => return Err(PassportError::BadCredentials),
            LoginResponse::Failed(why) if status >= 500 => {
                return Err(PassportError::Transient(format!("Passport: {why}")))
            }
            LoginResponse::Failed(why) => {
                return Err(PassportError::Refused(format!("Passport: {why}")))
            }
        }
    }
    Err(PassportError::Refused("too many Passport redirects".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn https_required_except_loopback() {
        assert!(check_url("https://nexus.passport.com/rdr/pprdr.asp").is_ok());
        assert!(check_url("http://127.0.0.1:1880/rdr/pprdr.asp").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://[::1]:80/x").is_ok());
        let err = check_url("http://nexus.passport.com/rdr/pprdr.asp").unwrap_err();
        assert!(err.contains("https"), "{err}");
        assert!(check_url("ftp://127.0.0.1/").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn causes_are_found_in_the_chain() {
        let wrapped = |inner: std::io::Error| {
            // As hyper-util wraps the connector's error.
            #[derive(Debug)]
            struct Outer(std::io::Error);
            impl std::fmt::Display for Outer {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("client error (Connect)")
                }
            }
            impl StdError for Outer {
                fn source(&self) -> Option<&(dyn StdError + 'static)> {
                    Some(&self.0)
                }
            }
            cause_of(&Outer(inner))
        };
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(matches!(
            wrapped(std::io::Error::new(std::io::ErrorKind::InvalidData, cert)),
            Cause::Certificate(_)
        ));
        // reqwest wraps tokio-rustls' io::Error in another io::Error.
        let handshake = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let tls_io = std::io::Error::new(std::io::ErrorKind::InvalidData, handshake);
        assert!(matches!(
            wrapped(std::io::Error::other(tls_io)),
            Cause::Tls(_)
        ));
        assert_eq!(
            wrapped(std::io::ErrorKind::ConnectionRefused.into()),
            Cause::Refused
        );
        assert_eq!(wrapped(std::io::ErrorKind::TimedOut.into()), Cause::Timeout);
        // hyper-util's ConnectError says "dns error" and has the resolver's error as source.
        assert_eq!(wrapped(std::io::Error::other("dns error")), Cause::Dns);
        assert_eq!(wrapped(std::io::Error::other("broken pipe")), Cause::Other);
    }

    /// A plain-HTTP server answering everything with 400, as escargot's does a TLS hello.
    async fn plain_http_server() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn tls_to_a_plain_http_server_is_named_and_persistent() {
        let addr = plain_http_server().await;
        let url = format!("https://{addr}/login");
        let err = login("https://127.0.0.1:1/", Some(&url), "a@b.c", "pw", "p")
            .await
            .unwrap_err();
        let PassportError::Persistent(why) = err else {
            panic!("{err:?}");
        };
        assert!(why.contains("TLS handshake failed"), "{why}");
        assert!(why.contains("networks.msn.options.login_url"), "{why}");
        assert!(!why.contains("pw"), "{why}");
    }

    #[tokio::test]
    async fn refused_connections_are_named_and_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = login(&format!("http://{addr}/rdr"), None, "a@b.c", "pw", "p")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PassportError::Transient(why) if why.contains("connection refused") && why.contains("nexus")),
            "{err:?}"
        );
    }
}
