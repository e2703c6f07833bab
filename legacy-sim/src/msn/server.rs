//! Listeners and lifetime of the simulator.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc::unbounded_channel;
use tokio::task::{JoinHandle, JoinSet};

use super::config::Config;
use super::conn::{self, Handler};
use super::http;
use super::ns_server::{lock, NsConn};
use super::sb_server::SbConn;
use super::state::{Addrs, Directory};

/// A running MSN simulator (dispatch, notification, switchboard and HTTP
/// Passport servers). Dropping it stops every listener and connection.
pub struct Server {
    dir: Arc<Mutex<Directory>>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Dispatch,
    Notification,
    Switchboard,
}

impl Server {
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let listeners = bind(
            &config,
            [
                config.dispatch_port,
                config.notification_port,
                config.switchboard_port,
                config.http_port,
            ],
        )
        .await?;
        let addrs = Addrs {
            dispatch: listeners[0].local_addr()?,
            notification: listeners[1].local_addr()?,
            switchboard: listeners[2].local_addr()?,
            http: listeners[3].local_addr()?,
        };
        tracing::info!(dispatch = %addrs.dispatch, notification = %addrs.notification, switchboard = %addrs.switchboard, http = %addrs.http, "msn simulator listening");
        let dir = Arc::new(Mutex::new(Directory::new(config, addrs)));
        let mut server = Server {
            dir,
            tasks: Vec::new(),
        };
        server.spawn(listeners);
        Ok(server)
    }

    fn spawn(&mut self, listeners: Vec<TcpListener>) {
        let mut it = listeners.into_iter();
        for kind in [Kind::Dispatch, Kind::Notification, Kind::Switchboard] {
            if let Some(l) = it.next() {
                self.tasks
                    .push(tokio::spawn(accept_loop(l, self.dir.clone(), kind)));
            }
        }
        if let Some(l) = it.next() {
            self.tasks
                .push(tokio::spawn(http::serve(l, self.dir.clone())));
        }
    }

    fn addrs<T>(&self, f: impl FnOnce(&Addrs) -> T) -> T {
        f(&lock(&self.dir).addrs)
    }

    pub fn dispatch_addr(&self) -> SocketAddr {
        self.addrs(|a| a.dispatch)
    }

    pub fn notification_addr(&self) -> SocketAddr {
        self.addrs(|a| a.notification)
    }

    pub fn switchboard_addr(&self) -> SocketAddr {
        self.addrs(|a| a.switchboard)
    }

    /// `http://127.0.0.1:PORT/rdr/pprdr.asp`
    pub fn nexus_url(&self) -> String {
        format!("http://{}/rdr/pprdr.asp", self.addrs(|a| a.http))
    }

    /// Connections to the plain-HTTP Passport port that opened with a TLS handshake
    /// (see `Config::dalogin_https`).
    pub fn tls_hellos(&self) -> u64 {
        lock(&self.dir).tls_hellos
    }

    /// `http://127.0.0.1:PORT/login`: the plain-HTTP Passport login address.
    pub fn login_url(&self) -> String {
        format!("http://{}/login", self.addrs(|a| a.http))
    }

    /// Whether `email` is signed in to the notification server.
    pub fn is_online(&self, email: &str) -> bool {
        lock(&self.dir)
            .online
            .contains_key(&email.to_ascii_lowercase())
    }

    /// Closes every listener and connection. Accounts and lists are kept.
    pub async fn stop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let mut d = lock(&self.dir);
        d.online.clear();
        d.sessions.clear();
        d.sb_grants.clear();
    }

    /// Stops, then listens again on the same ports (for reconnect tests).
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        let (config, ports) = {
            let d = lock(&self.dir);
            let a = &d.addrs;
            (
                d.config.clone(),
                [
                    a.dispatch.port(),
                    a.notification.port(),
                    a.switchboard.port(),
                    a.http.port(),
                ],
            )
        };
        let listeners = bind(&config, ports).await?;
        self.spawn(listeners);
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn bind(config: &Config, ports: [u16; 4]) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for port in ports {
        out.push(TcpListener::bind((config.host.as_str(), port)).await?);
    }
    Ok(out)
}

/// Accepts connections; they live in a `JoinSet` so aborting this task ends them.
async fn accept_loop(listener: TcpListener, dir: Arc<Mutex<Directory>>, kind: Kind) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (tx, rx) = unbounded_channel();
                match kind {
                    Kind::Dispatch => spawn_conn(&mut conns, stream, NsConn::new(dir.clone(), tx, true), rx),
                    Kind::Notification => spawn_conn(&mut conns, stream, NsConn::new(dir.clone(), tx, false), rx),
                    Kind::Switchboard => spawn_conn(&mut conns, stream, SbConn::new(dir.clone(), tx), rx),
                }
            }
            Some(_) = conns.join_next() => {}
        }
    }
}

fn spawn_conn<H: Handler + Send + 'static>(
    conns: &mut JoinSet<()>,
    stream: tokio::net::TcpStream,
    handler: H,
    rx: tokio::sync::mpsc::UnboundedReceiver<super::state::Outbound>,
) {
    conns.spawn(conn::run(stream, handler, rx));
}
