//! What a peer serves to others: its scripts, its store and its site, and who is who.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use goop_script::{ChatReply, Engine, Peer};
use libp2p::PeerId;

use crate::protocol::site::{self, Site};
use crate::protocol::{chat, data};

/// Labels peers announced about themselves: display text only. Kept for the peers on the
/// known-peer list (`known.rs` forgets a peer's label with the peer).
#[derive(Debug, Default, Clone)]
pub struct Labels(Arc<RwLock<HashMap<PeerId, String>>>);

impl Labels {
    pub fn set(&self, peer: PeerId, label: String) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(peer, label);
    }
    pub fn remove(&self, peer: &PeerId) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(peer);
    }
    pub fn get(&self, peer: &PeerId) -> String {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(peer).cloned().unwrap_or_default()
    }
}

/// The data side of a peer: the data protocol's table operations and the chat inbox.
pub trait DataStore: Send + Sync {
    /// Answers a data-protocol request other than the Lua ops, as JSON.
    fn data_request(&self, caller: &str, request: &serde_json::Value) -> serde_json::Value;
    /// Keeps an incoming direct message.
    fn save_message(&self, from: &str, label: &str, content: &str) -> Result<(), String>;
    /// Why the site's schema is not applied, for the owner only (`None`: it is, or there is
    /// no schema).
    fn schema_error(&self) -> Option<String> {
        None
    }
    /// The schema's spelling of `table` and of its columns (`None`: no such table). SQLite
    /// names are case-insensitive; data hooks see a write as the schema spells it.
    fn spelling(&self, _table: &str) -> Result<Option<(String, Vec<String>)>, String> {
        Ok(None)
    }
}

/// The serving side of a full peer. A client-only node (the remote CLI commands) has none.
pub struct Services {
    /// `None` when `lua.enabled` is false.
    pub engine: Option<Arc<Engine>>,
    pub store: Arc<dyn DataStore>,
    pub site: Site,
    /// The groups this peer hosts.
    pub groups: Arc<crate::group::Groups>,
}

/// What to do after an incoming chat message.
pub enum ChatOutcome {
    /// Send this text back to the sender as a direct message.
    Reply(String),
    /// A command that answers nothing: nothing to send.
    Done,
    /// Not a command: it went to the inbox (and the scripts' `on_message`).
    Kept,
}

impl Services {
    /// Phase 1 dispatch: `!commands` go to the engine; other messages go to the inbox, then to
    /// the scripts' `on_message`.
    pub fn chat(&self, from: &Peer, message: &chat::ChatMessage) -> ChatOutcome {
        if let Some(engine) = &self.engine {
            match engine.handle_chat(from, &message.content) {
                ChatReply::Text(reply) | ChatReply::Failed { reply, .. } => return ChatOutcome::Reply(reply),
                ChatReply::Silent => return ChatOutcome::Done,
                ChatReply::NotACommand => {}
            }
        }
        tracing::info!(from = %from.id, label = %from.label, "message: {}", message.content);
        if let Err(e) = self.store.save_message(&from.id, &from.label, &message.content) {
            tracing::warn!("cannot keep message from {}: {e}", from.id);
        }
        if let Some(engine) = &self.engine {
            crate::events::message(engine, from, &message.content);
        }
        ChatOutcome::Kept
    }

    pub fn data(&self, from: &Peer, request: &[u8]) -> Vec<u8> {
        let answer = data::handle(self.engine.as_ref(), self.store.as_ref(), from, request);
        serde_json::to_vec(&answer).unwrap_or_default()
    }

    /// The owner's own site request (the viewer); remote peers' go through the budget (`inbound.rs`).
    pub fn site(&self, request: &[u8]) -> Vec<u8> {
        match self.site.find(request) {
            Ok(found) => found.encode(),
            Err(reason) => site::encode(site::SiteAnswer::Refused(reason)),
        }
    }
}
