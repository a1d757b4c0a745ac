//! The remote commands: `call`, `cmd`, `data` and `site` with `--peer`, run as DIR's identity.

use std::path::Path;
use std::time::Duration;

use libp2p::PeerId;
use serde_json::Value;

use crate::config::PeerConfig;
use crate::identity;
use crate::local::Outcome;
use crate::node::{Node, NodeConfig, NodeError, Proto, Target};
use crate::protocol::site::{self, SiteRequest};

/// Why a remote command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The peer could not be reached (exit status 2).
    #[error("{0}")]
    Unreachable(String),
    /// Local setup failed: config, identity, arguments (exit status 2).
    #[error("{0}")]
    Setup(String),
}

/// How long reaching the peer may take, finding it through a helper included.
const CONNECT_WAIT: Duration = Duration::from_secs(15);

/// A client-only node running as `dir`'s identity, connected to the peer at `addr`.
pub struct Session {
    pub node: Node,
    pub peer: PeerId,
}

impl Session {
    /// `peer` is an address, or a bare peer ID found through the folder's helpers
    /// (`p2p.relays`).
    pub async fn open(dir: &Path, peer: &str) -> Result<Session, RemoteError> {
        let target: Target = peer.parse().map_err(|e| RemoteError::Setup(format!("--peer: {e}")))?;
        let config = PeerConfig::load(dir).map_err(|e| RemoteError::Setup(e.to_string()))?;
        let key = identity::load(dir).map_err(|e| RemoteError::Setup(e.to_string()))?;
        let relays = config.p2p.relays.iter().map(|a| crate::config::check_relay(a)).collect::<Result<_, _>>();
        let relays = relays.map_err(RemoteError::Setup)?;
        let node_config = NodeConfig { label: config.profile.label, relays, ..NodeConfig::default() };
        let node = Node::start(key, node_config, None).map_err(|e| RemoteError::Setup(e.to_string()))?;
        let unreachable = |why: String| RemoteError::Unreachable(format!("cannot reach {why}"));
        let reached = tokio::time::timeout(CONNECT_WAIT, node.connect(&target)).await;
        let peer = match reached {
            Ok(Ok(peer)) => peer,
            Ok(Err(NodeError::Unreachable(why))) => return Err(unreachable(why)),
            Ok(Err(e)) => return Err(unreachable(format!("{target}: {e}"))),
            Err(_) if matches!(target, Target::Id(_)) => {
                return Err(unreachable(format!("{target}: not found through a helper (p2p.relays) in time")))
            }
            Err(_) => return Err(unreachable(format!("{target}: timed out"))),
        };
        Ok(Session { node, peer })
    }

    async fn request(&self, proto: Proto, body: Vec<u8>) -> Result<Vec<u8>, RemoteError> {
        self.node.request(self.peer, proto, body).await.map_err(|e| match e {
            NodeError::Request(m) => RemoteError::Unreachable(m),
            other => RemoteError::Unreachable(other.to_string()),
        })
    }

    /// Any data-protocol request; prints the answer, exit 1 unless `"ok": true`.
    pub async fn data(&self, request: &Value) -> Result<Outcome, RemoteError> {
        let body = serde_json::to_vec(request).map_err(|e| RemoteError::Setup(e.to_string()))?;
        let answer = self.request(Proto::Data, body).await?;
        let parsed: Value =
            serde_json::from_slice(&answer).map_err(|e| RemoteError::Unreachable(format!("malformed answer: {e}")))?;
        let success = parsed.get("ok") == Some(&Value::Bool(true));
        Ok(Outcome { stdout: format!("{parsed}\n"), success })
    }

    /// `lua-call` of `function` with `params`.
    pub async fn call(&self, function: &str, params: Value) -> Result<Outcome, RemoteError> {
        self.data(&serde_json::json!({ "op": "lua-call", "function": function, "params": params })).await
    }

    /// Sends a direct message. A `!command`'s reply is the first message that comes back within
    /// `wait`; any other message gets none, so this returns once the peer has it.
    pub async fn cmd(&self, message: &str, wait: Duration) -> Result<Outcome, RemoteError> {
        let mut incoming = self.node.incoming();
        self.node.send_chat(self.peer, message).await.map_err(|e| RemoteError::Unreachable(e.to_string()))?;
        if goop_script::parse_command(message).is_none() {
            return Ok(Outcome { stdout: "delivered (no reply expected)\n".into(), success: true });
        }
        let reply = tokio::time::timeout(wait, async {
            while let Ok(msg) = incoming.recv().await {
                if msg.from == self.peer {
                    return Some(msg.content);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        Ok(Outcome { stdout: reply.map(|r| r + "\n").unwrap_or_default(), success: true })
    }

    /// A site file's bytes, or the refusal.
    pub async fn site(&self, path: &str) -> Result<Result<Vec<u8>, String>, RemoteError> {
        let body = serde_json::to_vec(&SiteRequest { path: path.to_string() })
            .map_err(|e| RemoteError::Setup(e.to_string()))?;
        let answer = self.request(Proto::Site, body).await?;
        let (header, bytes) = site::decode(&answer).map_err(RemoteError::Unreachable)?;
        Ok(if header.ok { Ok(bytes) } else { Err(header.error.unwrap_or_else(|| "refused".into())) })
    }
}
