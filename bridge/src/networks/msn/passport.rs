//! Passport 1.4 (TWN) login over HTTP(S): nexus -> DALogin -> ticket.
//!
//! The header values come from `msn_proto::passport`; this module only does the
//! requests. The password and the ticket are never logged: the `Authorization`
//! header is marked sensitive and errors carry only URLs and statuses.

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
    /// Timeouts, unreachable servers, 5xx: worth retrying later.
    Transient(String),
}

impl std::fmt::Display for PassportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassportError::BadCredentials => {
                f.write_str("Passport refused the e-mail address or password")
            }
            PassportError::Refused(why) | PassportError::Transient(why) => f.write_str(why),
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

fn http_error(what: &str, e: reqwest::Error) -> PassportError {
    let why = if e.is_timeout() {
        format!("{what} timed out")
    } else if e.is_connect() {
        format!("{what}: cannot connect")
    } else {
        format!("{what} failed: {e}")
    };
    PassportError::Transient(why)
}

/// Logs in to Passport with the policy string from `USR TWN S` and returns the ticket.
pub async fn login(
    nexus_url: &str,
    email: &str,
    password: &str,
    policy: &str,
) -> Result<String, PassportError> {
    check_url(nexus_url).map_err(PassportError::Refused)?;
    let client = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PassportError::Refused(format!("cannot build an HTTP client: {e}")))?;
    let default_scheme = if nexus_url.starts_with("http://") {
        "http"
    } else {
        "https"
    };
    let nexus = client
        .get(nexus_url)
        .send()
        .await
        .map_err(|e| http_error("contacting the Passport nexus", e))?;
    if nexus.status().is_server_error() {
        return Err(PassportError::Transient(format!(
            "the Passport nexus answered {}",
            nexus.status()
        )));
    }
    let mut url: LoginUrl = nexus
        .headers()
        .get("PassportURLs")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_passport_urls(v, default_scheme))
        .ok_or_else(|| {
            PassportError::Refused("the Passport nexus gave no DALogin address".into())
        })?;
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
            .map_err(|e| http_error("Passport login", e))?;
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
    use super::check_url;

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
}
