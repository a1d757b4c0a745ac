//! One worker VM: runs a script's chunk in a fresh environment per call, under its limits.
//!
//! Per call the chunk runs again with a new global table whose `__index` is the frozen
//! globals, and a new read-only `goop` table, so nothing a call writes survives it. The
//! compiled chunk is cached per VM by script version.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, Table, Value, VmState};
use serde_json::Value as Json;

use crate::api::{json, kv, log};
use crate::error::Error;
use crate::invocation::{Extensions, Invocation, Peer};
use crate::module::{HostModule, Scope};
use crate::sandbox;
use crate::script::Script;

/// Most compiled chunks a VM keeps before dropping its cache (old versions pile up on reload).
const CACHE_LIMIT: usize = 512;

/// Most callers whose `goop` table a VM keeps per scope.
const GOOP_CACHE_LIMIT: usize = 256;

/// Lines of Lua traceback kept in a runtime error.
const TRACEBACK_LINES: usize = 6;

/// What every VM gets from the engine.
pub(crate) struct VmSetup {
    pub commands: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
    pub kv: Option<Arc<kv::KvStore>>,
    pub modules: Vec<Arc<dyn HostModule>>,
    pub local: Peer,
    pub timeout: Duration,
    pub max_memory_mb: usize,
}

/// Which entry point to run.
pub(crate) enum Entry<'a> {
    /// Only run the chunk and report which entry points it defines.
    Probe,
    /// `handle(args)`.
    Handle(&'a str),
    /// `call(request)` with these params.
    Call(&'a Json),
}

pub(crate) enum Output {
    Probe { handle: bool, call: bool },
    Reply(Option<String>),
    Result(Json),
}

/// Deadline shared with the interrupt callback.
struct Clock {
    epoch: Instant,
    /// Nanoseconds after `epoch`; `u64::MAX` when no call is running.
    deadline: AtomicU64,
    expired: AtomicBool,
}

pub(crate) struct Vm {
    lua: Lua,
    clock: Arc<Clock>,
    env_meta: Table,
    goop_meta_commands: Table,
    goop_meta_functions: Table,
    self_peer: Table,
    cache: HashMap<u64, Function>,
    /// Per scope (commands, data functions): caller id → (label, that caller's `goop`).
    goop_cache: [HashMap<String, (String, Table)>; 2],
    timeout: Duration,
    max_memory: usize,
    max_memory_mb: usize,
}

impl Vm {
    pub fn new(setup: &VmSetup) -> mlua::Result<Vm> {
        let (lua, globals) = sandbox::new_state()?;
        let commands_base = core_api(&lua, setup)?;
        let functions_base = core_api(&lua, setup)?;
        for module in &setup.modules {
            let table = module.build(&lua)?;
            functions_base.raw_set(module.name(), table.clone())?;
            if module.scope() == Scope::All {
                commands_base.raw_set(module.name(), table)?;
            }
        }
        lua.sandbox(true)?;
        let env_meta = frozen_index(&lua, globals)?;
        let self_peer = peer_table(&lua, &setup.local)?;
        let goop_meta_commands = frozen_index(&lua, freeze(commands_base)?)?;
        let goop_meta_functions = frozen_index(&lua, freeze(functions_base)?)?;

        let clock = Arc::new(Clock {
            epoch: Instant::now(),
            deadline: AtomicU64::new(u64::MAX),
            expired: AtomicBool::new(false),
        });
        let c = clock.clone();
        lua.set_interrupt(move |_| {
            let now = c.epoch.elapsed().as_nanos() as u64;
            if now >= c.deadline.load(Ordering::Relaxed) {
                // Keep failing on every check after the deadline, so `pcall` cannot hold on.
                c.expired.store(true, Ordering::Relaxed);
                return Err(mlua::Error::runtime("timeout: script ran past its deadline"));
            }
            Ok(VmState::Continue)
        });
        Ok(Vm {
            lua,
            clock,
            env_meta,
            goop_meta_commands,
            goop_meta_functions,
            self_peer,
            cache: HashMap::new(),
            goop_cache: Default::default(),
            timeout: setup.timeout,
            max_memory: setup.max_memory_mb.saturating_mul(1024 * 1024),
            max_memory_mb: setup.max_memory_mb,
        })
    }

    /// Runs `entry` of `script` for `caller`. On `Err` the VM must be discarded.
    pub fn run(
        &mut self,
        script: &Script,
        entry: Entry<'_>,
        caller: &Peer,
        extensions: Extensions,
    ) -> Result<Output, Error> {
        let deadline = Instant::now() + self.timeout;
        self.clock.expired.store(false, Ordering::Relaxed);
        let nanos = deadline.duration_since(self.clock.epoch).as_nanos() as u64;
        self.clock.deadline.store(nanos, Ordering::Relaxed);
        let _ = self.lua.set_memory_limit(self.lua.used_memory().saturating_add(self.max_memory));
        self.lua.set_app_data(Invocation { caller: caller.clone(), script: script.name.clone(), deadline, extensions });

        let result = self.run_inner(script, entry, caller);

        self.clock.deadline.store(u64::MAX, Ordering::Relaxed);
        let _ = self.lua.set_memory_limit(0);
        // A host call that refused to run past the deadline fails the call like an interrupt does.
        let timed_out = self.clock.expired.load(Ordering::Relaxed) || (result.is_err() && Instant::now() >= deadline);
        match result {
            _ if timed_out => Err(Error::Timeout { script: script.name.clone(), limit: self.timeout }),
            Ok(out) => Ok(out),
            Err(RunError::Lua(e)) => Err(self.classify(script, &e)),
            Err(RunError::Result(message)) => Err(Error::BadResult { script: script.name.clone(), message }),
        }
    }

    fn run_inner(&mut self, script: &Script, entry: Entry<'_>, caller: &Peer) -> Result<Output, RunError> {
        let lua = &self.lua.clone();
        let chunk = match self.cache.get(&script.id) {
            Some(f) => f.clone(),
            None => {
                if self.cache.len() >= CACHE_LIMIT {
                    self.cache.clear();
                }
                let f = lua
                    .load(&script.bytecode[..])
                    .set_name(format!("={}", script.chunk_name))
                    .set_mode(ChunkMode::Binary)
                    .into_function()?;
                self.cache.insert(script.id, f.clone());
                f
            }
        };
        let is_function = matches!(entry, Entry::Call(_));
        let env = lua.create_table()?;
        env.set_metatable(Some(self.env_meta.clone()))?;
        let goop = self.goop_table(is_function, caller)?;
        env.raw_set("goop", goop)?;
        chunk.set_environment(env.clone())?;
        chunk.call::<()>(())?;

        match entry {
            Entry::Probe => Ok(Output::Probe {
                handle: matches!(env.raw_get::<Value>("handle")?, Value::Function(_)),
                call: matches!(env.raw_get::<Value>("call")?, Value::Function(_)),
            }),
            Entry::Handle(args) => {
                let handle: Function = env.raw_get("handle")?;
                match handle.call::<Value>(args)? {
                    Value::Nil => Ok(Output::Reply(None)),
                    Value::String(s) => Ok(Output::Reply(Some(s.to_string_lossy()))),
                    v @ (Value::Number(_) | Value::Integer(_) | Value::Boolean(_)) => {
                        Ok(Output::Reply(Some(v.to_string()?)))
                    }
                    other => Err(RunError::Result(format!("handle must return a string, not a {}", other.type_name()))),
                }
            }
            Entry::Call(params) => {
                let call: Function = env.raw_get("call")?;
                let request = lua.create_table()?;
                let params = match params {
                    Json::Null => Value::Table(lua.create_table()?),
                    p => json::from_json(lua, p)?,
                };
                request.raw_set("params", params)?;
                request.raw_set("function", script.name.as_str())?;
                let result = call.call::<Value>(request)?;
                json::to_json(&result).map(Output::Result).map_err(RunError::Result)
            }
        }
    }

    /// `goop` for a call: `peer` and `self`, then the shared API through `__index`.
    ///
    /// The table is read-only all the way down, so it is built once per caller and reused.
    fn goop_table(&mut self, is_function: bool, caller: &Peer) -> mlua::Result<Table> {
        let cache = &mut self.goop_cache[usize::from(is_function)];
        if let Some((label, table)) = cache.get(caller.id.as_str()) {
            if *label == caller.label {
                return Ok(table.clone());
            }
        }
        if cache.len() >= GOOP_CACHE_LIMIT {
            cache.clear();
        }
        let meta = if is_function { &self.goop_meta_functions } else { &self.goop_meta_commands };
        let lua = &self.lua;
        let goop = lua.create_table_with_capacity(0, 2)?;
        goop.raw_set("peer", peer_table(lua, caller)?)?;
        goop.raw_set("self", self.self_peer.clone())?;
        goop.set_metatable(Some(meta.clone()))?;
        goop.set_readonly(true);
        cache.insert(caller.id.clone(), (caller.label.clone(), goop.clone()));
        Ok(goop)
    }

    fn classify(&self, script: &Script, e: &mlua::Error) -> Error {
        if is_memory_error(e) {
            return Error::Memory { script: script.name.clone(), limit_mb: self.max_memory_mb };
        }
        let text = lua_message(e);
        let (message, traceback) = match text.split_once("\nstack traceback:") {
            Some((m, t)) => (
                m.to_string(),
                t.lines().filter(|l| !l.trim().is_empty()).take(TRACEBACK_LINES).collect::<Vec<_>>().join("\n"),
            ),
            None => (text.clone(), String::new()),
        };
        Error::Runtime { script: script.name.clone(), message: message.trim().to_string(), traceback }
    }
}

enum RunError {
    Lua(mlua::Error),
    Result(String),
}

impl From<mlua::Error> for RunError {
    fn from(e: mlua::Error) -> Self {
        RunError::Lua(e)
    }
}

/// The script's own message, without mlua's "runtime error: " prefix.
fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, traceback } => {
            format!("{}\n{traceback}", lua_message(cause))
        }
        mlua::Error::WithContext { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        other => other.to_string().contains("not enough memory"),
    }
}

fn peer_table(lua: &Lua, peer: &Peer) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set("id", peer.id.as_str())?;
    t.raw_set("label", peer.label.as_str())?;
    t.set_readonly(true);
    Ok(t)
}

/// `goop.json`, `goop.kv`, `goop.log`, `goop.commands` — the core both scopes share.
fn core_api(lua: &Lua, setup: &VmSetup) -> mlua::Result<Table> {
    let goop = lua.create_table()?;
    goop.raw_set("json", json::module(lua)?)?;
    goop.raw_set("log", log::module(lua)?)?;
    if let Some(store) = &setup.kv {
        goop.raw_set("kv", kv::module(lua, store.clone())?)?;
    }
    let commands = setup.commands.clone();
    goop.raw_set("commands", lua.create_function(move |_, ()| Ok(commands()))?)?;
    Ok(goop)
}

/// Makes `t` and every table directly inside it read-only.
fn freeze(t: Table) -> mlua::Result<Table> {
    for pair in t.pairs::<Value, Value>() {
        if let (_, Value::Table(inner)) = pair? {
            inner.set_readonly(true);
        }
    }
    t.set_readonly(true);
    Ok(t)
}

/// A read-only metatable `{ __index = target }`.
fn frozen_index(lua: &Lua, target: Table) -> mlua::Result<Table> {
    let meta = lua.create_table()?;
    meta.raw_set("__index", target)?;
    meta.raw_set("__metatable", false)?;
    meta.set_readonly(true);
    Ok(meta)
}
