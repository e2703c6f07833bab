//! Display pictures on a switchboard: the fetch of a contact's picture
//! ([`msn_proto::PictureFetch`], the MSNSLP receiver) with the ids it needs, a deadline,
//! and the check that what arrived is a picture the bridge takes.

use std::time::Duration;

use msn_proto::p2p::CONTENT_TYPE_P2P;
use msn_proto::{FetchIds, FetchOutcome, Message, MsnObject, P2pMessageRef, PictureFetch};
use tokio::time::Instant;

use crate::core::Avatar;

/// A contact's client that has not sent the whole picture by then is given up on.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What a fetch answers a P2P message with: what to send back, and the outcome once
/// there is one.
pub type Step = (Vec<Message>, Option<Result<Avatar, String>>);

/// One picture being fetched on a switchboard.
pub struct Fetch {
    pub who: String,
    pub hash: String,
    pub deadline: Instant,
    session: PictureFetch,
}

impl Fetch {
    /// Starts fetching the picture `descriptor` (an MSNObject's XML) from `who`; the
    /// messages to send (`MSG ... D`).
    pub fn start(
        me: &str,
        who: &str,
        hash: &str,
        descriptor: &str,
    ) -> Result<(Fetch, Vec<Message>), String> {
        let object = MsnObject::parse(descriptor).map_err(|e| e.to_string())?;
        if !object.creator.eq_ignore_ascii_case(who) {
            return Err(format!("the picture announced is {}'s", object.creator));
        }
        let (session, invite) =
            PictureFetch::start(me, who, &object, new_ids(), Avatar::MAX_BYTES as u64);
        let fetch = Fetch {
            who: who.to_owned(),
            hash: hash.to_owned(),
            deadline: Instant::now() + FETCH_TIMEOUT,
            session,
        };
        if let Some(FetchOutcome::Failed(why)) = fetch.session.outcome() {
            return Err(why.clone());
        }
        Ok((fetch, invite.iter().map(|m| m.to_mime()).collect()))
    }

    /// Takes a message of the switchboard if it is P2P. `None`: not P2P, not the
    /// fetch's business.
    pub fn handle(&mut self, message: &Message) -> Option<Step> {
        let media = message
            .header("Content-Type")?
            .split(';')
            .next()?
            .trim_ascii();
        if !media.eq_ignore_ascii_case(CONTENT_TYPE_P2P) {
            return None;
        }
        let payload = message.to_bytes();
        let Ok(packet) = P2pMessageRef::parse(&payload) else {
            return Some((Vec::new(), None));
        };
        let out = self
            .session
            .handle(&packet)
            .iter()
            .map(|m| m.to_mime())
            .collect();
        let outcome = self.session.outcome().map(|outcome| match outcome {
            FetchOutcome::Picture(data) => Avatar::new(&self.hash, data.clone())
                .ok_or_else(|| "the picture is not an image the bridge takes".to_owned()),
            FetchOutcome::Failed(why) => Err(why.clone()),
        });
        Some((out, outcome))
    }
}

/// Random ids for one fetch: a non-zero session id, a message id base, and GUIDs.
fn new_ids() -> FetchIds {
    let random = || getrandom::u32().unwrap_or(0x5EED_1234);
    let guid = || {
        format!(
            "{{{:08X}-{:04X}-{:04X}-{:04X}-{:08X}{:04X}}}",
            random(),
            random() & 0xFFFF,
            random() & 0xFFFF,
            random() & 0xFFFF,
            random(),
            random() & 0xFFFF
        )
    };
    FetchIds {
        session_id: random().max(1),
        base_id: random() % 0x4000_0000 + 1,
        branch: guid(),
        call_id: guid(),
    }
}
