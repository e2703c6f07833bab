//! Simulated ICQ v2 server (UDP) and a scriptable ICQ client, built on `icq-proto`.
//!
//! The `icq:` section of the simulator's YAML file:
//!
//! ```yaml
//! icq:
//!   listen: "127.0.0.1:4000"   # UDP; port 0 picks a free one
//!   users:
//!     - uin: 1001
//!       password: "alice1"     # at most 8 characters
//!       nick: alice
//!       first: Alice
//!       last: Liddell
//!       email: alice@example.org
//!       auth: false            # true: "my authorization is required"
//!       contacts: [1002]       # announced at login (online or offline)
//!     - uin: 1002
//!       password: "bob2"
//!       nick: bob
//!       contacts: [1001]
//!       city: Stockholm        # optional extended info: city, country_code,
//!       age: 25                # age, sex (0/1 female/2 male), phone, homepage, about
//! ```
//!
//! Behaviour: LOGIN is checked against `users` (wrong password or unknown UIN:
//! BAD_PASSWORD, 0x0064). After the client's first CONTACT_LIST the server sends
//! USER_ONLINE for each online contact (the client's list plus the config's) and
//! USER_OFFLINE for offline ones from the config, then the messages stored while
//! the user was offline, with their original time. Logins, logouts and status
//! changes reach every online user who lists that user. SEND_MESSAGE goes to an
//! online recipient as RECEIVE_MESSAGE, or is stored. Searches (UIN, nick/name,
//! e-mail) and INFO/EXT_INFO come from `users`. ADD_TO_LIST also sends the added
//! user a "you were added" message. Packets are ACKed and retransmitted by
//! [`icq_proto::ServerSession`]; a client silent for 300 s is dropped. Packets from
//! an unknown session (e.g. after a restart) are answered with NOT_CONNECTED
//! (0x00F0), which tells a client to log in again.

pub mod client;
mod server;

pub use client::{client_cli, run_client, Client, ClientArgs};
pub use server::Server;

use icq_proto::{ExtInfo, UserRecord};
use serde::Deserialize;

/// The `icq:` section of the simulator's YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub users: Vec<User>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            users: Vec::new(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}

/// One account in the simulator's directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub uin: u32,
    pub password: String,
    #[serde(default)]
    pub nick: String,
    #[serde(default)]
    pub first: String,
    #[serde(default)]
    pub last: String,
    #[serde(default)]
    pub email: String,
    /// The user must authorize being added to contact lists.
    #[serde(default)]
    pub auth: bool,
    /// UINs whose presence this user is told about, whatever its client sends.
    #[serde(default)]
    pub contacts: Vec<u32>,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country_code: Option<u16>,
    #[serde(default)]
    pub age: Option<u16>,
    #[serde(default)]
    pub sex: u8,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub about: String,
}

impl User {
    fn record(&self) -> UserRecord {
        UserRecord {
            uin: self.uin,
            nick: self.nick.clone(),
            first: self.first.clone(),
            last: self.last.clone(),
            email: self.email.clone(),
            auth_required: self.auth,
        }
    }

    fn ext_info(&self) -> ExtInfo {
        ExtInfo {
            city: self.city.clone(),
            // The spec's "not entered" markers.
            country_code: self.country_code.unwrap_or(0xFFFF),
            country_status: if self.country_code.is_some() {
                0xFE
            } else {
                0x9C
            },
            state: String::new(),
            age: self.age.unwrap_or(0xFFFF),
            sex: self.sex,
            phone: self.phone.clone(),
            homepage: self.homepage.clone(),
            about: self.about.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use icq_proto::{ClientEvent, MessageContent, MessageKind, SearchQuery, Status};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    const ALICE: u32 = 1001;
    const BOB: u32 = 1002;
    const CAROL: u32 = 1003;
    const WAIT: Duration = Duration::from_secs(5);

    fn config() -> Config {
        let yaml = r#"
listen: "127.0.0.1:0"
users:
  - { uin: 1001, password: alice1, nick: alice, first: Alice, last: Liddell, email: alice@example.org, contacts: [1002] }
  - { uin: 1002, password: bob2, nick: bob, first: Bob, email: bob@example.org, contacts: [1001], city: Umea, age: 25, sex: 2 }
  - { uin: 1003, password: carol3, nick: carol, first: Carol }
"#;
        serde_yaml::from_str(yaml).unwrap()
    }

    fn online(uin: u32) -> impl FnMut(&ClientEvent) -> bool {
        move |e| matches!(e, ClientEvent::ContactOnline { uin: u, .. } if *u == uin)
    }

    #[tokio::test]
    async fn two_clients_see_each_other_and_chat() {
        let server = Server::start(config()).await.unwrap();
        let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
        let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
        // Alice's contact list (from the config) includes Bob, who is online.
        assert!(alice.wait_for(WAIT, online(BOB)).await.is_some());
        // Bob lists Alice: he sees her log in.
        assert!(bob.wait_for(WAIT, online(ALICE)).await.is_some());

        alice
            .send_message_acked(BOB, "Hi Bob! café", WAIT)
            .await
            .unwrap();
        let Some(ClientEvent::Message { text, kind, .. }) = bob.wait_for_message(ALICE, WAIT).await
        else {
            panic!("no message");
        };
        assert_eq!((text.as_str(), kind), ("Hi Bob! café", MessageKind::Text));

        bob.set_status(Status::AWAY).await.unwrap();
        let status = alice
            .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactStatus { .. }))
            .await;
        assert_eq!(
            status,
            Some(ClientEvent::ContactStatus {
                uin: BOB,
                status: Status::AWAY
            })
        );

        bob.logout().await;
        let gone = alice
            .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
            .await;
        assert_eq!(gone, Some(ClientEvent::ContactOffline { uin: BOB }));
    }

    #[tokio::test]
    async fn offline_message_is_delivered_at_next_login_with_its_time() {
        let server = Server::start(config()).await.unwrap();
        let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
        let offline = alice
            .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
            .await;
        assert_eq!(offline, Some(ClientEvent::ContactOffline { uin: BOB }));
        let before = unix_now();
        alice
            .send_message_acked(BOB, "while you were out", WAIT)
            .await
            .unwrap();
        let after = unix_now();
        tokio::time::sleep(Duration::from_millis(50)).await;

        let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
        let Some(ClientEvent::Message {
            text, timestamp, ..
        }) = bob.wait_for_message(ALICE, WAIT).await
        else {
            panic!("no offline message");
        };
        assert_eq!(text, "while you were out");
        let sent_at = timestamp.to_unix_seconds().unwrap();
        assert!(
            sent_at >= before - before % 60 && sent_at <= after,
            "{timestamp:?}"
        );
        // Delivered once: a second login has nothing waiting.
        bob.logout().await;
        let mut bob = Client::login(server.addr(), BOB, "bob2").await.unwrap();
        assert!(bob
            .wait_for_message(ALICE, Duration::from_millis(500))
            .await
            .is_none());
    }

    #[tokio::test]
    async fn wrong_password_is_refused() {
        let server = Server::start(config()).await.unwrap();
        let err = Client::login(server.addr(), ALICE, "nope")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("wrong password"), "{err}");
        let err = Client::login(server.addr(), 4242, "x").await.err().unwrap();
        assert!(err.to_string().contains("wrong password"), "{err}");
        let err = Client::login(server.addr(), ALICE, "123456789")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("at most 8"), "{err}");
    }

    #[tokio::test]
    async fn search_info_and_added() {
        let server = Server::start(config()).await.unwrap();
        let mut alice = Client::login(server.addr(), ALICE, "alice1").await.unwrap();
        let (found, more) = alice.search(SearchQuery::Uin(BOB), WAIT).await.unwrap();
        assert_eq!(
            (found.len(), found[0].nick.as_str(), more),
            (1, "bob", false)
        );
        let name = SearchQuery::Name {
            nick: String::new(),
            first: "carol".into(),
            last: String::new(),
        };
        let (found, _) = alice.search(name, WAIT).await.unwrap();
        assert_eq!(found.iter().map(|u| u.uin).collect::<Vec<_>>(), vec![CAROL]);
        let (found, _) = alice
            .search(SearchQuery::Email("BOB@example.org".into()), WAIT)
            .await
            .unwrap();
        assert_eq!(found[0].uin, BOB);
        let (found, _) = alice
            .search(SearchQuery::Email("none@x".into()), WAIT)
            .await
            .unwrap();
        assert!(found.is_empty());

        let info = alice.info(BOB, WAIT).await.unwrap();
        assert_eq!(
            (info.first.as_str(), info.email.as_str()),
            ("Bob", "bob@example.org")
        );
        let ext = alice.ext_info(BOB, WAIT).await.unwrap();
        assert_eq!(
            (ext.city.as_str(), ext.age, ext.sex, ext.country_code),
            ("Umea", 25, 2, 0xFFFF)
        );

        let mut carol = Client::login(server.addr(), CAROL, "carol3").await.unwrap();
        alice.add_contact(CAROL).await.unwrap();
        assert!(alice.wait_for(WAIT, online(CAROL)).await.is_some());
        let Some(ClientEvent::Message { content, .. }) = carol.wait_for_message(ALICE, WAIT).await
        else {
            panic!("no 'you were added'");
        };
        assert!(matches!(content, MessageContent::Added { nick, .. } if nick == "alice"));
    }

    #[tokio::test]
    async fn restart_on_the_same_address_sends_clients_back_to_login() {
        let mut server = Server::start(config()).await.unwrap();
        let addr = server.addr();
        let mut alice = Client::login(addr, ALICE, "alice1").await.unwrap();
        server.restart().await.unwrap();
        assert_eq!(server.addr(), addr);
        // The old session's next packet is answered with NOT_CONNECTED.
        alice.send_message(BOB, "anyone?").await.unwrap();
        let ended = alice
            .wait_for(WAIT, |e| matches!(e, ClientEvent::Disconnected { .. }))
            .await;
        assert!(ended.is_some());
        let mut again = Client::login(addr, ALICE, "alice1").await.unwrap();
        assert!(again
            .wait_for(WAIT, |e| matches!(e, ClientEvent::ContactOffline { .. }))
            .await
            .is_some());
    }

    fn unix_now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}
