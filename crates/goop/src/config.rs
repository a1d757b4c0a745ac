//! `goop.json`: the peer's settings, read with errors that name the offending field.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::node::Limits;

/// The config file's name inside a peer folder.
pub const FILE: &str = "goop.json";

/// Why a peer's config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {field}: {message}")]
    Invalid { file: PathBuf, field: String, message: String },
    #[error("{0} is not a peer folder (no goop.json); create one with: goop init {0}")]
    NotAPeerFolder(PathBuf),
}

/// The whole `goop.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    pub profile: Profile,
    pub lua: Lua,
    pub p2p: P2p,
    pub viewer: Viewer,
}

/// The local web viewer `goop run` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Viewer {
    pub enabled: bool,
    /// `IP:PORT`. A non-loopback address exposes the peer to its network: only when told to.
    pub addr: String,
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer { enabled: true, addr: crate::viewer::DEFAULT_ADDR.into() }
    }
}

/// How the peer finds others, and what other peers may make it hold (see `node::Limits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2p {
    /// Discover peers on the local network.
    pub mdns: bool,
    /// Multiaddrs dialed at start.
    pub bootstrap: Vec<String>,
    /// Helper nodes (`goop relay`), each `…/p2p/<ID>`: reachability, relay slots, discovery.
    pub relays: Vec<String>,
    pub max_connections_per_peer: u32,
    pub max_incoming_connections: u32,
    pub max_pending_connections: u32,
    pub max_streams_per_connection: usize,
    pub max_requests_per_peer: usize,
    pub max_requests: usize,
    pub answer_memory_mb: usize,
    pub answer_memory_per_peer_mb: usize,
}

impl Default for P2p {
    fn default() -> Self {
        let l = Limits::default();
        P2p {
            mdns: true,
            bootstrap: Vec::new(),
            relays: Vec::new(),
            max_connections_per_peer: l.connections_per_peer,
            max_incoming_connections: l.incoming_connections,
            max_pending_connections: l.pending_connections,
            max_streams_per_connection: l.streams_per_connection,
            max_requests_per_peer: l.requests_per_peer,
            max_requests: l.requests,
            answer_memory_mb: l.answer_bytes / MB,
            answer_memory_per_peer_mb: l.answer_bytes_per_peer / MB,
        }
    }
}

const MB: usize = 1024 * 1024;

impl P2p {
    /// The transport's limits on remote peers.
    pub fn limits(&self) -> Limits {
        Limits {
            connections_per_peer: self.max_connections_per_peer,
            incoming_connections: self.max_incoming_connections,
            pending_connections: self.max_pending_connections,
            streams_per_connection: self.max_streams_per_connection,
            requests_per_peer: self.max_requests_per_peer,
            requests: self.max_requests,
            answer_bytes: self.answer_memory_mb * MB,
            answer_bytes_per_peer: self.answer_memory_per_peer_mb * MB,
        }
    }

    fn validate(&self) -> Result<(), (String, String)> {
        for (i, addr) in self.bootstrap.iter().enumerate() {
            if let Err(e) = addr.parse::<libp2p::Multiaddr>() {
                return Err((format!("p2p.bootstrap[{i}]"), format!("not a multiaddr ({e}): {addr:?}")));
            }
        }
        for (i, addr) in self.relays.iter().enumerate() {
            check_relay(addr).map_err(|e| (format!("p2p.relays[{i}]"), e))?;
        }
        in_range("p2p.max_connections_per_peer", self.max_connections_per_peer.into(), 1, 64)?;
        in_range("p2p.max_incoming_connections", self.max_incoming_connections.into(), 1, 65_536)?;
        in_range("p2p.max_pending_connections", self.max_pending_connections.into(), 1, 65_536)?;
        in_range("p2p.max_streams_per_connection", self.max_streams_per_connection as u64, 1, 1024)?;
        in_range("p2p.max_requests", self.max_requests as u64, 1, 4096)?;
        in_range("p2p.max_requests_per_peer", self.max_requests_per_peer as u64, 1, self.max_requests as u64)?;
        in_range("p2p.answer_memory_mb", self.answer_memory_mb as u64, 5, 4096)?;
        // A share below 5 MB could never carry the largest site file (4 MB and its header).
        in_range(
            "p2p.answer_memory_per_peer_mb",
            self.answer_memory_per_peer_mb as u64,
            5,
            self.answer_memory_mb as u64,
        )
    }
}

/// Who this peer says it is, for display only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    pub label: String,
}

/// The spec's `lua` section, plus `hot_reload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lua {
    pub enabled: bool,
    pub script_dir: String,
    pub timeout_seconds: u64,
    pub max_memory_mb: usize,
    /// Steps (calls, returns, loop turns) one invocation may take; 0 = no budget.
    pub max_steps: u64,
    pub rate_limit_per_peer: u32,
    pub rate_limit_global: u32,
    pub http_enabled: bool,
    pub kv_enabled: bool,
    pub hot_reload: bool,
    /// Lets `goop.http` reach 127.0.0.1/::1. For tests and local development only.
    pub http_allow_loopback: bool,
}

impl Default for Lua {
    fn default() -> Self {
        Lua {
            enabled: false,
            script_dir: "site/lua".into(),
            timeout_seconds: 5,
            max_memory_mb: 10,
            max_steps: 50_000_000,
            rate_limit_per_peer: 30,
            rate_limit_global: 120,
            http_enabled: true,
            kv_enabled: true,
            hot_reload: true,
            http_allow_loopback: false,
        }
    }
}

impl PeerConfig {
    /// Reads `dir/goop.json`; a missing file means every default (scripting off).
    pub fn load(dir: &Path) -> Result<PeerConfig, ConfigError> {
        let file = dir.join(FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                PeerConfig::parse(&text).map_err(|(field, message)| ConfigError::Invalid { file, field, message })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::NotAPeerFolder(dir.to_path_buf())),
            Err(source) => Err(ConfigError::Read { file, source }),
        }
    }

    /// Parses and validates; the error is `(field path, message)`.
    pub fn parse(text: &str) -> Result<PeerConfig, (String, String)> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: PeerConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "(top level)".to_string() } else { path };
            (field, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let lua = &self.lua;
        in_range("lua.timeout_seconds", lua.timeout_seconds, 1, 60)?;
        in_range("lua.max_memory_mb", lua.max_memory_mb as u64, 1, 1024)?;
        let dir = Path::new(&lua.script_dir);
        let inside = dir.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if lua.script_dir.is_empty() || !inside {
            return Err((
                "lua.script_dir".into(),
                format!("must be a relative path inside the peer folder, got {:?}", lua.script_dir),
            ));
        }
        if let Err(e) = self.viewer.addr.parse::<std::net::SocketAddr>() {
            return Err(("viewer.addr".into(), format!("not an IP:PORT address ({e}): {:?}", self.viewer.addr)));
        }
        self.p2p.validate()
    }

    /// The engine's settings for a peer in `dir` whose own identity is `local`.
    pub fn engine_config(&self, dir: &Path, local: goop_script::Peer) -> goop_script::Config {
        let script_dir = dir.join(&self.lua.script_dir);
        let mut c = goop_script::Config::new(&script_dir);
        c.kv_dir = self.lua.kv_enabled.then(|| script_dir.join(".state"));
        c.timeout = Duration::from_secs(self.lua.timeout_seconds);
        c.max_memory_mb = self.lua.max_memory_mb;
        c.max_steps = self.lua.max_steps;
        c.rate_limit_per_peer = self.lua.rate_limit_per_peer;
        c.rate_limit_global = self.lua.rate_limit_global;
        c.hot_reload = self.lua.hot_reload;
        c.local = local;
        c.events = crate::events::declared();
        c
    }
}

/// A helper's address: a multiaddr that ends in `/p2p/<its peer ID>`.
pub fn check_relay(addr: &str) -> Result<libp2p::Multiaddr, String> {
    let parsed: libp2p::Multiaddr = addr.parse().map_err(|e| format!("not a multiaddr ({e}): {addr:?}"))?;
    match parsed.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => Ok(parsed),
        _ => Err(format!("must end in /p2p/<the helper's peer ID>: {addr:?}")),
    }
}

fn in_range(field: &str, value: u64, min: u64, max: u64) -> Result<(), (String, String)> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err((field.into(), format!("must be between {min} and {max}, got {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let c = PeerConfig::parse("{}").unwrap();
        assert!(!c.lua.enabled);
        assert_eq!(c.lua.script_dir, "site/lua");
        assert_eq!((c.lua.timeout_seconds, c.lua.max_memory_mb, c.lua.max_steps), (5, 10, 50_000_000));
        assert_eq!((c.lua.rate_limit_per_peer, c.lua.rate_limit_global), (30, 120));
        assert!(c.lua.http_enabled && c.lua.kv_enabled && c.lua.hot_reload);
        assert_eq!(c.p2p.limits(), Limits::default());
        assert_eq!((c.p2p.answer_memory_mb, c.p2p.answer_memory_per_peer_mb), (64, 16));
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let (field, msg) = PeerConfig::parse(r#"{"lua": {"timeot_seconds": 5}}"#).unwrap_err();
        assert_eq!(field, "lua.timeot_seconds");
        assert!(msg.contains("unknown field"), "{msg}");
        let (field, _) = PeerConfig::parse(r#"{"luaa": {}}"#).unwrap_err();
        assert_eq!(field, "luaa");
    }

    #[test]
    fn wrong_types_and_ranges_name_the_field() {
        let (field, _) = PeerConfig::parse(r#"{"lua": {"enabled": "yes"}}"#).unwrap_err();
        assert_eq!(field, "lua.enabled");
        for (json, field) in [
            (r#"{"lua": {"timeout_seconds": 0}}"#, "lua.timeout_seconds"),
            (r#"{"lua": {"timeout_seconds": 61}}"#, "lua.timeout_seconds"),
            (r#"{"lua": {"max_memory_mb": 2000}}"#, "lua.max_memory_mb"),
            (r#"{"lua": {"script_dir": "../elsewhere"}}"#, "lua.script_dir"),
            (r#"{"lua": {"script_dir": "/etc"}}"#, "lua.script_dir"),
            (r#"{"p2p": {"bootstrap": ["/ip4/1.2.3.4/tcp/1", "nonsense"]}}"#, "p2p.bootstrap[1]"),
            (r#"{"viewer": {"addr": "localhost"}}"#, "viewer.addr"),
            (r#"{"p2p": {"max_connections_per_peer": 0}}"#, "p2p.max_connections_per_peer"),
            (r#"{"p2p": {"max_streams_per_connection": 5000}}"#, "p2p.max_streams_per_connection"),
            (r#"{"p2p": {"max_requests": 8, "max_requests_per_peer": 9}}"#, "p2p.max_requests_per_peer"),
            (r#"{"p2p": {"answer_memory_mb": 4}}"#, "p2p.answer_memory_mb"),
            (r#"{"p2p": {"answer_memory_mb": 32, "answer_memory_per_peer_mb": 33}}"#, "p2p.answer_memory_per_peer_mb"),
            (r#"{"p2p": {"answer_memory_mb": -1}}"#, "p2p.answer_memory_mb"),
            (r#"{"viewer": {"adr": "127.0.0.1:1"}}"#, "viewer.adr"),
        ] {
            assert_eq!(PeerConfig::parse(json).unwrap_err().0, field, "{json}");
        }
        let (field, _) = PeerConfig::parse(r#"{"lua": {"timeout_seconds": -1}}"#).unwrap_err();
        assert_eq!(field, "lua.timeout_seconds");
        let (field, _) = PeerConfig::parse(r#"{"lua": {"max_steps": -1}}"#).unwrap_err();
        assert_eq!(field, "lua.max_steps");
    }

    #[test]
    fn the_step_budget_reaches_the_engine() {
        let off = PeerConfig::parse(r#"{"lua": {"max_steps": 0}}"#).unwrap();
        assert_eq!(off.engine_config(Path::new("/p"), goop_script::Peer::default()).max_steps, 0);
        let set = PeerConfig::parse(r#"{"lua": {"max_steps": 1000}}"#).unwrap();
        assert_eq!(set.engine_config(Path::new("/p"), goop_script::Peer::default()).max_steps, 1000);
    }
}
