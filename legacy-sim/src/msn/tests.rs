use std::time::Duration;

use msn_proto::Status;

use super::client::{Client, ClientEvent};
use super::{Config, Server};

const T: Duration = Duration::from_secs(10);

const YAML: &str = r#"
dispatch_port: 0
notification_port: 0
switchboard_port: 0
http_port: 0
challenges: true
users:
  - email: alice@hotmail.com
    password: secret
    friendly_name: Alice A
    groups: [{ id: 1, name: Friends }]
    contacts:
      - { email: bob@hotmail.com, groups: [1] }
      - { email: carol@hotmail.com }
  - email: bob@hotmail.com
    password: hunter2
    friendly_name: Bob
    contacts: [{ email: alice@hotmail.com }, { email: carol@hotmail.com }]
  - email: carol@hotmail.com
    password: pw
    login_redirect: true
    contacts: [{ email: alice@hotmail.com }]
"#;

async fn start() -> Server {
    let config: Config = serde_yaml::from_str(YAML).unwrap();
    Server::start(config).await.unwrap()
}

async fn login(s: &Server, email: &str, password: &str) -> Client {
    Client::login(s.dispatch_addr(), &s.nexus_url(), email, password)
        .await
        .unwrap()
}

#[tokio::test]
async fn presence_and_messages_both_ways() {
    let s = start().await;
    let mut alice = login(&s, "alice@hotmail.com", "secret").await;
    assert_eq!(alice.friendly_name(), "Alice A");
    assert_eq!(alice.groups().len(), 2);
    assert!(alice
        .contacts()
        .iter()
        .any(|c| c.email == "bob@hotmail.com" && c.groups == [1]));
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    assert!(
        alice
            .wait_for_presence("bob@hotmail.com", Status::Online, T)
            .await
    );
    // Bob saw Alice already online at sign-in (ILN).
    assert!(
        bob.wait_for_presence("alice@hotmail.com", Status::Online, T)
            .await
    );

    bob.set_status(Status::Away).unwrap();
    assert!(
        alice
            .wait_for_presence("bob@hotmail.com", Status::Away, T)
            .await
    );

    alice
        .send_message("bob@hotmail.com", "hello bob")
        .await
        .unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("hello bob")
    );
    assert!(alice
        .wait_for(T, |e| matches!(e, ClientEvent::Delivered { .. }))
        .await
        .is_some());
    // Bob answers on the switchboard he was invited to.
    bob.send_message("alice@hotmail.com", "hi alice ✓")
        .await
        .unwrap();
    assert_eq!(
        alice
            .wait_for_message("bob@hotmail.com", T)
            .await
            .as_deref(),
        Some("hi alice ✓")
    );
    alice.send_typing("bob@hotmail.com").await.unwrap();
    assert!(bob
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Typing { from, .. } if from == "alice@hotmail.com")
        )
        .await
        .is_some());
    // A long text arrives whole, in several payloads.
    let long = "x".repeat(4000);
    alice.send_message("bob@hotmail.com", &long).await.unwrap();
    let mut got = String::new();
    while got.len() < long.len() {
        got.push_str(&bob.wait_for_message("alice@hotmail.com", T).await.unwrap());
    }
    assert_eq!(got, long);

    bob.logout().await;
    assert!(
        alice
            .wait_for_presence("bob@hotmail.com", Status::Offline, T)
            .await
    );
}

#[tokio::test]
async fn bad_password_is_refused() {
    let s = start().await;
    let err = Client::login(
        s.dispatch_addr(),
        &s.nexus_url(),
        "alice@hotmail.com",
        "wrong",
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("email or password"), "{err}");
    assert!(!s.is_online("alice@hotmail.com"));
}

#[tokio::test]
async fn third_user_joins_and_offline_call_fails() {
    let s = start().await;
    let mut alice = login(&s, "alice@hotmail.com", "secret").await;
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    // Carol is offline: the call fails with 217 and the text is reported undelivered.
    alice
        .send_message("carol@hotmail.com", "anyone?")
        .await
        .unwrap();
    let failed = alice
        .wait_for(T, |e| matches!(e, ClientEvent::DeliveryFailed { .. }))
        .await;
    assert!(
        matches!(&failed, Some(ClientEvent::DeliveryFailed { error: Some(e), .. }) if e.code == 217),
        "{failed:?}"
    );

    // Carol's login goes through a Passport 302.
    let mut carol = login(&s, "carol@hotmail.com", "pw").await;
    assert!(
        alice
            .wait_for_presence("carol@hotmail.com", Status::Online, T)
            .await
    );

    let session = alice
        .send_message("bob@hotmail.com", "first")
        .await
        .unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("first")
    );
    alice
        .invite("bob@hotmail.com", "carol@hotmail.com")
        .unwrap();
    assert!(alice
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Joined { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
    assert!(bob
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Joined { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
    let mut members = alice.session_members(session);
    members.sort();
    assert_eq!(members, ["bob@hotmail.com", "carol@hotmail.com"]);

    alice.send_to_session(session, "hello both").unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("hello both")
    );
    assert_eq!(
        carol
            .wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("hello both")
    );
    carol.logout().await;
    assert!(alice
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Left { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
}

#[tokio::test]
async fn contact_list_changes_and_restart() {
    let mut s = start().await;
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    let mut carol = login(&s, "carol@hotmail.com", "pw").await;
    carol.add_contact("bob@hotmail.com").unwrap();
    assert!(bob
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::AddedBy { email, .. } if email == "carol@hotmail.com")
        )
        .await
        .is_some());
    assert!(
        carol
            .wait_for_presence("bob@hotmail.com", Status::Online, T)
            .await
    );
    bob.set_friendly_name("Bobby").unwrap();
    assert!(carol
        .wait_for(
            T,
            |e| matches!(e, ClientEvent::Presence { friendly_name: Some(n), .. } if n == "Bobby")
        )
        .await
        .is_some());

    s.restart().await.unwrap();
    assert!(bob
        .wait_for(T, |e| matches!(e, ClientEvent::Disconnected { .. }))
        .await
        .is_some());
    let bob = login(&s, "bob@hotmail.com", "hunter2").await;
    assert_eq!(
        bob.friendly_name(),
        "Bobby",
        "lists and names survive a restart"
    );
    assert!(bob
        .contacts()
        .iter()
        .any(|c| c.email == "carol@hotmail.com" && c.lists.contains(msn_proto::List::Reverse)));
}

#[tokio::test]
async fn bare_dalogin_form_and_cli_send() {
    let mut config: Config = serde_yaml::from_str(YAML).unwrap();
    config.dalogin_full_url = false;
    config.challenges = false;
    let s = Server::start(config).await.unwrap();
    let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
    let args = [
        "--server",
        &s.dispatch_addr().to_string(),
        "--nexus",
        &s.nexus_url(),
        "--email",
        "alice@hotmail.com",
        "--password",
        "secret",
        "send",
        "bob@hotmail.com",
        "from the command line",
    ]
    .map(String::from)
    .to_vec();
    super::client_cli(args).await.unwrap();
    assert_eq!(
        bob.wait_for_message("alice@hotmail.com", T)
            .await
            .as_deref(),
        Some("from the command line")
    );
    assert!(super::client_cli(vec!["--bogus".into()]).await.is_err());
}

/// Escargot's default: DALogin says https, the port speaks plain HTTP only.
#[tokio::test]
async fn https_dalogin_on_a_plain_http_port() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config: Config = serde_yaml::from_str(YAML).unwrap();
    config.dalogin_https = true;
    let s = Server::start(config).await.unwrap();
    let nexus = super::http::get(&s.nexus_url(), &[]).await.unwrap();
    let urls = nexus.head.header("PassportURLs").unwrap().to_string();
    let login = s.login_url().replace("http://", "https://");
    assert!(urls.contains(&format!("DALogin={login}")), "{urls}");

    // The start of a TLS client hello gets a plain-HTTP 400 and is counted.
    let host = s.login_url()["http://".len()..]
        .trim_end_matches("/login")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0x05])
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(s.tls_hellos(), 1);

    // The plain-HTTP login address works (what `login_url` points the bridge at).
    let auth = msn_proto::passport::authorization_header("bob@hotmail.com", "hunter2", "p");
    let reply = super::http::get(&s.login_url(), &[("Authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
}

mod raw {
    //! Drives `NsSession` directly against the simulator, for list editing
    //! the scriptable client does not expose.
    use std::time::Instant;

    use msn_proto::{List, NsConfig, NsEvent, NsSession, ServerError};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    struct Raw {
        stream: TcpStream,
        ns: NsSession,
    }

    impl Raw {
        async fn login(s: &Server, email: &str, password: &str) -> Raw {
            let stream = TcpStream::connect(s.notification_addr()).await.unwrap();
            let mut raw = Raw {
                stream,
                ns: NsSession::new(NsConfig::new(email), Instant::now()),
            };
            let ev = raw.until(|e| matches!(e, NsEvent::NeedTicket { .. })).await;
            let Some(NsEvent::NeedTicket { policy }) = ev.last() else {
                panic!("{ev:?}")
            };
            let ticket =
                super::super::client::passport_login(&s.nexus_url(), email, password, policy)
                    .await
                    .unwrap();
            raw.ns.ticket(&ticket);
            raw.until(|e| matches!(e, NsEvent::StatusChanged { .. }))
                .await;
            raw
        }

        /// Runs until an event matches; returns everything seen.
        async fn until(&mut self, want: impl Fn(&NsEvent) -> bool) -> Vec<NsEvent> {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                while let Some(b) = self.ns.poll_transmit() {
                    self.stream.write_all(&b).await.unwrap();
                }
                while let Some(e) = self.ns.poll_event() {
                    let done = want(&e);
                    seen.push(e);
                    if done {
                        return seen;
                    }
                }
                let n = tokio::time::timeout(T, self.stream.read(&mut buf))
                    .await
                    .expect("timed out")
                    .unwrap();
                if n == 0 {
                    return seen;
                }
                self.ns.handle_input(&buf[..n]);
            }
        }

        async fn error_for(&mut self, trid: u32) -> u16 {
            let ev = self
                .until(|e| matches!(e, NsEvent::Error { error } if error.trid == Some(trid)))
                .await;
            match ev.last() {
                Some(NsEvent::Error {
                    error: ServerError { code, .. },
                }) => *code,
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn list_editing_and_errors() {
        let s = start().await;
        let mut bob = login(&s, "bob@hotmail.com", "hunter2").await;
        let mut alice = Raw::login(&s, "alice@hotmail.com", "secret").await;

        let t = alice.ns.add_group("Work Mates");
        let ev = alice
            .until(|e| matches!(e, NsEvent::GroupAdded { .. }))
            .await;
        assert!(
            matches!(ev.last(), Some(NsEvent::GroupAdded { trid, id: 2, name, .. }) if *trid == Some(t) && name == "Work Mates")
        );
        alice.ns.rename_group(2, "Jobs");
        let ev = alice
            .until(|e| matches!(e, NsEvent::GroupRenamed { .. }))
            .await;
        assert!(
            matches!(ev.last(), Some(NsEvent::GroupRenamed { id: 2, name, .. }) if name == "Jobs")
        );
        alice
            .ns
            .add_contact(List::Forward, "carol@hotmail.com", "Carol", Some(2));
        let ev = alice
            .until(|e| matches!(e, NsEvent::ListAdded { .. }))
            .await;
        assert!(matches!(
            ev.last(),
            Some(NsEvent::ListAdded { group: Some(2), .. })
        ));
        alice
            .ns
            .remove_contact(List::Forward, "carol@hotmail.com", Some(2));
        let ev = alice
            .until(|e| matches!(e, NsEvent::ListRemoved { .. }))
            .await;
        assert!(matches!(
            ev.last(),
            Some(NsEvent::ListRemoved { group: Some(2), .. })
        ));
        alice.ns.remove_group(2);
        alice
            .until(|e| matches!(e, NsEvent::GroupRemoved { id: 2, .. }))
            .await;

        let t = alice.ns.remove_group(0);
        assert_eq!(alice.error_for(t).await, 224);
        let t = alice
            .ns
            .add_contact(List::Forward, "nobody@hotmail.com", "x", None);
        assert_eq!(alice.error_for(t).await, 205);
        let t = alice
            .ns
            .add_contact(List::Forward, "bob@hotmail.com", "Bob", None);
        assert_eq!(alice.error_for(t).await, 215);
        let t = alice
            .ns
            .remove_contact(List::Forward, "dave@hotmail.com", None);
        assert_eq!(alice.error_for(t).await, 216);
        let t = alice
            .ns
            .add_contact(List::Block, "bob@hotmail.com", "Bob", None);
        assert_eq!(alice.error_for(t).await, 219, "bob is on AL");

        // Blocking hides Alice from Bob.
        assert!(
            bob.wait_for_presence("alice@hotmail.com", Status::Online, T)
                .await
        );
        alice
            .ns
            .remove_contact(List::Allow, "bob@hotmail.com", None);
        alice
            .ns
            .add_contact(List::Block, "bob@hotmail.com", "Bob", None);
        alice
            .until(|e| {
                matches!(
                    e,
                    NsEvent::ListAdded {
                        list: List::Block,
                        ..
                    }
                )
            })
            .await;
        assert!(
            bob.wait_for_presence("alice@hotmail.com", Status::Offline, T)
                .await
        );

        // A wrong challenge answer ends the session with 540.
        alice
            .stream
            .write_all(b"QRY 99 PROD0038W!61ZTF9 32\r\n00000000000000000000000000000000")
            .await
            .unwrap();
        let ev = alice.until(|e| matches!(e, NsEvent::Error { .. })).await;
        assert!(
            matches!(
                ev.last(),
                Some(NsEvent::Error {
                    error: ServerError { code: 540, .. }
                })
            ),
            "{ev:?}"
        );
    }
}
