//! The local web viewer: this peer's dashboard on `localhost:PORT`, and every peer's site on an
//! origin of its own, `<peer>.localhost:PORT`, with the JS SDK that reaches that peer only.
//!
//! Every request is first checked here: the Host header must name the viewer or a peer origin
//! (against DNS rebinding), and a state-changing request must come from a page of the same
//! origin. Then `dashboard.rs` (with its live stream, `events.rs`) or `site.rs` answers it.

mod dashboard;
mod events;
mod group;
mod offline;
pub mod origin;
mod site;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use goop_script::Peer;
use tokio::net::TcpListener;

use crate::node::services::Services;
use crate::node::Node;
use crate::store::Store;
use origin::{Hosts, Target};

/// Where the viewer listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Largest request body the viewer reads: a data-protocol request's bound.
const MAX_BODY: usize = crate::protocol::DATA_BOUNDS.request;

/// What the viewer serves from.
pub struct Viewer {
    pub node: Node,
    pub services: Arc<Services>,
    pub store: Store,
    /// This peer, as its own pages call it (the owner).
    pub me: Peer,
    pub hosts: Hosts,
    /// This peer's links to the hosts of groups its pages are in.
    pub links: Arc<crate::group::Links>,
    /// The dashboard's open event streams.
    pub streams: events::Streams,
}

/// Binds `addr` (falling back to a free port on the same address when it is taken and
/// `fallback` is set) and returns the listener with the port it got.
pub async fn bind(addr: SocketAddr, fallback: bool) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "the viewer listens on {addr}, beyond this machine: anyone who can reach it can act as this peer"
        );
    }
    match TcpListener::bind(addr).await {
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!("viewer: {addr} is taken; using a free port");
            TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await
        }
        other => other,
    }
}

/// Serves the viewer on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, viewer: Arc<Viewer>) -> std::io::Result<()> {
    let app = axum::Router::new().fallback(dispatch).with_state(viewer);
    axum::serve(listener, app).await
}

async fn dispatch(State(viewer): State<Arc<Viewer>>, request: Request) -> Response {
    let Some(target) = viewer.hosts.of(request.headers()) else {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown host: open the viewer on localhost");
    };
    if let Err(why) = same_origin(request.method(), request.headers(), target, request.uri().path()) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let path = parts.uri.path();
    let mut response = match target {
        Target::Viewer if parts.method == Method::GET && path == events::PATH => events::open(viewer.clone()),
        Target::Viewer => dashboard::answer(&viewer, &parts.method, path, &body).await,
        Target::Peer(peer) => site::answer(&viewer, peer, &parts, &body).await,
    };
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Nothing leaves for other origins; within one, a form's POST keeps its Origin (under
    // `no-referrer` browsers send `Origin: null`, which the check above must refuse).
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let policy = match target {
        Target::Viewer => "default-src 'self'; frame-ancestors 'none'",
        // A peer's page loads from and talks to its own origin only.
        Target::Peer(_) => {
            "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'self'"
        }
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    response
}

/// Refuses cross-origin writes everywhere, and any cross-origin use of the dashboard's API.
fn same_origin(method: &Method, headers: &HeaderMap, target: Target, path: &str) -> Result<(), &'static str> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("invalid"));
    let origin_ok = origin.is_some_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
    if *method != Method::GET && *method != Method::HEAD && !origin_ok {
        return Err("refused: this request must come from a page of this origin");
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross_site = origin.is_some() && !origin_ok || fetch_site.is_some_and(|s| s != "same-origin" && s != "none");
    if target == Target::Viewer && path.starts_with("/api/") && cross_site {
        return Err("refused: the viewer's API is for the viewer's own pages");
    }
    // A link or image elsewhere must not run a peer's function as this visitor.
    if matches!(target, Target::Peer(_)) && path.starts_with(site::FN_PREFIX) && cross_site {
        return Err("refused: a site's functions answer its own pages");
    }
    Ok(())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.to_string()).into_response()
}

/// A JSON answer with `status`.
fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], Body::from(body)).into_response()
}

/// A file compiled into the binary.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
