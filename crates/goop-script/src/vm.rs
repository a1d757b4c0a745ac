//! One worker VM: runs a script's chunk in a fresh environment per call, under its limits.
//!
//! Per call the chunk runs again with a new global table whose `__index` is the frozen
//! globals, holding a read-only `goop` table and `_G` (the table itself), so nothing a call
//! writes survives it; what it adds to the libraries is unlinked after it (`additions.rs`).
//! The compiled chunk is cached per VM by script version.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Table, Value};
use serde_json::Value as Json;

use crate::additions::Additions;
use crate::api::json::{self, ConvertError};
use crate::api::kv_store::KvStore;
use crate::api::{kv, log, route};
use crate::budget::Budget;
use crate::engine::{Params, MAX_REPLY_BYTES};
use crate::error::Error;
use crate::event::MAX_HANDLER_VALUES;
use crate::failure;
use crate::invocation::{Extensions, Invocation, Peer};
use crate::meter::{Meter, Stop};
use crate::module::{HostModule, Scope};
use crate::sandbox;
use crate::script::{Origin, Script};
use crate::text::lossy_prefix;

/// Most compiled chunks a VM keeps before dropping its cache (old versions pile up on reload).
const CACHE_LIMIT: usize = 512;

/// Most callers whose `goop` table a VM keeps per scope.
const GOOP_CACHE_LIMIT: usize = 256;

/// Largest result a data function may return, in bytes of JSON.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// Garbage a VM may hold above its baseline when it goes back to the pool; past it, a full
/// collection runs, so idle workers hold about their baseline whatever the last call stored.
const IDLE_SLACK_BYTES: usize = 256 * 1024;

/// What every VM gets from the engine.
pub(crate) struct VmSetup {
    pub commands: Arc<dyn Fn() -> Vec<String> + Send + Sync>,
    pub kv: Option<Arc<KvStore>>,
    pub modules: Vec<Arc<dyn HostModule>>,
    pub local: Peer,
    pub timeout: Duration,
    pub max_memory_mb: usize,
    pub max_steps: u64,
}

/// Which entry point to run.
pub(crate) enum Entry<'a> {
    /// Only run the chunk and report which of these global functions it defines.
    Probe(&'a [String]),
    /// `handle(args)`.
    Handle(&'a str),
    /// `call(request)` with these params.
    Call(Params<'a>),
    /// The event handler `name(args…)`.
    Handler { name: &'a str, args: &'a [Json] },
}

pub(crate) enum Output {
    /// The probed names the chunk defines as functions.
    Defined(Vec<String>),
    Reply(Option<String>),
    Result(Json),
    /// What an event handler returned.
    Values(Vec<Json>),
}

pub(crate) struct Vm {
    lua: Lua,
    meter: Arc<Meter>,
    env_meta: Table,
    goop_meta_commands: Table,
    goop_meta_functions: Table,
    self_peer: Table,
    /// What a cached chunk keeps as its environment between calls: empty, read-only.
    idle_env: Table,
    /// Luau's own `pcall`, through which entry points run.
    pcall: Function,
    /// What calls add to the libraries, unlinked after each.
    additions: Additions,
    cache: HashMap<u64, Function>,
    /// Per scope (commands, data functions): caller id → (label, that caller's `goop`).
    goop_cache: [HashMap<String, (String, Table)>; 2],
    timeout: Duration,
    max_memory: usize,
    max_memory_mb: usize,
    max_steps: u64,
    /// Bytes the VM holds when freshly built.
    baseline: usize,
    /// Whether the last call left the VM fit for another (it ended well, or in a plain script error).
    reusable: bool,
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
        let additions = Additions::install(&lua, &globals)?;
        lua.sandbox(true)?;
        let pcall: Function = globals.raw_get("pcall")?;
        let env_meta = frozen_index(&lua, globals)?;
        let self_peer = peer_table(&lua, &setup.local)?;
        let goop_meta_commands = frozen_index(&lua, freeze(commands_base)?)?;
        let goop_meta_functions = frozen_index(&lua, freeze(functions_base)?)?;
        let idle_env = lua.create_table()?;
        idle_env.set_readonly(true);

        let meter = Meter::install(&lua);
        lua.gc_collect()?;
        Ok(Vm {
            baseline: lua.used_memory(),
            lua,
            meter,
            env_meta,
            goop_meta_commands,
            goop_meta_functions,
            self_peer,
            idle_env,
            pcall,
            additions,
            cache: HashMap::new(),
            goop_cache: Default::default(),
            timeout: setup.timeout,
            max_memory: setup.max_memory_mb.saturating_mul(1024 * 1024),
            max_memory_mb: setup.max_memory_mb,
            max_steps: setup.max_steps,
            reusable: true,
        })
    }

    /// Whether the VM may serve another call: false after a limit was hit or its state may be off.
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// Bytes the VM's allocator holds now.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// Runs `entry` of `script` for `caller`. Afterwards [`Vm::reusable`] says whether the VM may
    /// serve another call; it holds nothing of this one either way.
    pub fn run(
        &mut self,
        script: &Script,
        entry: Entry<'_>,
        caller: &Peer,
        extensions: Extensions,
    ) -> Result<Output, Error> {
        let deadline = Instant::now() + self.timeout;
        self.meter.start(deadline, self.max_steps);
        // The call's globals are made before its memory limit is set: a few small tables of the
        // host's, written without the protected calls mlua makes under a limit.
        let env = self.call_env(script, &entry, caller);
        let memory_limit = self.lua.used_memory().saturating_add(self.max_memory);
        let _ = self.lua.set_memory_limit(memory_limit);
        let invocation = Invocation {
            caller: caller.clone(),
            script: script.name.clone(),
            origin: script.origin,
            deadline,
            memory_limit,
            extensions,
        };
        self.lua.set_app_data(invocation);

        let result = env.map_err(RunError::from).and_then(|env| self.run_inner(script, entry, env));

        let stop = self.meter.finish();
        let _ = self.lua.set_memory_limit(0);
        let forgotten = self.forget_call(script);
        // A host call that refused to run past the deadline fails the call like an interrupt does.
        let timed_out = stop == Some(Stop::Time) || (result.is_err() && Instant::now() >= deadline);
        let (out, reusable) = match result {
            _ if stop == Some(Stop::Steps) => {
                (Err(Error::Steps { script: script.name.clone(), limit: self.max_steps }), false)
            }
            _ if timed_out => (Err(Error::Timeout { script: script.name.clone(), limit: self.timeout }), false),
            Ok(out) => (Ok(out), true),
            Err(RunError::Lua(e)) => (Err(self.classify(script, &e)), failure::is_plain_script_error(&e)),
            Err(RunError::Result(message)) => (Err(Error::BadResult { script: script.name.clone(), message }), true),
        };
        // A VM that may still hold the call's additions serves no other call.
        self.reusable = reusable && forgotten;
        out
    }

    /// Lets go of everything the call made: the chunk's environment, its additions to the
    /// libraries, the invocation's host values, and (past a little slack) the garbage, so
    /// nothing of it outlives the call. False when the additions could not be unlinked.
    fn forget_call(&mut self, script: &Script) -> bool {
        if let Some(chunk) = self.cache.get(&script.id) {
            let _ = chunk.set_environment(self.idle_env.clone());
        }
        let forgotten = self.additions.forget().is_ok();
        self.lua.remove_app_data::<Invocation>();
        if self.lua.used_memory() > self.baseline + IDLE_SLACK_BYTES {
            let _ = self.lua.gc_collect();
        }
        forgotten
    }

    /// The call's globals: `goop` and `_G`, then the frozen globals through `__index`.
    fn call_env(&mut self, script: &Script, entry: &Entry<'_>, caller: &Peer) -> mlua::Result<Table> {
        let is_function = match entry {
            Entry::Call(_) => true,
            Entry::Handle(_) => false,
            Entry::Probe(_) | Entry::Handler { .. } => script.origin == Origin::Functions,
        };
        let env = self.lua.create_table_with_capacity(0, 2)?;
        env.set_metatable(Some(self.env_meta.clone()))?;
        env.raw_set("goop", self.goop_table(is_function, caller)?)?;
        // `_G` is this call's globals, as in a state of its own: `_G[name]` finds the script's
        // functions and `_G.x = 1` sets `x`; the frozen globals stay behind `__index`.
        env.raw_set("_G", &env)?;
        Ok(env)
    }

    fn run_inner(&mut self, script: &Script, entry: Entry<'_>, env: Table) -> Result<Output, RunError> {
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
        chunk.set_environment(env.clone())?;
        chunk.call::<()>(())?;

        match entry {
            Entry::Probe(names) => {
                let mut defined = Vec::new();
                for name in names {
                    if matches!(env.raw_get::<Value>(name.as_str())?, Value::Function(_)) {
                        defined.push(name.clone());
                    }
                }
                Ok(Output::Defined(defined))
            }
            Entry::Handler { name, args } => {
                let handler: Function = env.raw_get(name)?;
                let args = args.iter().map(|a| json::from_json(lua, a)).collect::<mlua::Result<MultiValue>>()?;
                let returned = self.protected_values(&handler, args)?;
                let mut values = Vec::with_capacity(returned.len().min(MAX_HANDLER_VALUES));
                for value in returned.iter().take(MAX_HANDLER_VALUES) {
                    values.push(json::to_json(value, &mut Budget::of(lua)).map_err(|e| match e {
                        ConvertError::Invalid(m) => RunError::Result(m),
                        stop => RunError::Lua(stop.into()),
                    })?);
                }
                Ok(Output::Values(values))
            }
            Entry::Handle(args) => {
                let handle: Function = env.raw_get("handle")?;
                match self.protected(&handle, args)? {
                    Value::Nil => Ok(Output::Reply(None)),
                    // Only what a reply can hold is copied; the engine cuts it with a marker.
                    Value::String(s) => Ok(Output::Reply(Some(lossy_prefix(&s.as_bytes(), MAX_REPLY_BYTES + 1)))),
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
                    Params::Json(p) => json::from_json(lua, p)?,
                    Params::Text(text) => {
                        json::from_json_text(lua, text, Budget::of(lua)).map_err(mlua::Error::from)?
                    }
                };
                let params = match params {
                    Value::Nil => Value::Table(lua.create_table()?),
                    p => p,
                };
                request.raw_set("params", params)?;
                request.raw_set("function", script.name.as_str())?;
                let result = self.protected(&call, request)?;
                let json = json::to_json(&result, &mut Budget::of(lua)).map_err(|e| match e {
                    ConvertError::Invalid(m) => RunError::Result(m),
                    stop => RunError::Lua(stop.into()),
                })?;
                if json::text_len(&json, MAX_RESULT_BYTES) > MAX_RESULT_BYTES {
                    let limit = MAX_RESULT_BYTES / (1024 * 1024);
                    return Err(RunError::Result(format!("result is larger than {limit} MB of JSON")));
                }
                Ok(Output::Result(json))
            }
        }
    }

    /// Calls an entry point through Luau's `pcall`, so an error the script raises comes back as
    /// its value: no traceback string is built (the message names file and line), and only
    /// what is kept of it is copied. Host errors and limits come back as mlua's errors.
    fn protected(&self, entry: &Function, arg: impl mlua::IntoLua) -> Result<Value, RunError> {
        let (ok, value): (bool, Value) = self.pcall.call((entry, arg))?;
        if ok {
            return Ok(value);
        }
        Err(self.raised(value))
    }

    /// [`Vm::protected`] keeping every value the entry point returned.
    fn protected_values(&self, entry: &Function, args: impl mlua::IntoLuaMulti) -> Result<MultiValue, RunError> {
        let mut call = args.into_lua_multi(&self.lua)?;
        call.push_front(Value::Function(entry.clone()));
        let mut returned: MultiValue = self.pcall.call(call)?;
        if matches!(returned.pop_front(), Some(Value::Boolean(true))) {
            return Ok(returned);
        }
        Err(self.raised(returned.pop_front().unwrap_or(Value::Nil)))
    }

    /// The error for what a script raised; only what is kept of it is copied.
    fn raised(&self, value: Value) -> RunError {
        RunError::Lua(match value {
            Value::Error(e) => *e,
            Value::String(s) => mlua::Error::RuntimeError(lossy_prefix(&s.as_bytes(), failure::MAX_ERROR_BYTES)),
            v @ (Value::Number(_) | Value::Integer(_) | Value::Boolean(_) | Value::Nil) => {
                mlua::Error::RuntimeError(v.to_string().unwrap_or_default())
            }
            // A table raised as an error reaches the caller as its JSON, when it has a short one.
            Value::Table(t) => match json::to_json_text(&Value::Table(t), &mut Budget::of(&self.lua)) {
                Ok(text) if text.len() <= failure::MAX_ERROR_BYTES => {
                    mlua::Error::RuntimeError(String::from_utf8_lossy(&text).into_owned())
                }
                _ => mlua::Error::RuntimeError("script raised a table as its error".into()),
            },
            other => mlua::Error::RuntimeError(format!("script raised a {} as its error", other.type_name())),
        })
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
        if failure::is_memory_error(e) {
            return Error::Memory { script: script.name.clone(), limit_mb: self.max_memory_mb };
        }
        failure::runtime_error(&script.name, e)
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

/// `{id, label, email}`. goop2 scripts read `email`; peers here share none, so it is empty.
fn peer_table(lua: &Lua, peer: &Peer) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 3)?;
    t.raw_set("id", peer.id.as_str())?;
    t.raw_set("label", peer.label.as_str())?;
    t.raw_set("email", "")?;
    t.set_readonly(true);
    Ok(t)
}

/// `goop.json`, `goop.kv`, `goop.log`, `goop.commands`, `goop.route`, `goop.owner` — the core both scopes share.
fn core_api(lua: &Lua, setup: &VmSetup) -> mlua::Result<Table> {
    let goop = lua.create_table()?;
    goop.raw_set("json", json::module(lua)?)?;
    goop.raw_set("log", log::module(lua)?)?;
    if let Some(store) = &setup.kv {
        goop.raw_set("kv", kv::module(lua, store.clone())?)?;
    }
    let commands = setup.commands.clone();
    goop.raw_set("commands", lua.create_function(move |_, ()| Ok(commands()))?)?;
    route::install(lua, &goop, &setup.local.id)?;
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
