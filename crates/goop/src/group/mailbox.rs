//! A bounded mailbox for one member or one page: replies are kept, messages past
//! [`MAILBOX_MESSAGES`](super::MAILBOX_MESSAGES) or [`MAILBOX_BYTES`](super::MAILBOX_BYTES)
//! push out the oldest, and the reader is told how many it missed per group, so a page can
//! fetch the state again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::wire::ToMember;

/// Replies a member may leave unread before its session is closed.
const MAX_REPLIES: usize = 64;

#[derive(Default)]
struct State {
    replies: VecDeque<Vec<u8>>,
    /// `(group, encoded message frame)`; one encoding shared by every mailbox it went to.
    messages: VecDeque<(Arc<str>, Arc<[u8]>)>,
    /// Bytes of the frames in `messages`.
    bytes: usize,
    missed: BTreeMap<Arc<str>, u64>,
    closed: bool,
}

pub struct Mailbox {
    capacity: usize,
    /// Most bytes of messages held: without it a reader that does not read holds `capacity`
    /// messages of up to 64 KB each, in every one of its pages.
    max_bytes: usize,
    state: Mutex<State>,
    ready: Notify,
}

impl Mailbox {
    pub fn new(capacity: usize, max_bytes: usize) -> Arc<Mailbox> {
        Arc::new(Mailbox { capacity, max_bytes, state: Mutex::new(State::default()), ready: Notify::new() })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a reply; false when too many are unread (the reader is not reading).
    pub fn reply(&self, frame: Vec<u8>) -> bool {
        let mut state = self.state();
        if state.replies.len() >= MAX_REPLIES {
            return false;
        }
        state.replies.push_back(frame);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Queues a message frame of `group`; when full, the oldest message goes and is counted.
    pub fn push(&self, group: &Arc<str>, frame: &Arc<[u8]>) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        while state.messages.len() >= self.capacity || state.bytes + frame.len() > self.max_bytes {
            let Some((dropped, old)) = state.messages.pop_front() else { break };
            state.bytes -= old.len();
            *state.missed.entry(dropped).or_default() += 1;
        }
        state.bytes += frame.len();
        state.messages.push_back((group.clone(), frame.clone()));
        drop(state);
        self.ready.notify_one();
    }

    /// Counts `count` messages of `group` as missed (the host already dropped them).
    pub fn add_missed(&self, group: &Arc<str>, count: u64) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        // Saturating: the count comes from the host, which may be hostile.
        let missed = state.missed.entry(group.clone()).or_default();
        *missed = missed.saturating_add(count);
        drop(state);
        self.ready.notify_one();
    }

    /// Ends the mailbox: the reader gets what is queued, then `None`.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// The next frame to send: replies first, then what was missed, then messages.
    pub async fn next(&self) -> Option<Arc<[u8]>> {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state();
                if let Some(reply) = state.replies.pop_front() {
                    return Some(reply.into());
                }
                if let Some((group, count)) = state.missed.pop_first() {
                    let frame = ToMember::Missed { group: group.to_string(), count }.encode();
                    return Some(frame.into());
                }
                if let Some((_, frame)) = state.messages.pop_front() {
                    state.bytes -= frame.len();
                    return Some(frame);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_mailbox_drops_the_oldest_and_says_how_many_per_group() {
        let mailbox = Mailbox::new(3, usize::MAX);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        for i in 0..5u8 {
            mailbox.push(if i < 3 { &a } else { &b }, &Arc::from(vec![i]));
        }
        assert!(mailbox.reply(b"reply".to_vec()));
        mailbox.close();
        let mut got = Vec::new();
        while let Some(frame) = mailbox.next().await {
            got.push(frame.to_vec());
        }
        let missed = br#"{"type":"missed","group":"a","count":2}"#.to_vec();
        assert_eq!(got, vec![b"reply".to_vec(), missed, vec![2], vec![3], vec![4]]);
    }

    #[tokio::test]
    async fn messages_past_the_byte_bound_push_out_the_oldest() {
        let mailbox = Mailbox::new(128, 10);
        let group: Arc<str> = "g".into();
        for i in 0..4u8 {
            mailbox.push(&group, &Arc::from(vec![i; 4]));
        }
        mailbox.close();
        let mut got = Vec::new();
        while let Some(frame) = mailbox.next().await {
            got.push(frame.to_vec());
        }
        let missed = br#"{"type":"missed","group":"g","count":2}"#.to_vec();
        assert_eq!(got, vec![missed, vec![2; 4], vec![3; 4]]);
    }

    #[tokio::test]
    async fn a_hosts_missed_counts_add_up_without_overflowing() {
        let mailbox = Mailbox::new(128, usize::MAX);
        let group: Arc<str> = "g".into();
        mailbox.add_missed(&group, 3);
        mailbox.add_missed(&group, 4);
        assert_eq!(mailbox.next().await.as_deref(), Some(&br#"{"type":"missed","group":"g","count":7}"#[..]));
        mailbox.add_missed(&group, u64::MAX);
        mailbox.add_missed(&group, u64::MAX);
        let most = format!(r#"{{"type":"missed","group":"g","count":{}}}"#, u64::MAX);
        assert_eq!(mailbox.next().await.as_deref(), Some(most.as_bytes()));
    }
}
