//! The events goop fires into its scripts: their names (declared to the engine) and what each
//! one carries. Handlers are global functions in any script (`function on_message(msg) … end`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use goop_script::{Engine, Event, Peer};
use serde_json::json;

/// `on_peer_connect(peer)`: a peer's first connection opened (`peer` is `{id, label}`).
pub const PEER_CONNECT: &str = "on_peer_connect";
/// `on_peer_disconnect(peer)`: a peer's last connection closed.
pub const PEER_DISCONNECT: &str = "on_peer_disconnect";
/// `on_message(msg)`: a direct message that is not a `!command` (`msg` is `{from, label, text}`).
pub const MESSAGE: &str = "on_message";
/// `on_schedule()`: in scripts annotated `--- @every 30s`, run as the peer itself.
pub const SCHEDULE: &str = "on_schedule";

/// Most connect/disconnect events waiting for a script worker; past it (a peer flapping its
/// connections faster than scripts run) events are dropped, not queued without bound.
const MAX_PENDING_PEER_EVENTS: usize = 64;
static PENDING_PEER_EVENTS: AtomicUsize = AtomicUsize::new(0);

/// Every event a peer's scripts may handle, data hooks (`write_hooks.rs`) and group hooks
/// (`group/`) included.
pub fn declared() -> Vec<Event> {
    let peer = [PEER_CONNECT, PEER_DISCONNECT, MESSAGE, SCHEDULE];
    let groups = [crate::group::JOIN, crate::group::MESSAGE, crate::group::LEAVE];
    peer.into_iter().chain(crate::write_hooks::ALL).chain(groups).map(Event::new).collect()
}

/// Fires `event` with `args` for `caller`; a handler's failure is logged, never the caller's
/// problem (nobody waits for an event's answer).
pub fn fire(engine: &Engine, event: &str, caller: &Peer, args: &[serde_json::Value]) {
    if !engine.handles(event) {
        return;
    }
    match engine.fire(event, caller, args) {
        Ok(fired) => {
            for run in fired.runs {
                if let Err(e) = run.result {
                    tracing::warn!(target: "goop::script", "{event} of {} failed: {e}", run.script);
                }
            }
        }
        Err(e) => tracing::warn!(target: "goop::script", "{event}: {e}"),
    }
}

/// `on_peer_connect` / `on_peer_disconnect` for `peer`, off the caller's thread: the node's event
/// loop must not wait on scripts.
pub fn peer_changed(engine: &Arc<Engine>, event: &'static str, peer: Peer) {
    if !engine.handles(event) {
        return;
    }
    if PENDING_PEER_EVENTS.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING_PEER_EVENTS {
        PENDING_PEER_EVENTS.fetch_sub(1, Ordering::AcqRel);
        tracing::debug!("{event} of {} dropped: {MAX_PENDING_PEER_EVENTS} peer events pending", peer.id);
        return;
    }
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let arg = json!({ "id": peer.id, "label": peer.label });
        fire(&engine, event, &peer, &[arg]);
        PENDING_PEER_EVENTS.fetch_sub(1, Ordering::AcqRel);
    });
}

/// `on_message` for a direct message from `from`.
pub fn message(engine: &Engine, from: &Peer, text: &str) {
    let msg = json!({ "from": from.id, "label": from.label, "text": text });
    fire(engine, MESSAGE, from, &[msg]);
}
