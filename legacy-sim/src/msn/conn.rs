//! One task per TCP connection: decode commands, hand them to a handler,
//! write whatever the handler or other connections queue.

use msn_proto::{Command, ServerConn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;

use super::state::Outbound;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Flush queued output, then close the connection.
    Close,
}

pub trait Handler {
    fn on_command(&mut self, cmd: Command) -> Flow;
    /// The connection is gone (either side closed it).
    fn on_close(&mut self);
}

pub async fn run<H: Handler>(
    mut stream: TcpStream,
    mut handler: H,
    mut rx: UnboundedReceiver<Outbound>,
) {
    let mut conn = ServerConn::new();
    let mut buf = vec![0u8; 8192];
    'outer: loop {
        tokio::select! {
            read = stream.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                conn.handle_input(&buf[..n]);
                while let Some(next) = conn.next_command() {
                    let flow = match next {
                        Ok(cmd) => handler.on_command(cmd),
                        Err(e) if e.is_fatal() => Flow::Close,
                        // A garbled line: skip it, as real servers mostly did.
                        Err(_) => Flow::Continue,
                    };
                    if flow == Flow::Close {
                        while let Ok(Outbound::Bytes(b)) = rx.try_recv() {
                            let _ = stream.write_all(&b).await;
                        }
                        break 'outer;
                    }
                }
            }
            out = rx.recv() => match out {
                Some(Outbound::Bytes(b)) => {
                    if stream.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) | None => break,
            }
        }
    }
    let _ = stream.shutdown().await;
    handler.on_close();
}
