//! Answers other peers' requests on blocking threads, within the budget: the room for an
//! answer is taken before it is built, and refusals are short and say nothing internal.

use std::sync::Arc;

use goop_script::Peer;
use libp2p::PeerId;
use tokio::sync::broadcast;

use super::budget::{Budget, Busy};
use super::services::{ChatOutcome, Services};
use super::{Incoming, Proto};
use crate::protocol::chat;
use crate::protocol::codec::Response;
use crate::protocol::site::{self, SiteAnswer};

/// Host bytes a parsed data request may take per byte of its text, charged while it is answered.
const PARSED_BYTES_PER_BYTE: usize = 16;

/// One inbound request and what answering it needs.
pub(super) struct Request {
    pub proto: Proto,
    pub peer: PeerId,
    pub caller: Peer,
    pub body: Vec<u8>,
    pub services: Option<Arc<Services>>,
    pub budget: Budget,
    pub incoming: broadcast::Sender<Incoming>,
}

/// The answer, and for a chat command the reply to send back as a direct message.
pub(super) fn answer(r: Request) -> (Response, Option<String>) {
    // A client-only node (the remote CLI) still takes direct messages: replies to its commands.
    if r.proto == Proto::Chat {
        return chat(r.services.as_deref(), &r.caller, r.peer, &r.body, &r.incoming);
    }
    let Some(services) = r.services else {
        return (refusal(r.proto, "this peer serves nothing"), None);
    };
    match r.proto {
        Proto::Data => {
            // Parsed JSON takes up to about 16 times its text (`[0,0,…]`: 2 bytes, a 32-byte
            // node each); that room is held while the request is answered.
            let parsing = match r.budget.answer(r.peer, r.body.len().saturating_mul(PARSED_BYTES_PER_BYTE)) {
                Ok(charge) => charge,
                Err(busy) => return (busy_answer(r.proto, busy), None),
            };
            let bytes = services.data(&r.caller, &r.body);
            drop(parsing);
            match r.budget.answer(r.peer, bytes.len()) {
                Ok(charge) => (Response::charged(bytes, charge), None),
                Err(busy) => (busy_answer(r.proto, busy), None),
            }
        }
        Proto::Site => (site_answer(&services, r.peer, &r.body, &r.budget), None),
        Proto::Chat | Proto::Profile => (refusal(r.proto, "unexpected request"), None),
    }
}

fn chat(
    services: Option<&Services>,
    caller: &Peer,
    peer: PeerId,
    body: &[u8],
    incoming: &broadcast::Sender<Incoming>,
) -> (Response, Option<String>) {
    match chat::parse(body) {
        Err(e) => (chat::ack(Err(e)).into(), None),
        Ok(message) => {
            // A client-only node (the remote CLI) keeps every message: its commands' replies.
            let outcome = services.map_or(ChatOutcome::Kept, |s| s.chat(caller, &message));
            let reply = match outcome {
                ChatOutcome::Reply(text) => Some(text),
                ChatOutcome::Done => None,
                ChatOutcome::Kept => {
                    let _ =
                        incoming.send(Incoming { from: peer, label: caller.label.clone(), content: message.content });
                    None
                }
            };
            (chat::ack(Ok(())).into(), reply)
        }
    }
}

/// A site file's room is taken from the budget (its size from metadata) before it is read.
fn site_answer(services: &Services, peer: PeerId, body: &[u8], budget: &Budget) -> Response {
    match services.site.find(body) {
        Err(reason) => site::encode(SiteAnswer::Refused(reason)).into(),
        Ok(found) => match budget.answer(peer, found.answer_len()) {
            Ok(charge) => Response::charged(found.encode(), charge),
            Err(busy) => busy_answer(Proto::Site, busy),
        },
    }
}

/// A refusal because a budget is spent.
pub(super) fn busy_answer(proto: Proto, busy: Busy) -> Response {
    refusal(proto, &busy.to_string())
}

/// A refusal in `proto`'s wire format: `{"ok":false,"error":…}`, plus a newline for a site answer.
pub(super) fn refusal(proto: Proto, message: &str) -> Response {
    let mut bytes = serde_json::to_vec(&serde_json::json!({ "ok": false, "error": message })).unwrap_or_default();
    if proto == Proto::Site {
        bytes.push(b'\n');
    }
    bytes.into()
}
