//! The dashboard's live stream, `GET /api/events` on the viewer's origin only: server-sent
//! events that tell the owner's dashboard what changed, so the page asks again only then.
//!
//! Events: `ready` (the stream is up: fetch everything once), `inbox` (a direct message was
//! kept: `{from, label, content}`), `missed` (this stream fell more than the node's
//! [`INCOMING_KEPT`](crate::node::INCOMING_KEPT) messages behind: fetch the inbox again),
//! `peers` (`{peers: [...]}`, as in `/api/status`), `status` (`{self, scripting, scripts,
//! schema_error}`, as in `/api/status`: addresses and reachability, scripts, schema).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{dashboard, refuse, Viewer};
use crate::node::Incoming;

/// Where the dashboard opens its stream.
pub const PATH: &str = "/api/events";
/// Most event streams open at once; one more is refused (503) until one closes.
pub const MAX_STREAMS: usize = 16;
/// A comment line this often, so a connection that went away unnoticed is found on a write.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How often a stream looks whether the scripts or the schema changed (they say nothing when
/// they do); only a change is sent.
const STATUS_CHECK: Duration = Duration::from_secs(2);
/// Least time between two `peers` events: a peer flapping its connections costs a dashboard
/// at most 4 peer lists a second.
const PEERS_GAP: Duration = Duration::from_millis(250);
/// Events made but not yet taken by the response body; the maker waits past it.
const QUEUED: usize = 4;

/// The open streams, counted.
pub struct Streams(Arc<Semaphore>);

impl Default for Streams {
    fn default() -> Self {
        Streams(Arc::new(Semaphore::new(MAX_STREAMS)))
    }
}

/// Opens a stream for the dashboard, or refuses when [`MAX_STREAMS`] are open.
pub fn open(viewer: Arc<Viewer>) -> Response {
    let Ok(slot) = viewer.streams.0.clone().try_acquire_owned() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many event streams open");
    };
    let (events, mut taken) = mpsc::channel(QUEUED);
    let sources = Sources::new(viewer.node.incoming(), viewer.node.watch_peers());
    tokio::spawn(feed(viewer, sources, events, slot));
    let body = futures::stream::poll_fn(move |cx| taken.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// Makes this stream's events until the page goes away.
async fn feed(viewer: Arc<Viewer>, mut sources: Sources, events: mpsc::Sender<Event>, _slot: OwnedSemaphorePermit) {
    let mut status = status(&viewer).await;
    if events.send(Event::default().event("ready").data("{}")).await.is_err() {
        return;
    }
    loop {
        let change = tokio::select! {
            () = events.closed() => return,
            change = sources.next() => change,
        };
        let event = match change {
            Change::Inbox(m) => {
                event("inbox", &json!({ "from": m.from.to_string(), "label": m.label, "content": m.content }))
            }
            Change::Missed(count) => event("missed", &json!({ "count": count })),
            Change::Peers => event("peers", &json!({ "peers": dashboard::peers(&viewer).await })),
            Change::StatusCheck => {
                let now = self::status(&viewer).await;
                if now == status {
                    continue;
                }
                status = now;
                event("status", &status)
            }
            Change::Stopped => return,
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

fn event(name: &str, data: &Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

async fn status(viewer: &Viewer) -> Value {
    let (scripting, scripts) = dashboard::scripts(viewer);
    json!({
        "self": dashboard::me(viewer),
        "scripting": scripting,
        "scripts": scripts,
        "schema_error": dashboard::schema_error(viewer).await,
    })
}

/// What a stream waits on.
struct Sources {
    incoming: broadcast::Receiver<Incoming>,
    peers: watch::Receiver<u64>,
    last_peers: Option<Instant>,
    status: Interval,
}

#[derive(Debug)]
enum Change {
    Inbox(Incoming),
    /// This many messages went by unseen.
    Missed(u64),
    Peers,
    StatusCheck,
    /// The node has stopped.
    Stopped,
}

impl Sources {
    fn new(incoming: broadcast::Receiver<Incoming>, mut peers: watch::Receiver<u64>) -> Sources {
        peers.mark_unchanged();
        let mut status = tokio::time::interval_at(Instant::now() + STATUS_CHECK, STATUS_CHECK);
        status.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Sources { incoming, peers, last_peers: None, status }
    }

    async fn next(&mut self) -> Change {
        tokio::select! {
            message = self.incoming.recv() => match message {
                Ok(m) => Change::Inbox(m),
                Err(RecvError::Lagged(count)) => Change::Missed(count),
                Err(RecvError::Closed) => Change::Stopped,
            },
            changed = self.peers.changed() => {
                if changed.is_err() {
                    return Change::Stopped;
                }
                if let Some(last) = self.last_peers {
                    tokio::time::sleep_until(last + PEERS_GAP).await;
                }
                // Whatever changed while waiting is in the list about to be made.
                self.peers.mark_unchanged();
                self.last_peers = Some(Instant::now());
                Change::Peers
            }
            _ = self.status.tick() => Change::StatusCheck,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::INCOMING_KEPT;
    use libp2p::PeerId;

    fn message(n: usize) -> Incoming {
        Incoming { from: PeerId::random(), label: "Ann".into(), content: format!("message {n}") }
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told_how_much_it_missed() {
        let (incoming, rx) = broadcast::channel(INCOMING_KEPT);
        let (_peers, peers_rx) = watch::channel(0);
        let mut sources = Sources::new(rx, peers_rx);
        for n in 0..INCOMING_KEPT + 10 {
            incoming.send(message(n)).unwrap();
        }
        assert!(matches!(sources.next().await, Change::Missed(10)));
        let Change::Inbox(first) = sources.next().await else { panic!("the oldest kept message") };
        assert_eq!(first.content, "message 10");
    }

    #[tokio::test]
    async fn a_burst_of_peer_changes_makes_one_peers_event_per_gap() {
        let (_incoming, rx) = broadcast::channel(INCOMING_KEPT);
        let (peers, peers_rx) = watch::channel(0);
        let mut sources = Sources::new(rx, peers_rx);
        let started = Instant::now();
        peers.send_modify(|v| *v += 1);
        assert!(matches!(sources.next().await, Change::Peers));
        for _ in 0..1000 {
            peers.send_modify(|v| *v += 1);
        }
        assert!(matches!(sources.next().await, Change::Peers));
        let second = started.elapsed();
        assert!(second >= PEERS_GAP && second < PEERS_GAP * 4, "the second list waits out the gap: {second:?}");
        // The 1000 changes were one: the next thing is the status check, at 2 s.
        assert!(matches!(sources.next().await, Change::StatusCheck));
        assert!(started.elapsed() >= STATUS_CHECK);
    }
}
