//! A page's groups at the peer whose origin it is on: `POST /_goop/group/join` answers with a
//! stream of lines of JSON (`{"type":"joined"}`, then the host's `message` and `missed` frames)
//! until the page leaves by closing it; `POST /_goop/group/send` sends one message.

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::{json, Viewer};
use crate::group::GroupError;

/// Where the SDK joins a group.
pub const JOIN_PATH: &str = "/_goop/group/join";
/// Where the SDK sends to a group.
pub const SEND_PATH: &str = "/_goop/group/send";

#[derive(Deserialize)]
struct Join {
    group: String,
}

#[derive(Deserialize)]
struct Send<'a> {
    group: String,
    #[serde(borrow)]
    message: &'a RawValue,
}

pub async fn join(viewer: &Viewer, host: PeerId, body: &[u8]) -> Response {
    let Ok(Join { group }) = serde_json::from_slice(body) else {
        return refused(StatusCode::BAD_REQUEST, "expected {\"group\": NAME}".into());
    };
    let subscription = match viewer.links.join(host, &group).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let joined = Bytes::from(format!("{}\n", json!({ "type": "joined", "group": group })));
    let frames = futures::stream::unfold(subscription, |subscription| async move {
        let frame = subscription.mailbox.next().await?;
        let mut line = frame.to_vec();
        line.push(b'\n');
        Some((Ok::<_, std::io::Error>(Bytes::from(line)), subscription))
    });
    let lines = futures::StreamExt::chain(futures::stream::once(async { Ok(joined) }), frames);
    ([(header::CONTENT_TYPE, "application/x-ndjson"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(lines))
        .into_response()
}

pub async fn send(viewer: &Viewer, host: PeerId, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Send>(body) else {
        return refused(StatusCode::BAD_REQUEST, "expected {\"group\": NAME, \"message\": …}".into());
    };
    match viewer.links.send(host, &request.group, request.message).await {
        Ok(()) => json(StatusCode::OK, &json!({ "ok": true })),
        Err(e) => failed(e),
    }
}

/// A refusal is 403 (the SDK gives up); an unreachable host 502 (the SDK tries again).
fn failed(error: GroupError) -> Response {
    match error {
        GroupError::Refused(e) => refused(StatusCode::FORBIDDEN, e),
        GroupError::Unreachable(e) => refused(StatusCode::BAD_GATEWAY, e),
    }
}

fn refused(status: StatusCode, error: String) -> Response {
    json(status, &json!({ "ok": false, "error": error }))
}
