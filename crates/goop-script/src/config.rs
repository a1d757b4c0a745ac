//! The engine's settings: where scripts live, their limits, rate limits, pool size.

use std::path::PathBuf;
use std::time::Duration;

use crate::event::Event;
use crate::invocation::Peer;

/// Settings of an [`Engine`](crate::Engine). [`Config::new`] gives the spec's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The script folder (`site/lua`): commands in it, data functions in `functions/`.
    pub script_dir: PathBuf,
    /// Where `goop.kv` keeps its files; `None` removes `goop.kv`. Default `script_dir/.state`.
    pub kv_dir: Option<PathBuf>,
    /// Time one invocation may run, host calls included. Default 5 s.
    pub timeout: Duration,
    /// Steps one invocation may take (0 = no budget): the VM's safepoints, i.e. calls, returns,
    /// loop iterations and pattern-matching steps, so a script stops at the same point on any
    /// machine. Host work is not counted (the deadline and memory limit bound it). Default 50
    /// million: over a hundred times a heavy call (sorting 10,000 records with a Lua comparator
    /// takes 430,000), and about 2 s of a tight loop.
    pub max_steps: u64,
    /// Memory one invocation may allocate, in MiB, counted by the VM's allocator. Default 10.
    pub max_memory_mb: usize,
    /// Calls per minute per caller per script (0 = unlimited). Default 30.
    pub rate_limit_per_peer: u32,
    /// Calls per minute to all scripts together (0 = unlimited). Default 120.
    pub rate_limit_global: u32,
    /// Reload scripts when their files change. Default true.
    pub hot_reload: bool,
    /// Most worker VMs, i.e. invocations running at once. Default 16.
    pub workers: usize,
    /// Most workers one caller holds at once (the peer itself is not limited). Default 4. An
    /// eighth of the workers is kept for callers that hold none.
    pub workers_per_caller: usize,
    /// How long a call waits for a free worker before failing with `busy`. Default 2 s.
    pub busy_wait: Duration,
    /// This peer, as `goop.self`.
    pub local: Peer,
    /// The events scripts may handle ([`Engine::fire`](crate::Engine::fire)). Default none.
    pub events: Vec<Event>,
}

impl Config {
    pub fn new(script_dir: impl Into<PathBuf>) -> Self {
        let script_dir = script_dir.into();
        Config {
            kv_dir: Some(script_dir.join(".state")),
            script_dir,
            timeout: Duration::from_secs(5),
            max_steps: 50_000_000,
            max_memory_mb: 10,
            rate_limit_per_peer: 30,
            rate_limit_global: 120,
            hot_reload: true,
            workers: 16,
            workers_per_caller: 4,
            busy_wait: Duration::from_secs(2),
            local: Peer::default(),
            events: Vec::new(),
        }
    }
}
