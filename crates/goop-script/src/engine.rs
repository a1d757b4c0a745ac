//! The engine: owns the registry, the VM pool and the limits, and runs invocations.

use std::collections::HashMap;
use std::fmt::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value as Json;

use crate::api::kv_store::KvStore;
use crate::config::Config;
use crate::error::{Error, LoadError};
use crate::event::{Fired, HandlerRun};
use crate::invocation::{Extensions, Peer};
use crate::module::HostModule;
use crate::pool::Pool;
use crate::ratelimit::RateLimits;
use crate::registry::{Registry, Removal};
use crate::schedule::{self, Schedule};
use crate::script::{Origin, Script};
use crate::text::cut;
use crate::vm::{Entry, Output, Vm, VmSetup};
use crate::watch::{self, Watcher};

/// Longest chat reply, in bytes; longer replies are cut and end with [`TRUNCATED`].
pub const MAX_REPLY_BYTES: usize = 4096;
/// Appended to a reply that was cut.
pub const TRUNCATED: &str = "\n[reply truncated]";

/// What to do with an incoming chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatReply {
    /// Not a `!command`: the host treats it as an ordinary message.
    NotACommand,
    /// A command ran and has nothing to say.
    Silent,
    /// The command's reply: send it back to the sender.
    Text(String),
    /// The command is unknown, could not run, or failed: send `reply` back to the sender (it
    /// names no host path); `error` is the cause, for the owner.
    Failed { reply: String, error: Error },
}

/// A data function's params (`request.params`; `null` or nothing is an empty table).
#[derive(Debug, Clone, Copy)]
pub enum Params<'a> {
    /// A JSON value the host already holds.
    Json(&'a Json),
    /// JSON text, decoded straight into Lua values: the VM's allocator counts them, and the
    /// host builds no tree of its own (what a peer does with a remote caller's request).
    Text(&'a [u8]),
}

/// `lua-list` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub name: String,
    pub description: String,
}

/// What the engine knows about one script file, loaded or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    pub name: String,
    pub file: PathBuf,
    /// True for files in `functions/`.
    pub in_functions_dir: bool,
    pub description: String,
    pub rate_limit: Option<u32>,
    pub has_handle: bool,
    pub has_call: bool,
    /// The declared events it handles.
    pub handlers: Vec<String>,
    /// Whether some version of it is active.
    pub loaded: bool,
    /// Why its current source failed to load.
    pub error: Option<LoadError>,
    /// Runs since the engine started, all versions of the file together.
    pub invocations: u64,
    /// Runs that ended in an error (rate limits and a busy pool not counted: the script never ran).
    pub errors: u64,
    /// The newest run error, `file:line: message` when the error named a line.
    pub last_error: Option<String>,
}

/// What the engine counts about the runs of one script file.
#[derive(Debug, Clone, Default)]
struct RunStats {
    invocations: u64,
    errors: u64,
    last_error: Option<String>,
}

type Snapshot = Arc<RwLock<Arc<Registry>>>;

struct Shared {
    config: Config,
    registry: Snapshot,
    pool: Pool,
    limits: RateLimits,
    /// A VM of its own for loading scripts, so a reload never waits on busy workers.
    loader: Mutex<Option<Vm>>,
    loader_setup: VmSetup,
    /// The global functions a loaded script is looked at for: `handle`, `call`, the events.
    probed: Vec<String>,
    stats: Mutex<HashMap<(Origin, String), RunStats>>,
}

/// The script engine. Share it between threads with an `Arc`; calls run in parallel.
pub struct Engine {
    shared: Arc<Shared>,
    _watcher: Option<Watcher>,
}

impl Engine {
    /// Starts an engine with the core `goop` API only.
    pub fn new(config: Config) -> Result<Engine, Error> {
        Engine::with_modules(config, Vec::new())
    }

    /// Starts an engine whose `goop` table also holds the host's `modules`, loads every
    /// script, and watches the folder when `config.hot_reload` is set.
    pub fn with_modules(config: Config, modules: Vec<Arc<dyn HostModule>>) -> Result<Engine, Error> {
        std::fs::create_dir_all(&config.script_dir)
            .map_err(|e| Error::Setup(format!("cannot create {}: {e}", config.script_dir.display())))?;
        let registry: Snapshot = Arc::new(RwLock::new(Arc::new(Registry::default())));
        let names = Arc::clone(&registry);
        let commands: Arc<dyn Fn() -> Vec<String> + Send + Sync> = Arc::new(move || {
            let reg = read(&names);
            let mut list: Vec<String> = reg.commands.values().map(|s| s.name.clone()).collect();
            list.sort_by_key(|n| n.to_lowercase());
            list.dedup();
            list
        });
        // One kv store for all VMs, so writes to a script's file are serialized.
        let kv = config.kv_dir.clone().map(|d| Arc::new(KvStore::new(d)));
        let setup = || VmSetup {
            commands: commands.clone(),
            kv: kv.clone(),
            modules: modules.clone(),
            local: config.local.clone(),
            timeout: config.timeout,
            max_memory_mb: config.max_memory_mb,
            max_steps: config.max_steps,
        };
        let shared = Arc::new(Shared {
            pool: Pool::new(setup(), config.workers, config.workers_per_caller, config.busy_wait),
            limits: RateLimits::new(config.rate_limit_per_peer, config.rate_limit_global),
            loader: Mutex::new(None),
            loader_setup: setup(),
            probed: ["handle", "call"]
                .map(String::from)
                .into_iter()
                .chain(config.events.iter().map(|e| e.name.clone()))
                .collect(),
            stats: Mutex::new(HashMap::new()),
            registry,
            config,
        });
        shared.rescan(Removal::Now);
        let watcher = if shared.config.hot_reload {
            let weak = Arc::downgrade(&shared);
            Some(watch::watch(&shared.config.script_dir, move || {
                // Until no script is kept past its file's removal: that needs another look later.
                while weak.upgrade().is_some_and(|shared| shared.rescan(Removal::Settle(watch::GONE_GRACE))) {
                    std::thread::sleep(watch::DEBOUNCE);
                }
            })?)
        } else {
            None
        };
        Ok(Engine { shared, _watcher: watcher })
    }

    /// Re-reads the script folder now (hot reload does this by itself).
    pub fn reload(&self) {
        self.shared.rescan(Removal::Now);
    }

    /// Handles a chat message from `caller` as the spec's Phase 1 describes.
    ///
    /// Errors become the reply text, so the sender learns what happened.
    pub fn handle_chat(&self, caller: &Peer, message: &str) -> ChatReply {
        let Some((name, args)) = parse_command(message) else {
            return ChatReply::NotACommand;
        };
        match self.run_command(caller, name, args) {
            Ok(Some(text)) if !text.is_empty() => ChatReply::Text(truncate_reply(text)),
            Ok(_) => ChatReply::Silent,
            // Said at load time already, or nothing the owner needs to hear about.
            Err(error @ (Error::CommandNotFound(_) | Error::CommandUnavailable { .. })) => {
                ChatReply::Failed { reply: error.to_string(), error }
            }
            Err(error) => {
                tracing::warn!(target: "goop::script", caller = %caller.id, "!{name} failed: {error}");
                ChatReply::Failed { reply: truncate_reply(format!("Error: {error}")), error }
            }
        }
    }

    /// Runs command `name`'s `handle(args)` for `caller`; `None` means no reply.
    pub fn run_command(&self, caller: &Peer, name: &str, args: &str) -> Result<Option<String>, Error> {
        let registry = read(&self.shared.registry);
        let script = registry.commands.get(&name.to_lowercase()).cloned().ok_or_else(|| {
            match registry.never_loaded(Origin::Commands, name) {
                Some(e) => Error::CommandUnavailable { name: name.to_string(), load_error: e.clone() },
                None => Error::CommandNotFound(name.to_string()),
            }
        })?;
        match self.shared.invoke(&script, Entry::Handle(args), caller, Extensions::default())? {
            Output::Reply(r) => Ok(r),
            _ => Err(Error::Setup("handle produced no reply".into())),
        }
    }

    /// Runs data function `name`'s `call(request)` with `request.params = params`.
    pub fn call(&self, caller: &Peer, name: &str, params: &Json) -> Result<Json, Error> {
        self.call_with(caller, name, Params::Json(params), Extensions::default())
    }

    /// Like [`Engine::call`], with params as a value or as JSON text, and values the host's
    /// modules read from the [`Invocation`](crate::Invocation).
    pub fn call_with(
        &self,
        caller: &Peer,
        name: &str,
        params: Params<'_>,
        extensions: Extensions,
    ) -> Result<Json, Error> {
        let registry = read(&self.shared.registry);
        let script = registry.functions.get(name).cloned().ok_or_else(|| {
            match registry.never_loaded(Origin::Functions, name) {
                Some(e) => Error::FunctionUnavailable { name: name.to_string(), load_error: e.clone() },
                None => Error::FunctionNotFound(name.to_string()),
            }
        })?;
        match self.shared.invoke(&script, Entry::Call(params), caller, extensions)? {
            Output::Result(r) => Ok(r),
            _ => Err(Error::Setup("call produced no result".into())),
        }
    }

    /// Fires the declared event `name`: each loaded script that defines `name` as a global
    /// function runs it with `args` (as Lua values), in script-name order, each as its own
    /// invocation for `caller` with the usual limits. A consumable event stops at the first
    /// handler returning `true`. A handler's failure is in its run; the others still run.
    ///
    /// ```
    /// use goop_script::{Config, Engine, Event, Peer};
    ///
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("guard.lua"), "function on_action(a) return a == 'cheat' end")?;
    /// std::fs::write(dir.path().join("score.lua"), "function on_action(a) return 'scored ' .. a end")?;
    /// let mut config = Config::new(dir.path());
    /// config.hot_reload = false;
    /// config.events = vec![Event::consumable("on_action")];
    /// let engine = Engine::new(config)?;
    /// let player = Peer::new("12D3KooWPlayer", "Ann");
    ///
    /// let fired = engine.fire("on_action", &player, &[serde_json::json!("jump")])?;
    /// assert_eq!(fired.runs[1].result, Ok(vec![serde_json::json!("scored jump")]));
    /// let fired = engine.fire("on_action", &player, &[serde_json::json!("cheat")])?;
    /// assert_eq!(fired.consumed_by.as_deref(), Some("guard"));
    /// assert_eq!(fired.runs.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fire(&self, name: &str, caller: &Peer, args: &[Json]) -> Result<Fired, Error> {
        let consumable = self.shared.config.events.iter().any(|e| e.name == name && e.consumable);
        self.fire_with(name, caller, args.to_vec(), |run, _| {
            if consumable && run.returned_true() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
    }

    /// Like [`Engine::fire`], with the host deciding after each handler: `next` sees the run and
    /// may change the arguments the following handlers get (a filter chain), or stop the chain
    /// (the run that stopped it is `consumed_by`). Consumable or not is up to `next` here.
    pub fn fire_with(
        &self,
        name: &str,
        caller: &Peer,
        mut args: Vec<Json>,
        mut next: impl FnMut(&HandlerRun, &mut Vec<Json>) -> ControlFlow<()>,
    ) -> Result<Fired, Error> {
        let event = self.shared.config.events.iter().find(|e| e.name == name);
        let metered = !event.ok_or_else(|| Error::UnknownEvent(name.to_string()))?.closing;
        let handlers = read(&self.shared.registry).handlers.get(name).cloned().unwrap_or_default();
        let mut fired = Fired::default();
        for script in handlers {
            let entry = Entry::Handler { name, args: &args };
            let result = match self.shared.run(&script, entry, caller, Extensions::default(), metered) {
                Ok(Output::Values(values)) => Ok(values),
                Ok(_) => Err(Error::Setup("handler produced no values".into())),
                Err(e) => Err(e),
            };
            let run = HandlerRun { script: script.name.clone(), result };
            let flow = next(&run, &mut args);
            fired.runs.push(run);
            if flow.is_break() {
                fired.consumed_by = Some(script.name.clone());
                break;
            }
        }
        Ok(fired)
    }

    /// Runs the handler of `event` in every script annotated `--- @every PERIOD`, each on its
    /// own period (the first run one period after it loads), as `runs_as`, until the returned
    /// [`Schedule`] is dropped. A run still going when the next is due is skipped, not stacked.
    pub fn schedule(&self, event: &str, runs_as: Peer) -> Result<Schedule, Error> {
        if !self.shared.config.events.iter().any(|e| e.name == event) {
            return Err(Error::UnknownEvent(event.to_string()));
        }
        let (weak, name) = (Arc::downgrade(&self.shared), event.to_string());
        let scripts = move || {
            let shared = weak.upgrade()?;
            let handlers = read(&shared.registry).handlers.get(&name).cloned().unwrap_or_default();
            Some(handlers.into_iter().filter(|s| s.metadata.every.is_some()).collect())
        };
        let (weak, name) = (Arc::downgrade(&self.shared), event.to_string());
        let run = move |script: &Script| {
            let Some(shared) = weak.upgrade() else { return };
            let entry = Entry::Handler { name: &name, args: &[] };
            if let Err(e) = shared.invoke(script, entry, &runs_as, Extensions::default()) {
                tracing::warn!(target: "goop::script", "scheduled {name} of {} failed: {e}", script.name);
            }
        };
        Ok(schedule::start(scripts, Arc::new(run)))
    }

    /// Whether some loaded script handles event `name` (so the host may skip building its args).
    pub fn handles(&self, name: &str) -> bool {
        read(&self.shared.registry).handlers.contains_key(name)
    }

    /// Data functions, sorted by name: the `lua-list` answer.
    pub fn functions(&self) -> Vec<FunctionInfo> {
        read(&self.shared.registry)
            .functions
            .values()
            .map(|s| FunctionInfo { name: s.name.clone(), description: s.metadata.description.clone() })
            .collect()
    }

    /// Command names, sorted: what `goop.commands()` returns.
    pub fn commands(&self) -> Vec<String> {
        (self.shared.loader_setup.commands)()
    }

    /// Every script file found, loaded or not, sorted by file.
    pub fn scripts(&self) -> Vec<ScriptInfo> {
        let stats = self.shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        read(&self.shared.registry)
            .files
            .iter()
            .map(|(file, f)| {
                let s = f.script.as_deref();
                let runs = stats.get(&(f.origin, f.name.clone())).cloned().unwrap_or_default();
                ScriptInfo {
                    name: f.name.clone(),
                    file: file.clone(),
                    in_functions_dir: f.origin == Origin::Functions,
                    description: s.map(|s| s.metadata.description.clone()).unwrap_or_default(),
                    rate_limit: s.and_then(|s| s.metadata.rate_limit),
                    has_handle: s.is_some_and(|s| s.has_handle),
                    has_call: s.is_some_and(|s| s.has_call),
                    handlers: s.map(|s| s.handlers.clone()).unwrap_or_default(),
                    loaded: s.is_some(),
                    error: f.error.clone(),
                    invocations: runs.invocations,
                    errors: runs.errors,
                    last_error: runs.last_error,
                }
            })
            .collect()
    }

    /// Bytes held by the worker VMs waiting in the pool: about their baseline each, whatever
    /// earlier calls stored.
    pub fn idle_vm_memory(&self) -> usize {
        self.shared.pool.idle_memory()
    }

    /// (caller, script) pairs the rate limiter tracks right now.
    pub fn tracked_callers(&self) -> usize {
        self.shared.limits.tracked()
    }
}

impl Shared {
    fn invoke(
        &self,
        script: &Script,
        entry: Entry<'_>,
        caller: &Peer,
        extensions: Extensions,
    ) -> Result<Output, Error> {
        self.run(script, entry, caller, extensions, true)
    }

    /// [`Shared::invoke`]; `metered` false skips the caller's rate limits (its worker share holds).
    fn run(
        &self,
        script: &Script,
        entry: Entry<'_>,
        caller: &Peer,
        extensions: Extensions,
        metered: bool,
    ) -> Result<Output, Error> {
        let remote = caller.id != self.config.local.id;
        if remote && metered {
            self.limits.check(&caller.id, &script.name, script.metadata.rate_limit)?;
        }
        let holder = remote.then_some(caller.id.as_str());
        let out = self.pool.with_vm(holder, |vm| vm.run(script, entry, caller, extensions));
        if !matches!(out, Err(Error::Busy)) {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let runs = stats.entry((script.origin, script.name.clone())).or_default();
            runs.invocations += 1;
            if let Err(e) = &out {
                runs.errors += 1;
                // Written over the last one's text: no allocation on a script's error path.
                let last = runs.last_error.get_or_insert_with(String::new);
                last.clear();
                let _ = write!(last, "{e}");
            }
        }
        out
    }

    /// Builds the next registry and puts it in place; true while some script is kept only
    /// because its file is gone for now.
    fn rescan(&self, removal: Removal) -> bool {
        let previous = read(&self.registry);
        let mut loader = self.loader.lock().unwrap_or_else(|p| p.into_inner());
        let local = self.config.local.clone();
        let mut probe = |script: &Script| {
            let mut vm = match loader.take() {
                Some(vm) => vm,
                None => Vm::new(&self.loader_setup).map_err(|e| Error::Setup(e.to_string()))?,
            };
            let out = vm.run(script, Entry::Probe(&self.probed), &local, Extensions::default());
            if vm.reusable() {
                *loader = Some(vm);
            }
            match out? {
                Output::Defined(names) => Ok(names),
                _ => Err(Error::Setup("probe produced no answer".into())),
            }
        };
        let next = Registry::rescan(&self.config.script_dir, &previous, &mut probe, removal);
        let settling = next.settling();
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        settling
    }
}

/// A chat message's command name and arguments, when it is a `!command`: `"!echo  hi"` is
/// `("echo", "hi")`; a message that does not start with `!` is `None`.
pub fn parse_command(message: &str) -> Option<(&str, &str)> {
    let command = message.trim().strip_prefix('!')?;
    Some(match command.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim_start()),
        None => (command, ""),
    })
}

fn read(registry: &Snapshot) -> Arc<Registry> {
    registry.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Cuts `text` to [`MAX_REPLY_BYTES`] on a character boundary, marker included.
fn truncate_reply(mut text: String) -> String {
    if text.len() <= MAX_REPLY_BYTES {
        return text;
    }
    let kept = cut(&text, MAX_REPLY_BYTES - TRUNCATED.len()).len();
    text.truncate(kept);
    text.push_str(TRUNCATED);
    text
}
