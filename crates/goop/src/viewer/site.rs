//! One peer's origin: its site's files (over `/goop/site/1.0.0`, or from disk for this peer), the
//! JS SDK, the data endpoint the SDK posts to, and its data functions as plain HTTP endpoints
//! (`/_goop/fn/NAME`) — bound to that one peer and no other.

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use serde_json::{json, Value};

use super::group;
use super::offline::{self, Unanswered};
use super::{json, refuse, Viewer};
use crate::node::Proto;
use crate::protocol::site::{self, SiteRequest};

/// Where every peer origin serves the SDK.
pub const SDK_PATH: &str = "/_goop/sdk.js";
/// Where the SDK posts data-protocol requests.
pub const DATA_PATH: &str = "/_goop/data";
/// `GET`/`POST /_goop/fn/NAME`: data function NAME, called as the visitor by a form or a link.
pub const FN_PREFIX: &str = "/_goop/fn/";
/// Longest function name an endpoint takes.
const MAX_FN_NAME: usize = 128;

const SDK: &str = include_str!("assets/sdk.js");
/// Replaced in [`SDK`] with who the page belongs to and who is looking.
const INFO_MARKER: &str = "/*GOOP_INFO*/null";

/// How long a page waits for a file from another peer.
const SITE_WAIT: Duration = Duration::from_secs(30);
/// How long a page waits for a data answer: a script may run up to 60 s.
const DATA_WAIT: Duration = Duration::from_secs(70);

pub async fn answer(viewer: &Viewer, peer: PeerId, parts: &Parts, body: &[u8]) -> Response {
    let (method, path) = (&parts.method, parts.uri.path());
    match (method, path) {
        (&Method::GET, SDK_PATH) => sdk(viewer, peer),
        (&Method::POST, DATA_PATH) => data(viewer, peer, body).await,
        (&Method::GET | &Method::POST, p) if p.starts_with(FN_PREFIX) => function(viewer, peer, parts, body).await,
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
    match ask(viewer, peer, body.to_vec()).await {
        Ok(bytes) if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() => {
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Ok(_) => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": "the peer sent a malformed answer" })),
        Err(e) => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": e })),
    }
}

/// A data-protocol request to `peer` (this peer: answered here, as its owner), as the visitor.
async fn ask(viewer: &Viewer, peer: PeerId, body: Vec<u8>) -> Result<Vec<u8>, String> {
    if peer == viewer.node.peer_id() {
        let (services, me) = (viewer.services.clone(), viewer.me.clone());
        tokio::task::spawn_blocking(move || services.data(&me, &body)).await.map_err(|e| e.to_string())
    } else {
        remote(viewer, peer, Proto::Data, body, DATA_WAIT).await.map_err(|e| e.message(&peer))
    }
}

/// `/_goop/fn/NAME`: calls data function NAME with the query string (GET), or a form or JSON
/// body (POST), as `request.params`. Answers the data protocol's JSON, or, when the function
/// returns `{ html = "…" }`, that HTML as the page (under the origin's CSP).
async fn function(viewer: &Viewer, peer: PeerId, parts: &Parts, body: &[u8]) -> Response {
    let name = parts.uri.path()[FN_PREFIX.len()..].to_string();
    if name.is_empty() || name.len() > MAX_FN_NAME || name.contains('/') {
        return json(StatusCode::NOT_FOUND, &json!({ "ok": false, "error": "no such function" }));
    }
    let kind = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let params = match (&parts.method, kind.split(';').next().unwrap_or_default().trim()) {
        (&Method::POST, "application/json") => match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return json(StatusCode::BAD_REQUEST, &json!({ "ok": false, "error": "the body is not a JSON object" }))
            }
        },
        (&Method::POST, "application/x-www-form-urlencoded") => fields(body),
        (&Method::POST, "") if body.is_empty() => fields(parts.uri.query().unwrap_or_default().as_bytes()),
        (&Method::POST, other) => {
            let error = format!("send a form or JSON, not {other}");
            return json(StatusCode::UNSUPPORTED_MEDIA_TYPE, &json!({ "ok": false, "error": error }));
        }
        _ => fields(parts.uri.query().unwrap_or_default().as_bytes()),
    };
    let request = json!({ "op": "lua-call", "function": name, "params": params }).to_string();
    let answer = match ask(viewer, peer, request.into_bytes()).await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes).ok(),
        Err(e) => return json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": e })),
    };
    match answer {
        Some(answer) if answer["ok"] == true => match answer["result"].get("html").and_then(Value::as_str) {
            Some(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html.to_string()).into_response(),
            None => json(StatusCode::OK, &answer),
        },
        Some(answer) => json(StatusCode::BAD_REQUEST, &answer),
        None => json(StatusCode::BAD_GATEWAY, &json!({ "ok": false, "error": "the peer sent a malformed answer" })),
    }
}

/// A query string or form body as a JSON object of strings (a repeated name keeps its last value).
fn fields(encoded: &[u8]) -> Value {
    Value::Object(
        form_urlencoded::parse(encoded).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect(),
    )
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
