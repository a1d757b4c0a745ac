//! The events goop fires into its scripts: their names (declared to the engine) and what each
//! one carries. Handlers are global functions in any script (`function on_message(msg) … end`).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock, Weak};

use goop_script::{Engine, Error, Event, HandlerRun, Peer};
use serde_json::{json, Value};

/// `on_peer_connect(peer)`: a peer's first connection opened (`peer` is `{id, label}`).
pub const PEER_CONNECT: &str = "on_peer_connect";
/// `on_peer_disconnect(peer)`: a peer's last connection closed.
pub const PEER_DISCONNECT: &str = "on_peer_disconnect";
/// `on_message(msg)`: a direct message that is not a `!command` (`msg` is `{from, label, text}`).
pub const MESSAGE: &str = "on_message";
/// `on_schedule()`: in scripts annotated `--- @every 30s`, run as the peer itself.
pub const SCHEDULE: &str = "on_schedule";

/// Threads running connect/disconnect events.
const PEER_EVENT_THREADS: usize = 4;
/// Most connect/disconnect events waiting for one of them (64 in all); past it (peers flapping
/// their connections faster than scripts run) events are dropped, not queued without bound.
const PENDING_PER_THREAD: usize = 16;

/// Connected peers one events thread remembers (a connection cap is far below it).
const MAX_OPEN: usize = 16_384;

/// A peer event waiting for its engine's scripts.
type PeerEvent = (Weak<Engine>, &'static str, Peer);

/// Every event a peer's scripts may handle, data hooks (`write_hooks.rs`) and group hooks
/// (`group/`) included.
pub fn declared() -> Vec<Event> {
    let plain = [PEER_CONNECT, MESSAGE, SCHEDULE, crate::group::JOIN, crate::group::MESSAGE];
    let mut events: Vec<Event> = plain.into_iter().chain(crate::write_hooks::ALL).map(Event::new).collect();
    // A presence script must hear every leave whose join it heard, past the rate limits too.
    events.extend([PEER_DISCONNECT, crate::group::LEAVE].map(Event::closing));
    events
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
/// loop must not wait on scripts. A peer's events run in the order they happened, on the one
/// thread its ID picks, so its disconnect never overtakes its connect (a presence list would
/// keep a gone peer online); a peer with slow handlers holds up a quarter of the others at most.
pub fn peer_changed(engine: &Arc<Engine>, event: &'static str, peer: Peer) {
    // A connect goes through when only the disconnect is handled: it is what lets that run.
    if !engine.handles(PEER_CONNECT) && !engine.handles(PEER_DISCONNECT) {
        return;
    }
    let (hasher, queues) = peer_events();
    let Some(queue) = queues.get(hasher.hash_one(&peer.id) as usize % PEER_EVENT_THREADS) else { return };
    if let Err(TrySendError::Full((_, _, peer))) = queue.try_send((Arc::downgrade(engine), event, peer)) {
        tracing::debug!("{event} of {} dropped: its thread has {PENDING_PER_THREAD} peer events pending", peer.id);
    }
}

/// The queues of peer events, one per thread that runs them (started on first use), and what
/// picks a peer's.
fn peer_events() -> &'static (RandomState, Vec<SyncSender<PeerEvent>>) {
    static QUEUES: OnceLock<(RandomState, Vec<SyncSender<PeerEvent>>)> = OnceLock::new();
    QUEUES.get_or_init(|| {
        let mut queues = Vec::with_capacity(PEER_EVENT_THREADS);
        for n in 0..PEER_EVENT_THREADS {
            let (queue, events) = sync_channel::<PeerEvent>(PENDING_PER_THREAD);
            let runner = move || {
                // Peers whose connect this thread delivered: a disconnect (not rate limited) is
                // run once per connect, never for one the scripts did not hear.
                let mut open = HashSet::new();
                for (engine, event, peer) in events {
                    let Some(engine) = engine.upgrade() else { continue };
                    let heard = if event == PEER_DISCONNECT {
                        open.remove(&peer.id)
                    } else {
                        if open.len() < MAX_OPEN {
                            open.insert(peer.id.clone());
                        }
                        true
                    };
                    if heard {
                        let arg = json!({ "id": peer.id, "label": peer.label });
                        fire(&engine, event, &peer, &[arg]);
                    }
                }
            };
            match std::thread::Builder::new().name(format!("goop-peer-events-{n}")).spawn(runner) {
                Ok(_) => queues.push(queue),
                Err(e) => tracing::error!("cannot start a peer events thread: {e}"),
            }
        }
        (RandomState::new(), queues)
    })
}

/// What a handler that may refuse (data hooks, `on_group_join`, `on_group_message`) said.
pub enum Verdict<'a> {
    /// It did not refuse.
    Yes,
    /// It returned `false [, reason]`, or Lua's failure idiom `nil, reason`.
    No(Option<&'a str>),
    /// It raised an error (or hit a limit): a refusal too.
    Failed(&'a Error),
}

pub fn verdict(run: &HandlerRun) -> Verdict<'_> {
    match run.result.as_deref() {
        Err(e) => Verdict::Failed(e),
        Ok([Value::Bool(false), rest @ ..]) => Verdict::No(rest.first().and_then(Value::as_str)),
        // A reason is never a yes.
        Ok([Value::Null, Value::String(said), ..]) => Verdict::No(Some(said)),
        Ok(_) => Verdict::Yes,
    }
}

/// `on_message` for a direct message from `from`.
pub fn message(engine: &Engine, from: &Peer, text: &str) {
    let msg = json!({ "from": from.id, "label": from.label, "text": text });
    fire(engine, MESSAGE, from, &[msg]);
}
