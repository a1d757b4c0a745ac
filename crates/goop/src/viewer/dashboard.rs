//! The viewer's own pages and their JSON API: this peer, the peers it knows, its scripts, and
//! direct messages.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use libp2p::PeerId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{asset, json, refuse, Viewer};
use crate::node::Target;
use crate::protocol::chat;

/// Messages the inbox view shows, newest first.
const INBOX_SHOWN: usize = 200;
/// How long connecting to an address may take.
const DIAL_WAIT: Duration = Duration::from_secs(15);

pub async fn answer(viewer: &Viewer, method: &Method, path: &str, body: &[u8]) -> Response {
    match (method, path) {
        (&Method::GET, "/") => asset("text/html; charset=utf-8", include_str!("assets/index.html")),
        (&Method::GET, "/viewer.js") => asset("text/javascript; charset=utf-8", include_str!("assets/viewer.js")),
        (&Method::GET, "/viewer.css") => asset("text/css; charset=utf-8", include_str!("assets/viewer.css")),
        (&Method::GET, "/api/status") => json(StatusCode::OK, &status(viewer).await),
        (&Method::GET, "/api/inbox") => inbox(viewer).await,
        (&Method::POST, "/api/chat") => send_chat(viewer, body).await,
        (&Method::POST, "/api/connect") => connect(viewer, body).await,
        _ => refuse(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn status(viewer: &Viewer) -> Value {
    let (scripting, scripts) = scripts(viewer);
    json!({
        "self": me(viewer),
        "schema_error": schema_error(viewer).await,
        "scripting": scripting,
        "peers": peers(viewer).await,
        "scripts": scripts,
    })
}

/// This peer as the page shows it: its addresses, its reachability and its relayed addresses.
pub(super) fn me(viewer: &Viewer) -> Value {
    let me = viewer.node.peer_id();
    let addrs: Vec<String> = viewer.node.watch_addrs().borrow().iter().map(|a| format!("{a}/p2p/{me}")).collect();
    let reach = viewer.node.reachability();
    let relayed: Vec<String> = reach.relayed.iter().map(|a| format!("{a}/p2p/{me}")).collect();
    json!({ "id": me.to_string(), "label": viewer.me.label, "addrs": addrs, "site": viewer.hosts.site_url(&me),
            "reachability": reach.status, "relayed": relayed })
}

/// The peers this peer knows, as the page lists them.
pub(super) async fn peers(viewer: &Viewer) -> Vec<Value> {
    viewer
        .node
        .peers()
        .await
        .into_iter()
        .map(|p| {
            json!({
                "id": p.id.to_string(),
                "label": p.label,
                "connected": p.connected,
                // How this peer is connected to it now: straight, or through a helper's relay.
                "connection": p.connected.then_some(if p.relayed { "relayed" } else { "direct" }),
                "addrs": p.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "site": viewer.hosts.site_url(&p.id),
            })
        })
        .collect()
}

/// Whether scripting is on, and the scripts with their runs and errors.
pub(super) fn scripts(viewer: &Viewer) -> (bool, Vec<Value>) {
    let Some(engine) = viewer.services.engine.as_ref() else {
        return (false, Vec::new());
    };
    let scripts = engine
        .scripts()
        .into_iter()
        .map(|s| {
            let kind = match (s.has_handle, s.has_call) {
                (true, true) => "command, function",
                (true, false) => "command",
                (false, true) => "function",
                (false, false) => "",
            };
            json!({
                "name": s.name,
                "kind": kind,
                "description": s.description,
                "rate_limit": s.rate_limit,
                "loaded": s.loaded,
                "load_error": s.error.map(|e| e.to_string()),
                "invocations": s.invocations,
                "errors": s.errors,
                "last_error": s.last_error,
            })
        })
        .collect();
    (true, scripts)
}

/// Why `site/schema.sql` does not apply, if it does not.
pub(super) async fn schema_error(viewer: &Viewer) -> Option<String> {
    // Looking may apply a changed schema.sql: blocking work.
    let store = viewer.store.clone();
    tokio::task::spawn_blocking(move || store.schema_error()).await.ok().flatten().map(|e| e.to_string())
}

async fn inbox(viewer: &Viewer) -> Response {
    let store = viewer.store.clone();
    match tokio::task::spawn_blocking(move || store.inbox(INBOX_SHOWN)).await {
        Ok(Ok(messages)) => {
            let list: Vec<Value> = messages
                .into_iter()
                .map(|m| json!({ "from": m.from_peer, "label": m.from_label, "content": m.content, "at": m.received_at }))
                .collect();
            json(StatusCode::OK, &json!({ "ok": true, "messages": list }))
        }
        Ok(Err(e)) => json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "ok": false, "error": e.to_string() })),
        Err(e) => json(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "ok": false, "error": e.to_string() })),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRequest {
    peer: String,
    content: String,
}

async fn send_chat(viewer: &Viewer, body: &[u8]) -> Response {
    let request: ChatRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad(format!("malformed request: {e}")),
    };
    let Ok(peer) = request.peer.parse::<PeerId>() else {
        return bad(format!("not a peer ID: {:?}", request.peer));
    };
    if request.content.trim().is_empty() || request.content.len() > chat::MAX_CONTENT {
        return bad(format!("a message has 1 to {} bytes", chat::MAX_CONTENT));
    }
    match viewer.node.send_chat(peer, &request.content).await {
        Ok(()) => json(StatusCode::OK, &json!({ "ok": true })),
        Err(e) => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": e.to_string() })),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectRequest {
    addr: String,
}

async fn connect(viewer: &Viewer, body: &[u8]) -> Response {
    let request: ConnectRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return bad(format!("malformed request: {e}")),
    };
    let target: Target = match request.addr.parse() {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    match tokio::time::timeout(DIAL_WAIT, viewer.node.connect(&target)).await {
        Ok(Ok(peer)) => {
            json(StatusCode::OK, &json!({ "ok": true, "peer": peer.to_string(), "site": viewer.hosts.site_url(&peer) }))
        }
        Ok(Err(e)) => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": e.to_string() })),
        Err(_) => json(StatusCode::GATEWAY_TIMEOUT, &json!({ "ok": false, "error": "timed out" })),
    }
}

fn bad(error: String) -> Response {
    json(StatusCode::BAD_REQUEST, &json!({ "ok": false, "error": error }))
}
