//! goop-script: the sandboxed Luau engine behind goop's chat commands and data functions.
//!
//! Scripts live in one folder: `*.lua` are chat commands (`handle(args)` returns the reply),
//! `functions/*.lua` are data functions (`call(request)` returns JSON-able data). Each
//! invocation runs on a pooled VM in a fresh environment, under a deadline, a step budget,
//! a memory limit and rate limits.
//!
//! ```
//! use goop_script::{ChatReply, Config, Engine, Peer};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("echo.lua"), "function handle(args) return 'You said: ' .. args end")?;
//! std::fs::create_dir(dir.path().join("functions"))?;
//! std::fs::write(dir.path().join("functions/add.lua"), "--- Adds two numbers\nfunction call(r) return { sum = r.params.a + r.params.b } end")?;
//!
//! let mut config = Config::new(dir.path());
//! config.hot_reload = false;
//! let engine = Engine::new(config)?;
//! let visitor = Peer::new("12D3KooWVisitor", "Ann");
//!
//! assert_eq!(engine.handle_chat(&visitor, "!echo hi"), ChatReply::Text("You said: hi".into()));
//! let sum = engine.call(&visitor, "add", &serde_json::json!({ "a": 2, "b": 3 }))?;
//! assert_eq!(sum, serde_json::json!({ "sum": 5 }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod additions;
pub mod api;
mod bounded;
mod budget;
mod config;
mod date;
mod engine;
mod error;
mod event;
mod failure;
mod invocation;
mod keyed;
mod meter;
mod module;
mod pool;
mod ratelimit;
mod registry;
pub mod sandbox;
mod schedule;
mod script;
mod text;
mod vm;
mod watch;

pub use budget::{Budget, Exceeded};
pub use config::Config;
pub use engine::{parse_command, ChatReply, Engine, FunctionInfo, Params, ScriptInfo, MAX_REPLY_BYTES, TRUNCATED};
pub use error::{Error, LoadError};
pub use event::{Event, Fired, HandlerRun, MAX_HANDLER_VALUES};
pub use invocation::{Extensions, Invocation, Peer};
pub use keyed::{KeyedRates, Refused, MAX_TRACKED};
pub use module::{HostModule, Scope};
pub use registry::FUNCTIONS_DIR;
pub use schedule::Schedule;
pub use script::{parse_metadata, Metadata};
pub use vm::MAX_RESULT_BYTES;

/// Re-exported so host modules build tables with the same mlua the engine uses.
pub use mlua;
