//! The member's side of groups: one link per host (a libp2p stream, or straight to this peer's
//! own [`Groups`] for its own pages) carries every group its pages are in; each page gets its
//! own bounded mailbox of the host's frames.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use goop_script::Peer;
use libp2p::PeerId;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, OnceCell};

use super::host::{member_mailbox, Groups};
use super::mailbox::Mailbox;
use super::wire::{self, ToHost};
use super::{check_name, GroupError, MAILBOX_BYTES, MAILBOX_MESSAGES, MAX_MESSAGE_BYTES, PROTOCOL};

/// Pages (across all hosts) one peer's viewer keeps in groups at once.
pub const MAX_PAGES: usize = 64;
/// How long a join or a send waits for the host's answer (its hooks run up to 60 s).
const ANSWER_WAIT: Duration = Duration::from_secs(70);
/// Frames waiting to go to one host.
const OUTGOING: usize = 64;

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<(), String>>>>;

/// One host's link once open, held while it is being opened.
type LinkSlot = tokio::sync::Mutex<Option<Arc<Link>>>;

/// One host's link.
struct Link {
    out: mpsc::Sender<Vec<u8>>,
    /// False once the host's side ended.
    alive: AtomicBool,
    pending: Pending,
    /// Group → its pages here.
    pages: Mutex<HashMap<String, GroupPages>>,
    next_id: AtomicU64,
}

/// The pages of one group at one host, and the host's answer to this peer joining it (asked
/// once, awaited by every page that joins meanwhile).
struct GroupPages {
    mailboxes: Vec<Weak<Mailbox>>,
    joined: Arc<OnceCell<Result<(), GroupError>>>,
}

/// The links of this peer, one per host.
pub struct Links {
    me: Peer,
    own: Arc<Groups>,
    control: libp2p_stream::Control,
    /// Per host, its link once open. Opening holds the host's slot, so pages that join a host at
    /// once share one link: a second stream would replace the first at the host and end it.
    links: Mutex<HashMap<PeerId, Arc<LinkSlot>>>,
    pages: Arc<AtomicU64>,
}

/// A page in a group; leaving is dropping it (the last page of a group leaves at the host).
pub struct Subscription {
    pub mailbox: Arc<Mailbox>,
    link: Arc<Link>,
    group: String,
    pages: Arc<AtomicU64>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.pages.fetch_sub(1, Ordering::AcqRel);
        let mut pages = lock(&self.link.pages);
        let Some(group) = pages.get_mut(&self.group) else { return };
        group.mailboxes.retain(|w| w.upgrade().is_some_and(|m| !Arc::ptr_eq(&m, &self.mailbox)));
        if group.mailboxes.is_empty() {
            pages.remove(&self.group);
            let _ = self.link.out.try_send(ToHost::Leave { group: self.group.clone() }.encode());
        }
    }
}

impl Links {
    pub fn new(me: Peer, own: Arc<Groups>, control: libp2p_stream::Control) -> Arc<Links> {
        Arc::new(Links { me, own, control, links: Mutex::new(HashMap::new()), pages: Arc::default() })
    }

    /// Joins `group` at `host` for one page.
    pub async fn join(&self, host: PeerId, group: &str) -> Result<Subscription, GroupError> {
        check_name(group).map_err(GroupError::Refused)?;
        if self.pages.fetch_add(1, Ordering::AcqRel) >= MAX_PAGES as u64 {
            self.pages.fetch_sub(1, Ordering::AcqRel);
            return Err(GroupError::Refused(format!("at most {MAX_PAGES} pages may be in groups at once")));
        }
        let link = match self.link(host).await {
            Ok(link) => link,
            Err(e) => {
                self.pages.fetch_sub(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        let mailbox = Mailbox::new(MAILBOX_MESSAGES, MAILBOX_BYTES);
        let subscription = Subscription {
            mailbox: mailbox.clone(),
            link: link.clone(),
            group: group.to_string(),
            pages: self.pages.clone(),
        };
        let joined = {
            let mut pages = lock(&link.pages);
            let entry = pages
                .entry(group.to_string())
                .or_insert_with(|| GroupPages { mailboxes: Vec::new(), joined: Arc::new(OnceCell::new()) });
            entry.mailboxes.push(Arc::downgrade(&mailbox));
            entry.joined.clone()
        };
        let answer = joined
            .get_or_init(|| async {
                let id = link.next_id.fetch_add(1, Ordering::Relaxed);
                link.ask(id, ToHost::Join { id, group: group.to_string() }).await
            })
            .await
            .clone();
        if let Err(e) = answer {
            // Refused: the next page to try asks the host again.
            let mut pages = lock(&link.pages);
            if pages.get(group).is_some_and(|g| Arc::ptr_eq(&g.joined, &joined)) {
                pages.remove(group);
            }
            return Err(e);
        }
        Ok(subscription)
    }

    /// Sends `message` to `group` at `host` (its scripts' `on_group_message`).
    pub async fn send(&self, host: PeerId, group: &str, message: &RawValue) -> Result<(), GroupError> {
        check_name(group).map_err(GroupError::Refused)?;
        if message.get().len() > MAX_MESSAGE_BYTES {
            let kb = MAX_MESSAGE_BYTES / 1024;
            return Err(GroupError::Refused(format!("a message is at most {kb} KB of JSON")));
        }
        let message = serde_json::from_str(message.get()).map_err(|e| GroupError::Refused(e.to_string()))?;
        let link = self.link(host).await?;
        let id = link.next_id.fetch_add(1, Ordering::Relaxed);
        link.ask(id, ToHost::Send { id, group: group.to_string(), message }).await
    }

    /// The link to `host`, opened if needed.
    async fn link(&self, host: PeerId) -> Result<Arc<Link>, GroupError> {
        let slot = lock(&self.links).entry(host).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| l.alive.load(Ordering::Acquire)) {
            return Ok(link.clone());
        }
        let (to_host, from_member) = mpsc::channel::<Vec<u8>>(OUTGOING);
        let (from_host, incoming) = mpsc::channel::<Arc<[u8]>>(OUTGOING);
        if host.to_string() == self.me.id {
            // This peer's own pages: straight to its own groups, no network.
            let mailbox = member_mailbox();
            tokio::spawn(self.own.clone().serve(self.me.clone(), from_member, mailbox.clone()));
            tokio::spawn(wire::drain(mailbox, from_host));
        } else {
            let opened = tokio::time::timeout(ANSWER_WAIT, self.control.clone().open_stream(host, PROTOCOL)).await;
            let stream = match opened {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(GroupError::Unreachable(format!("cannot reach the host: {e}"))),
                Err(_) => return Err(GroupError::Unreachable("cannot reach the host: timed out".into())),
            };
            tokio::spawn(wire::member_leg(stream, from_member, from_host));
        }
        let link = Arc::new(Link {
            out: to_host,
            alive: AtomicBool::new(true),
            pending: Mutex::default(),
            pages: Mutex::default(),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(deliver(Arc::downgrade(&link), incoming));
        *slot = Some(link.clone());
        Ok(link)
    }
}

impl Link {
    /// Sends a request frame and waits for the host's reply to it.
    async fn ask(&self, id: u64, frame: ToHost) -> Result<(), GroupError> {
        let (reply, answer) = oneshot::channel();
        lock(&self.pending).insert(id, reply);
        let started = tokio::time::Instant::now();
        // The queue to the host is full only while the host does not read: the wait is bounded.
        let sent = tokio::time::timeout(ANSWER_WAIT, self.out.send(frame.encode())).await;
        if !matches!(sent, Ok(Ok(()))) {
            lock(&self.pending).remove(&id);
            return Err(GroupError::Unreachable("the link to the host is closed or stuck".into()));
        }
        match tokio::time::timeout_at(started + ANSWER_WAIT, answer).await {
            Ok(Ok(result)) => result.map_err(GroupError::Refused),
            Ok(Err(_)) => Err(GroupError::Unreachable("the link to the host closed".into())),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(GroupError::Unreachable("the host did not answer in time".into()))
            }
        }
    }
}

/// The host's frames, as they come: replies settle requests; messages and missed counts go to
/// the mailbox of every page in their group.
async fn deliver(link: Weak<Link>, mut incoming: mpsc::Receiver<Arc<[u8]>>) {
    #[derive(Deserialize)]
    struct Head {
        r#type: String,
        id: Option<u64>,
        group: Option<String>,
        error: Option<String>,
        count: Option<u64>,
    }
    while let Some(frame) = incoming.recv().await {
        let Some(link) = link.upgrade() else { break };
        let Ok(head) = serde_json::from_slice::<Head>(&frame) else { break };
        match (head.r#type.as_str(), head.id, head.group) {
            ("reply", Some(id), _) => {
                if let Some(reply) = lock(&link.pending).remove(&id) {
                    let _ = reply.send(head.error.map_or(Ok(()), Err));
                }
            }
            (kind, _, Some(group)) => {
                let pages = lock(&link.pages).get(&group).map(|g| g.mailboxes.clone()).unwrap_or_default();
                let name: Arc<str> = group.into();
                for page in pages.iter().filter_map(Weak::upgrade) {
                    // What the host missed adds up with what the page misses, not counted as one.
                    match (kind, head.count) {
                        ("missed", Some(count)) => page.add_missed(&name, count),
                        _ => page.push(&name, &frame),
                    }
                }
            }
            _ => break,
        }
    }
    // The host is gone: every page's stream ends, so its SDK joins again.
    if let Some(link) = link.upgrade() {
        link.alive.store(false, Ordering::Release);
        for page in lock(&link.pages).values().flat_map(|g| &g.mailboxes).filter_map(Weak::upgrade) {
            page.close();
        }
        lock(&link.pending).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
