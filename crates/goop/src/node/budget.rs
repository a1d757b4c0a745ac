//! What remote peers may make this peer hold at once: requests in progress and bytes of answers
//! in flight, each per peer and in total. Taken before the work, given back when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use libp2p::PeerId;

/// The transport's bounds on remote peers (`p2p` in goop.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections one peer may have open, both directions.
    pub connections_per_peer: u32,
    /// Connections other peers may have open to this one.
    pub incoming_connections: u32,
    /// Incoming connections still in their handshake.
    pub pending_connections: u32,
    /// Streams of one protocol open at once on one connection.
    pub streams_per_connection: usize,
    /// Requests from one peer being answered at once.
    pub requests_per_peer: usize,
    /// Requests being answered at once, from everyone.
    pub requests: usize,
    /// Bytes of answers handed to the network and not yet sent, for everyone.
    pub answer_bytes: usize,
    /// The same for one peer.
    pub answer_bytes_per_peer: usize,
}

const MB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_per_peer: 4,
            incoming_connections: 256,
            pending_connections: 32,
            streams_per_connection: 64,
            requests_per_peer: 16,
            requests: 128,
            answer_bytes: 64 * MB,
            answer_bytes_per_peer: 16 * MB,
        }
    }
}

/// Why a request was refused at once. The text goes to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("busy: too many requests from you in progress")]
    PeerRequests,
    #[error("busy: this peer is answering too many requests, try again")]
    Requests,
    #[error("busy: too many answers to you are still unread, try again")]
    PeerAnswers,
    #[error("busy: this peer has too many answers in flight, try again")]
    Answers,
}

/// Counts of something held, per peer and in total.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    by_peer: HashMap<PeerId, usize>,
}

impl Tally {
    fn take(&mut self, peer: PeerId, n: usize, per_peer: usize, total: usize) -> Result<(), Over> {
        let held = self.by_peer.get(&peer).copied().unwrap_or(0);
        if held + n > per_peer {
            return Err(Over::Peer);
        }
        if self.total + n > total {
            return Err(Over::Total);
        }
        self.total += n;
        self.by_peer.insert(peer, held + n);
        Ok(())
    }

    fn give(&mut self, peer: &PeerId, n: usize) {
        self.total = self.total.saturating_sub(n);
        if let Some(held) = self.by_peer.get_mut(peer) {
            *held = held.saturating_sub(n);
            if *held == 0 {
                self.by_peer.remove(peer);
            }
        }
    }
}

enum Over {
    Peer,
    Total,
}

#[derive(Debug, Default)]
struct Held {
    requests: Tally,
    answer_bytes: Tally,
}

/// The shared budget. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    held: Arc<Mutex<Held>>,
}

fn lock(held: &Mutex<Held>) -> MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget { limits, held: Arc::default() }
    }

    /// A place for one request from `peer` in progress, or why not.
    pub fn request(&self, peer: PeerId) -> Result<RequestSlot, Busy> {
        let l = &self.limits;
        match lock(&self.held).requests.take(peer, 1, l.requests_per_peer, l.requests) {
            Ok(()) => Ok(RequestSlot { held: self.held.clone(), peer }),
            Err(Over::Peer) => Err(Busy::PeerRequests),
            Err(Over::Total) => Err(Busy::Requests),
        }
    }

    /// Room for an answer of `bytes` to `peer` until it is sent, or why not.
    pub fn answer(&self, peer: PeerId, bytes: usize) -> Result<AnswerCharge, Busy> {
        let l = &self.limits;
        match lock(&self.held).answer_bytes.take(peer, bytes, l.answer_bytes_per_peer, l.answer_bytes) {
            Ok(()) => Ok(AnswerCharge { held: self.held.clone(), peer, bytes }),
            Err(Over::Peer) => Err(Busy::PeerAnswers),
            Err(Over::Total) => Err(Busy::Answers),
        }
    }

    /// Requests in progress and answer bytes in flight now, in total.
    #[cfg(test)]
    fn in_use(&self) -> (usize, usize) {
        let held = lock(&self.held);
        (held.requests.total, held.answer_bytes.total)
    }
}

/// One request in progress; the place is free again when this is dropped.
#[derive(Debug)]
pub struct RequestSlot {
    held: Arc<Mutex<Held>>,
    peer: PeerId,
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        lock(&self.held).requests.give(&self.peer, 1);
    }
}

/// Bytes of one answer in flight; given back when this is dropped, with the answer's bytes.
#[derive(Debug)]
pub struct AnswerCharge {
    held: Arc<Mutex<Held>>,
    peer: PeerId,
    bytes: usize,
}

impl Drop for AnswerCharge {
    fn drop(&mut self) {
        lock(&self.held).answer_bytes.give(&self.peer, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Budget {
        Budget::new(Limits {
            requests_per_peer: 2,
            requests: 3,
            answer_bytes: 10,
            answer_bytes_per_peer: 6,
            ..Limits::default()
        })
    }

    #[test]
    fn requests_are_capped_per_peer_then_in_total() {
        let budget = small();
        let (a, b) = (PeerId::random(), PeerId::random());
        let a1 = budget.request(a).unwrap();
        let _a2 = budget.request(a).unwrap();
        assert_eq!(budget.request(a).unwrap_err(), Busy::PeerRequests);
        let _b1 = budget.request(b).unwrap();
        assert_eq!(budget.request(b).unwrap_err(), Busy::Requests);
        drop(a1);
        assert!(budget.request(b).is_ok());
    }

    #[test]
    fn answer_bytes_are_capped_and_given_back_on_drop() {
        let budget = small();
        let (a, b) = (PeerId::random(), PeerId::random());
        let a1 = budget.answer(a, 5).unwrap();
        assert_eq!(budget.answer(a, 2).unwrap_err(), Busy::PeerAnswers);
        let b1 = budget.answer(b, 5).unwrap();
        assert_eq!(budget.answer(b, 1).unwrap_err(), Busy::Answers);
        assert_eq!(budget.in_use().1, 10);
        drop((a1, b1));
        assert_eq!(budget.in_use(), (0, 0));
        assert!(budget.answer(a, 6).is_ok());
    }

    #[test]
    fn a_refused_charge_holds_nothing() {
        let budget = small();
        let peer = PeerId::random();
        assert!(budget.answer(peer, 7).is_err());
        assert_eq!(budget.in_use(), (0, 0));
        assert!(lock(&budget.held).answer_bytes.by_peer.is_empty());
    }
}
