//! One peer's origin: its site's files (over `/goop/site/1.0.0`, or from disk for this peer), the
//! JS SDK, and the data endpoint the SDK posts to — bound to that one peer and no other.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use serde_json::json;

use super::group;
use super::offline::{self, Unanswered};
use super::{json, refuse, Viewer};
use crate::node::Proto;
use crate::protocol::site::{self, SiteRequest};

/// Where every peer origin serves the SDK.
pub const SDK_PATH: &str = "/_goop/sdk.js";
/// Where the SDK posts data-protocol requests.
pub const DATA_PATH: &str = "/_goop/data";

const SDK: &str = include_str!("assets/sdk.js");
/// Replaced in [`SDK`] with who the page belongs to and who is looking.
const INFO_MARKER: &str = "/*GOOP_INFO*/null";

/// How long a page waits for a file from another peer.
const SITE_WAIT: Duration = Duration::from_secs(30);
/// How long a page waits for a data answer: a script may run up to 60 s.
const DATA_WAIT: Duration = Duration::from_secs(70);

pub async fn answer(viewer: &Viewer, peer: PeerId, method: &Method, path: &str, body: &[u8]) -> Response {
    match (method, path) {
        (&Method::GET, SDK_PATH) => sdk(viewer, peer),
        (&Method::POST, DATA_PATH) => data(viewer, peer, body).await,
        (&Method::POST, group::JOIN_PATH) => group::join(viewer, peer, body).await,
        (&Method::POST, group::SEND_PATH) => group::send(viewer, peer, body).await,
        (_, p) if p.starts_with("/_goop/") => refuse(StatusCode::NOT_FOUND, "not found"),
        (&Method::GET | &Method::HEAD, _) => file(viewer, peer, path).await,
        _ => refuse(StatusCode::METHOD_NOT_ALLOWED, "a site is read-only; use the SDK to send data"),
    }
}

fn sdk(viewer: &Viewer, peer: PeerId) -> Response {
    let label = if peer == viewer.node.peer_id() { viewer.me.label.clone() } else { viewer.node.label_of(&peer) };
    let info = json!({
        "self": { "id": viewer.me.id, "label": viewer.me.label },
        "peer": { "id": peer.to_string(), "label": label },
    });
    // `<` escaped so the literal stays inert wherever the script text ends up.
    let literal = info.to_string().replace('<', "\\u003c");
    let body = SDK.replacen(INFO_MARKER, &literal, 1);
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

async fn data(viewer: &Viewer, peer: PeerId, body: &[u8]) -> Response {
    let answer = if peer == viewer.node.peer_id() {
        let (services, me, body) = (viewer.services.clone(), viewer.me.clone(), body.to_vec());
        tokio::task::spawn_blocking(move || services.data(&me, &body)).await.map_err(|e| e.to_string())
    } else {
        remote(viewer, peer, Proto::Data, body.to_vec(), DATA_WAIT).await.map_err(|e| e.message(&peer))
    };
    match answer {
        Ok(bytes) if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() => {
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Ok(_) => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": "the peer sent a malformed answer" })),
        Err(e) => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": e })),
    }
}

async fn file(viewer: &Viewer, peer: PeerId, path: &str) -> Response {
    let request = serde_json::to_vec(&SiteRequest { path: path.to_string() }).unwrap_or_default();
    let encoded = if peer == viewer.node.peer_id() {
        let services = viewer.services.clone();
        tokio::task::spawn_blocking(move || services.site(&request)).await.map_err(|e| e.to_string())
    } else {
        match remote(viewer, peer, Proto::Site, request, SITE_WAIT).await {
            Ok(bytes) => Ok(bytes),
            Err(why) => return offline::page(&peer, &viewer.node.label_of(&peer), &why),
        }
    };
    let (head, bytes) = match encoded.and_then(|b| site::decode(&b)) {
        Ok(decoded) => decoded,
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, &e),
    };
    if !head.ok {
        let why = head.error.unwrap_or_else(|| "refused".into());
        let status = match why.as_str() {
            "not found" => StatusCode::NOT_FOUND,
            // The peer's budgets: worth asking again later.
            w if w.starts_with("busy") => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        };
        return refuse(status, &why);
    }
    let content_type = head
        .content_type
        .and_then(|t| HeaderValue::from_str(&t).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))], bytes)
        .into_response()
}

/// One request to another peer, or why it was not answered.
async fn remote(
    viewer: &Viewer,
    peer: PeerId,
    proto: Proto,
    body: Vec<u8>,
    wait: Duration,
) -> Result<Vec<u8>, Unanswered> {
    match tokio::time::timeout(wait, viewer.node.request(peer, proto, body)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            tracing::debug!("{proto:?} request to {peer}: {e}");
            Err(Unanswered::Unreachable(e.to_string()))
        }
        Err(_) => Err(Unanswered::TimedOut(wait)),
    }
}
