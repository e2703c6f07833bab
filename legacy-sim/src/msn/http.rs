//! A tiny HTTP/1.1 server (nexus and Passport login) and client, enough for
//! one `GET` per connection with `Connection: close`.

use std::sync::{Arc, Mutex};

use msn_proto::passport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::state::{key, Directory};

const MAX_HEAD: usize = 8 * 1024;

/// A parsed request or response head.
#[derive(Debug, Default)]
pub struct Head {
    /// Request: `GET /path HTTP/1.1`; response: `HTTP/1.1 200 OK`.
    pub first_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split("\r\n");
    let first_line = lines.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Head {
        first_line,
        headers,
    })
}

/// Reads up to the blank line ending the head (bounded).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(parse_head(&buf[..end]));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Accepts HTTP connections until the task is aborted.
pub async fn serve(listener: TcpListener, dir: Arc<Mutex<Directory>>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    conns.spawn(handle(stream, dir.clone()));
                }
            }
            Some(_) = conns.join_next() => {}
        }
    }
}

/// First byte of a TLS record carrying a handshake (a client hello).
const TLS_HANDSHAKE: u8 = 0x16;

async fn handle(mut stream: TcpStream, dir: Arc<Mutex<Directory>>) {
    let mut first = [0u8; 1];
    if matches!(stream.peek(&mut first).await, Ok(1) if first[0] == TLS_HANDSHAKE) {
        // A plain-HTTP server's answer to a TLS hello (escargot's, for one).
        dir.lock().unwrap_or_else(|e| e.into_inner()).tls_hellos += 1;
        tracing::debug!("passport: TLS hello on the plain-HTTP port, answered 400");
        let _ = stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        let _ = stream.shutdown().await;
        return;
    }
    let Ok(Some(head)) = read_head(&mut stream).await else {
        return;
    };
    let path = head.first_line.split(' ').nth(1).unwrap_or("/").to_string();
    let path = path.split('?').next().unwrap_or("/");
    let (status, headers) = respond(path, &head, &dir);
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn respond(
    path: &str,
    head: &Head,
    dir: &Mutex<Directory>,
) -> (&'static str, Vec<(&'static str, String)>) {
    let mut dir = dir.lock().unwrap_or_else(|e| e.into_inner());
    let http = dir.addrs.http;
    match path {
        "/rdr/pprdr.asp" => {
            let dalogin = if dir.config.dalogin_https {
                format!("https://{http}/login")
            } else if dir.config.dalogin_full_url {
                format!("http://{http}/login")
            } else {
                format!("{http}/login")
            };
            (
                "200 OK",
                vec![("PassportURLs", passport::passport_urls_value(&dalogin))],
            )
        }
        "/login" | "/login2" => {
            let failed = (
                "401 Unauthorized",
                vec![(
                    "WWW-Authenticate",
                    passport::WWW_AUTHENTICATE_FAILED.to_string(),
                )],
            );
            let Some(creds) = head
                .header("Authorization")
                .and_then(passport::parse_authorization)
            else {
                return failed;
            };
            let Some(account) = dir.accounts.get(&key(&creds.sign_in)) else {
                tracing::debug!(email = %creds.sign_in, "passport: unknown user");
                return failed;
            };
            if path == "/login" && account.login_redirect {
                return (
                    "302 Found",
                    vec![("Location", format!("http://{http}/login2"))],
                );
            }
            if account.password != creds.password {
                tracing::debug!(email = %creds.sign_in, "passport: wrong password");
                return failed;
            }
            let ticket = dir.issue_ticket(&creds.sign_in);
            tracing::debug!(email = %creds.sign_in, "passport: ticket issued");
            (
                "200 OK",
                vec![(
                    "Authentication-Info",
                    passport::authentication_info_value(&ticket),
                )],
            )
        }
        _ => ("404 Not Found", Vec::new()),
    }
}

/// A response: status code and head.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: Head,
}

/// `GET url` (plain `http://` only) with extra headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Response> {
    let target =
        passport::LoginUrl::parse(url, "http").ok_or_else(|| anyhow::anyhow!("bad URL {url:?}"))?;
    anyhow::ensure!(
        target.scheme == "http",
        "only http:// is supported, not {url:?}"
    );
    let mut stream = TcpStream::connect(&target.host).await?;
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        target.path, target.host
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let head = read_head(&mut stream)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no HTTP response from {}", target.host))?;
    let status = head
        .first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad HTTP status line"))?;
    Ok(Response { status, head })
}
