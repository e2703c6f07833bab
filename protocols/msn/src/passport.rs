//! The pure parts of Passport 1.4 (TWN) login: header values in and out.
//! The HTTP requests themselves belong to the caller.
//!
//! Client flow: GET the nexus, read `PassportURLs` with
//! [`parse_passport_urls`]; GET the DALogin URL with an `Authorization`
//! header from [`authorization_header`]; feed the reply to
//! [`classify_response`]. Never log the header values: they hold the
//! password or the ticket.

use crate::urlenc::{url_decode, url_encode};

/// `OrgURL` as Messenger sends it (`http://messenger.msn.com`, dots escaped).
pub const ORG_URL: &str = "http%3A%2F%2Fmessenger%2Emsn%2Ecom";

/// The `Authorization` header value for the DALogin request.
pub fn authorization_header(email: &str, password: &str, policy: &str) -> String {
    format!(
        "Passport1.4 OrgVerb=GET,OrgURL={ORG_URL},sign-in={},pwd={},{policy}",
        url_encode(email),
        url_encode(password)
    )
}

/// Credentials decoded from an `Authorization` header (server side).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub sign_in: String,
    pub password: String,
    /// Everything after `pwd=` (the policy string the client echoed).
    pub policy: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("sign_in", &self.sign_in)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses `Passport1.4 OrgVerb=GET,...,sign-in=...,pwd=...,<policy>`.
pub fn parse_authorization(value: &str) -> Option<Credentials> {
    let rest = strip_scheme(value)?;
    let mut sign_in = None;
    let mut password = None;
    let mut policy = String::new();
    let mut parts = rest.split(',');
    for part in parts.by_ref() {
        let (key, val) = part.split_once('=').unwrap_or((part, ""));
        match key.trim() {
            "sign-in" => sign_in = Some(url_decode(val.trim()).into_owned()),
            "pwd" => {
                password = Some(url_decode(val.trim()).into_owned());
                break;
            }
            _ => {}
        }
    }
    policy.push_str(&parts.collect::<Vec<_>>().join(","));
    Some(Credentials {
        sign_in: sign_in?,
        password: password?,
        policy,
    })
}

fn strip_scheme(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("Passport1.4")
        .then_some(rest.trim())
}

/// `key=value` pairs of a Passport header, values untouched.
fn fields(value: &str) -> impl Iterator<Item = (&str, &str)> {
    strip_scheme(value)
        .unwrap_or("")
        .split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim(), v.trim()))
        })
}

/// Where to send the login request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUrl {
    pub scheme: String,
    /// Host, with `:port` if one was given.
    pub host: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl LoginUrl {
    /// Accepts a full URL (`http://host:port/path`) or the bare `host/path`
    /// form real nexus servers send, which gets `default_scheme`.
    pub fn parse(text: &str, default_scheme: &str) -> Option<LoginUrl> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => (default_scheme.to_string(), text),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() || scheme.is_empty() {
            return None;
        }
        Some(LoginUrl {
            scheme,
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    pub fn to_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }
}

/// Finds `DALogin=` in the nexus' `PassportURLs` header.
pub fn parse_passport_urls(value: &str, default_scheme: &str) -> Option<LoginUrl> {
    // The header has no scheme word: `DARealm=Passport.Net,DALogin=...,...`.
    value
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("DALogin"))
        .and_then(|(_, v)| LoginUrl::parse(v, default_scheme))
}

/// The ticket in `Authentication-Info: Passport1.4 da-status=success,...,from-PP='<ticket>'`.
pub fn parse_authentication_info(value: &str) -> Option<String> {
    let start = value.find("from-PP='")? + "from-PP='".len();
    let len = value[start..].find('\'')?;
    Some(value[start..start + len].to_string())
}

/// The `da-status` of a `WWW-Authenticate` or `Authentication-Info` value.
pub fn da_status(value: &str) -> Option<&str> {
    fields(value)
        .find(|(k, _)| k.eq_ignore_ascii_case("da-status"))
        .map(|(_, v)| v)
}

/// What a DALogin reply means.
#[derive(Clone, PartialEq, Eq)]
pub enum LoginResponse {
    Ticket(String),
    /// 302: repeat the request at this DALogin URL.
    Redirect(LoginUrl),
    /// 401 with `da-status=failed`: wrong email or password.
    BadCredentials,
    /// Anything else, with a description for the user.
    Failed(String),
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginResponse::Ticket(_) => f.write_str("Ticket(<redacted>)"),
            LoginResponse::Redirect(u) => f.debug_tuple("Redirect").field(u).finish(),
            LoginResponse::BadCredentials => f.write_str("BadCredentials"),
            LoginResponse::Failed(why) => f.debug_tuple("Failed").field(why).finish(),
        }
    }
}

/// Classifies a DALogin HTTP reply; `header` looks a header up by name
/// (case-insensitive). `default_scheme` applies to a bare `Location`.
pub fn classify_response<'h>(
    status: u16,
    header: impl Fn(&str) -> Option<&'h str>,
    default_scheme: &str,
) -> LoginResponse {
    match status {
        200 => match header("Authentication-Info").and_then(parse_authentication_info) {
            Some(ticket) if !ticket.is_empty() => LoginResponse::Ticket(ticket),
            _ => LoginResponse::Failed("login reply without a ticket".into()),
        },
        301 | 302 | 307 => {
            match header("Location").and_then(|l| LoginUrl::parse(l, default_scheme)) {
                Some(url) => LoginResponse::Redirect(url),
                None => {
                    LoginResponse::Failed(format!("{status} redirect without a usable Location"))
                }
            }
        }
        401 => match header("WWW-Authenticate").and_then(da_status) {
            Some(s) if s.eq_ignore_ascii_case("failed") => LoginResponse::BadCredentials,
            Some(s) => LoginResponse::Failed(format!("login refused (da-status={s})")),
            None => LoginResponse::BadCredentials,
        },
        other => LoginResponse::Failed(format!("unexpected HTTP status {other} from Passport")),
    }
}

/// Server side: `Authentication-Info` value carrying `ticket`.
pub fn authentication_info_value(ticket: &str) -> String {
    format!(
        "Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='{ticket}',ru=http://messenger.msn.com"
    )
}

/// Server side: `WWW-Authenticate` value for bad credentials.
pub const WWW_AUTHENTICATE_FAILED: &str =
    "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,cburl=http://messenger.msn.com,cbtxt=Bad%20credentials";

/// Server side: the nexus' `PassportURLs` value pointing at `dalogin`.
pub fn passport_urls_value(dalogin: &str) -> String {
    format!(
        "DARealm=Passport.Net,DALogin={dalogin},DAReg=http://localhost/reg,Properties=,Privacy=,GeneralRedir=,Help=,ConfigVersion=11"
    )
}
