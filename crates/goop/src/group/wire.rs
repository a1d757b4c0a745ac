//! The group protocol's frames: a 4-byte big-endian length, then one JSON object.
//!
//! Member → host: `{"op":"join","id":1,"group":"g"}`, `{"op":"leave","group":"g"}`,
//! `{"op":"send","id":2,"group":"g","message":…}`. Host → member: `{"type":"reply","id":1}`
//! (with `"error"` when refused), `{"type":"message","group":"g","message":…}` and
//! `{"type":"missed","group":"g","count":3}`. Pages get the host's frames as lines of JSON.
//! Also the two ends of the stream that carries them.

use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::mailbox::Mailbox;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::MAX_MESSAGE_BYTES;

/// Largest frame: a message and its envelope.
pub const MAX_FRAME_BYTES: usize = MAX_MESSAGE_BYTES + 1024;

/// What a member asks of the host.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ToHost {
    Join { id: u64, group: String },
    Leave { group: String },
    Send { id: u64, group: String, message: serde_json::Value },
}

/// What the host tells a member (a member reads only the envelope; see `link.rs`).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToMember {
    Reply {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    Message {
        group: String,
        message: Box<RawValue>,
    },
    Missed {
        group: String,
        count: u64,
    },
}

impl ToMember {
    pub fn encode(&self) -> Vec<u8> {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl ToHost {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Reads one frame; `None` at a clean end of the stream.
pub async fn read<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match io.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    let mut frame = vec![0u8; len];
    io.read_exact(&mut frame).await?;
    Ok(Some(frame))
}

/// Writes one frame.
pub async fn write<T: AsyncWrite + Unpin>(io: &mut T, frame: &[u8]) -> std::io::Result<()> {
    io.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.flush().await
}

/// The host's end of a member's stream: the member's frames go to `frames` (a slow host slows
/// the member down), the mailbox's go out. Ends when either side does.
pub async fn host_leg(stream: libp2p::Stream, frames: mpsc::Sender<Vec<u8>>, mailbox: Arc<Mailbox>) {
    let (mut reader, mut writer) = stream.split();
    let read = async {
        while let Ok(Some(frame)) = read(&mut reader).await {
            if frames.send(frame).await.is_err() {
                break;
            }
        }
    };
    let write = async {
        while let Some(frame) = mailbox.next().await {
            if write(&mut writer, &frame).await.is_err() {
                break;
            }
        }
    };
    tokio::select! { _ = read => {}, _ = write => {} }
    mailbox.close();
}

/// The member's end of its stream to a host: `to_host` goes out, the host's frames come in.
pub async fn member_leg(
    stream: libp2p::Stream,
    mut to_host: mpsc::Receiver<Vec<u8>>,
    from_host: mpsc::Sender<Arc<[u8]>>,
) {
    let (mut reader, mut writer) = stream.split();
    let read = async {
        while let Ok(Some(frame)) = read(&mut reader).await {
            if from_host.send(frame.into()).await.is_err() {
                break;
            }
        }
    };
    let write = async {
        while let Some(frame) = to_host.recv().await {
            if write(&mut writer, &frame).await.is_err() {
                break;
            }
        }
    };
    tokio::select! { _ = read => {}, _ = write => {} }
}

/// This peer's own pages: the member mailbox its own host side fills, handed on as frames.
pub async fn drain(mailbox: Arc<Mailbox>, from_host: mpsc::Sender<Arc<[u8]>>) {
    while let Some(frame) = mailbox.next().await {
        if from_host.send(frame).await.is_err() {
            break;
        }
    }
    mailbox.close();
}
