//! The host's side of groups: who is in which group, one session per member peer, and the
//! `on_group_*` hooks that let the host's scripts admit members and hear what pages send.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use goop_script::{Engine, HandlerRun, KeyedRates, Peer};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::mailbox::Mailbox;
use super::wire::{ToHost, ToMember};
use super::{
    check_name, JOIN, LEAVE, MAILBOX_BYTES, MAILBOX_MESSAGES, MAX_GROUPS_PER_MEMBER, MESSAGE, SENDS_PER_MINUTE,
};
use crate::events::{verdict, Verdict};

struct Member {
    label: String,
    /// Which session holds the member now; a newer one replaces it.
    session: u64,
    mailbox: Arc<Mailbox>,
    groups: BTreeSet<String>,
}

#[derive(Default)]
struct State {
    /// Group name → member peer IDs.
    groups: BTreeMap<String, BTreeSet<String>>,
    members: HashMap<String, Member>,
    next_session: u64,
}

/// The groups this peer hosts. Shared by the node (member sessions), `goop.group` and the viewer.
#[derive(Default)]
pub struct Groups {
    state: Mutex<State>,
    engine: OnceLock<Weak<Engine>>,
    sends: KeyedRates,
}

impl Groups {
    pub fn new() -> Arc<Groups> {
        Arc::new(Groups::default())
    }

    /// The engine whose scripts hear the `on_group_*` events (set once it exists: it needs
    /// `goop.group`, built over this).
    pub fn set_engine(&self, engine: &Arc<Engine>) {
        let _ = self.engine.set(Arc::downgrade(engine));
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `message` (JSON text) for every member of `group`, or those of them in `to`.
    /// Returns how many members it was queued for.
    pub fn send(&self, group: &str, message: &str, to: Option<&[String]>) -> Result<usize, String> {
        check_name(group)?;
        let message = serde_json::value::RawValue::from_string(message.to_string()).map_err(|e| e.to_string())?;
        let frame: Arc<[u8]> = ToMember::Message { group: group.to_string(), message }.encode().into();
        let name: Arc<str> = group.into();
        let state = self.state();
        let Some(ids) = state.groups.get(group) else { return Ok(0) };
        let mut queued = 0;
        for id in ids.iter().filter(|id| to.is_none_or(|to| to.contains(id))) {
            if let Some(member) = state.members.get(id) {
                member.mailbox.push(&name, &frame);
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// The members of `group`, by peer ID.
    pub fn members(&self, group: &str) -> Vec<Peer> {
        let state = self.state();
        let ids = state.groups.get(group).into_iter().flatten();
        ids.filter_map(|id| state.members.get(id).map(|m| Peer::new(id.clone(), m.label.clone()))).collect()
    }

    /// Takes a member's stream: its frames are served until it or the host ends it.
    pub fn admit(self: &Arc<Self>, peer: Peer, stream: libp2p::Stream) {
        let (frames, from_member) = mpsc::channel(16);
        let mailbox = member_mailbox();
        tokio::spawn(super::wire::host_leg(stream, frames, mailbox.clone()));
        tokio::spawn(self.clone().serve(peer, from_member, mailbox));
    }

    /// Serves one member session: `frames` are what `peer` sends, `mailbox` what it is sent.
    /// A newer session of the same peer ends this one. When it ends, the member leaves every
    /// group it was in.
    pub async fn serve(self: Arc<Self>, peer: Peer, mut frames: mpsc::Receiver<Vec<u8>>, mailbox: Arc<Mailbox>) {
        let (session, replaced) = self.open(&peer, mailbox.clone());
        // The scripts hear every join matched by a leave, a replaced session's too.
        for group in replaced {
            let _ = self.hook(LEAVE, &peer, vec![json!(group), peer_value(&peer)]).await;
        }
        while let Some(frame) = frames.recv().await {
            let reply = match serde_json::from_slice::<ToHost>(&frame) {
                Err(e) => {
                    tracing::debug!(peer = %peer.id, "malformed group frame: {e}");
                    break;
                }
                Ok(ToHost::Join { id, group }) => Some((id, self.join(&peer, session, &group).await)),
                Ok(ToHost::Leave { group }) => {
                    self.leave(&peer, session, &group).await;
                    None
                }
                Ok(ToHost::Send { id, group, message }) => Some((id, self.receive(&peer, &group, message).await)),
            };
            if let Some((id, result)) = reply {
                let frame = ToMember::Reply { id, error: result.err() }.encode();
                if !mailbox.reply(frame) {
                    break; // it does not read its replies
                }
            }
            if mailbox.is_closed() {
                break; // replaced by a newer session
            }
        }
        mailbox.close();
        self.close(&peer, session).await;
    }

    /// Registers the session; returns its number and the groups a session it replaced was in.
    fn open(&self, peer: &Peer, mailbox: Arc<Mailbox>) -> (u64, BTreeSet<String>) {
        let mut state = self.state();
        state.next_session += 1;
        let session = state.next_session;
        let member = Member { label: peer.label.clone(), session, mailbox, groups: BTreeSet::new() };
        let mut left = BTreeSet::new();
        if let Some(old) = state.members.insert(peer.id.clone(), member) {
            // The old session's groups are not carried over: its pages join again.
            old.mailbox.close();
            for group in &old.groups {
                remove(&mut state.groups, group, &peer.id);
            }
            left = old.groups;
        }
        (session, left)
    }

    async fn join(&self, peer: &Peer, session: u64, group: &str) -> Result<(), String> {
        check_name(group)?;
        {
            let state = self.state();
            let member = state.members.get(&peer.id).filter(|m| m.session == session).ok_or("not a member")?;
            if member.groups.contains(group) {
                return Ok(());
            }
            if member.groups.len() >= MAX_GROUPS_PER_MEMBER {
                return Err(format!("a peer may be in at most {MAX_GROUPS_PER_MEMBER} groups here"));
            }
        }
        // A member only once its hook said yes: a peer that is refused never gets a frame of the
        // group, even one sent while the hook ran (so what `on_group_join` sends reaches the
        // members already in, not the joiner).
        self.hook(JOIN, peer, vec![json!(group), peer_value(peer)]).await?;
        if self.enter(peer, session, group) {
            Ok(())
        } else {
            Err("not a member".into())
        }
    }

    /// Puts the session's member into `group`; false when the session is gone.
    fn enter(&self, peer: &Peer, session: u64, group: &str) -> bool {
        let mut state = self.state();
        let Some(member) = state.members.get_mut(&peer.id).filter(|m| m.session == session) else {
            return false;
        };
        member.groups.insert(group.to_string());
        state.groups.entry(group.to_string()).or_default().insert(peer.id.clone());
        true
    }

    async fn leave(&self, peer: &Peer, session: u64, group: &str) {
        let left = {
            let mut state = self.state();
            let left = state
                .members
                .get_mut(&peer.id)
                .filter(|m| m.session == session)
                .is_some_and(|m| m.groups.remove(group));
            if left {
                remove(&mut state.groups, group, &peer.id);
            }
            left
        };
        if left {
            let _ = self.hook(LEAVE, peer, vec![json!(group), peer_value(peer)]).await;
        }
    }

    async fn close(&self, peer: &Peer, session: u64) {
        let groups = {
            let mut state = self.state();
            if state.members.get(&peer.id).is_none_or(|m| m.session != session) {
                return; // replaced: the newer session owns the member now
            }
            let member = state.members.remove(&peer.id).map(|m| m.groups).unwrap_or_default();
            for group in &member {
                remove(&mut state.groups, group, &peer.id);
            }
            member
        };
        for group in groups {
            let _ = self.hook(LEAVE, peer, vec![json!(group), peer_value(peer)]).await;
        }
    }

    /// A page's message to `group`: to the host's `on_group_message` handlers.
    async fn receive(&self, peer: &Peer, group: &str, message: Value) -> Result<(), String> {
        check_name(group)?;
        let is_member = self.state().members.get(&peer.id).is_some_and(|m| m.groups.contains(group));
        if !is_member {
            return Err(format!("join {group} before sending to it"));
        }
        let per_minute = NonZeroU32::new(SENDS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        if self.sends.check(&peer.id, per_minute).is_err() {
            return Err(format!("rate limited: at most {SENDS_PER_MINUTE} messages a minute"));
        }
        self.hook(MESSAGE, peer, vec![json!(group), message]).await
    }

    /// Runs the host's handlers of `event` for `peer`; a handler that fails or returns `false`
    /// refuses (`Err(reason)`).
    async fn hook(&self, event: &'static str, peer: &Peer, args: Vec<Value>) -> Result<(), String> {
        let Some(engine) = self.engine.get().and_then(Weak::upgrade) else { return Ok(()) };
        if !engine.handles(event) {
            return Ok(());
        }
        let peer = peer.clone();
        let fired = tokio::task::spawn_blocking(move || {
            let mut refusal = None;
            let stop = |run: &HandlerRun, _: &mut Vec<Value>| {
                refusal = match verdict(run) {
                    Verdict::Yes => return std::ops::ControlFlow::Continue(()),
                    Verdict::No(said) => Some(said.unwrap_or("refused").to_string()),
                    Verdict::Failed(e) => Some(e.to_string()),
                };
                std::ops::ControlFlow::Break(())
            };
            engine.fire_with(event, &peer, args, stop).map_err(|e| e.to_string())?;
            refusal.map_or(Ok(()), Err)
        })
        .await;
        fired.map_err(|_| "the host's script failed".to_string())?
    }
}

fn remove(groups: &mut BTreeMap<String, BTreeSet<String>>, group: &str, id: &str) {
    if let Some(ids) = groups.get_mut(group) {
        ids.remove(id);
        if ids.is_empty() {
            groups.remove(group);
        }
    }
}

fn peer_value(peer: &Peer) -> Value {
    json!({ "id": peer.id, "label": peer.label })
}

/// A mailbox for one member.
pub fn member_mailbox() -> Arc<Mailbox> {
    Mailbox::new(MAILBOX_MESSAGES, MAILBOX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_members_refusals_do_not_echo_what_it_sent() {
        let groups = Groups::new();
        let (frames, from_member) = mpsc::channel(16);
        let mailbox = member_mailbox();
        let serving = tokio::spawn(groups.clone().serve(Peer::new("p", "P"), from_member, mailbox.clone()));
        // A hostile member's frame: a send to a 60 KB group name it is not in.
        let group = "g".repeat(60_000);
        let send = format!(r#"{{"op":"send","id":1,"group":"{group}","message":1}}"#);
        frames.send(send.into_bytes()).await.unwrap();
        let reply = mailbox.next().await.unwrap();
        assert!(reply.len() < 300, "a {} byte reply", reply.len());
        drop(frames);
        serving.await.unwrap();
    }
}
