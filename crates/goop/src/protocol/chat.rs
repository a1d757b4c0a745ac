//! `/goop/chat/1.0.0`: direct messages. Request `{"content":"…"}`, answer `{"ok":true}`.
//!
//! A reply to a `!command` travels back as a direct message of its own.

use serde::{Deserialize, Serialize};

/// Longest message content, in bytes.
pub const MAX_CONTENT: usize = 4 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatAck {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Parses a message off the wire, refusing malformed or oversize ones.
pub fn parse(bytes: &[u8]) -> Result<ChatMessage, String> {
    let msg: ChatMessage = serde_json::from_slice(bytes).map_err(|e| format!("malformed chat message: {e}"))?;
    if msg.content.len() > MAX_CONTENT {
        return Err(format!("chat message larger than {MAX_CONTENT} bytes"));
    }
    Ok(msg)
}

pub fn encode(content: &str) -> Vec<u8> {
    serde_json::to_vec(&ChatMessage { content: content.to_string() }).unwrap_or_default()
}

pub fn ack(result: Result<(), String>) -> Vec<u8> {
    let ack = match result {
        Ok(()) => ChatAck { ok: true, error: None },
        Err(e) => ChatAck { ok: false, error: Some(e) },
    };
    serde_json::to_vec(&ack).unwrap_or_default()
}
