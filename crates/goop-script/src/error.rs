//! The typed errors of the engine: what went wrong with a script or an invocation.

use std::path::PathBuf;
use std::time::Duration;

/// Why a script file could not be loaded. The previous good version, if any, stays active.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {message}", file.display(), line.map_or_else(|| "?".to_string(), |l| l.to_string()))]
pub struct LoadError {
    /// The script file.
    pub file: PathBuf,
    /// The line the error points at, when the compiler or runtime named one.
    pub line: Option<u32>,
    /// What went wrong, without the file and line prefix.
    pub message: String,
}

/// The ways an invocation can fail. `Display` is the text a caller is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No script with that name defines the requested entry point.
    #[error("function not found: {0}")]
    FunctionNotFound(String),
    /// No chat command with that name.
    #[error("Unknown command: !{0}. Try !help")]
    CommandNotFound(String),
    /// The command's file is there but never loaded (no earlier version to keep active). The
    /// text names no file: the owner finds it in `load_error`.
    #[error("!{name} is unavailable: its script failed to load")]
    CommandUnavailable { name: String, load_error: LoadError },
    /// The data function's file is there but never loaded; as [`Error::CommandUnavailable`].
    #[error("function {name} is unavailable: its script failed to load")]
    FunctionUnavailable { name: String, load_error: LoadError },
    /// The script raised an error.
    #[error("{message}")]
    Runtime {
        /// The script's name.
        script: String,
        /// The error message, usually prefixed with `file:line:`.
        message: String,
        /// A short Lua traceback, for the owner's log, when a host function failed. An error the
        /// script raised itself has none (building one would double the cost of bad input);
        /// its message names the file and line.
        traceback: String,
    },
    /// The script ran past its deadline.
    #[error("script {script} timed out after {limit:?}")]
    Timeout { script: String, limit: Duration },
    /// The script took more steps than its budget ([`Config::max_steps`](crate::Config::max_steps)).
    #[error("script {script} ran past its step budget of {limit} steps")]
    Steps { script: String, limit: u64 },
    /// The script allocated more than its memory limit.
    #[error("script {script} exceeded its memory limit of {limit_mb} MB")]
    Memory { script: String, limit_mb: usize },
    /// The caller, the script or the peer as a whole is over its rate limit.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// Every worker VM stayed busy for the whole wait.
    #[error("busy: all script workers are in use, try again")]
    Busy,
    /// Scripting is switched off in the peer's config.
    #[error("lua scripting is disabled on this peer")]
    Disabled,
    /// The script returned something that cannot be sent back.
    #[error("script {script} returned an invalid result: {message}")]
    BadResult { script: String, message: String },
    /// The host fired an event it did not declare in [`Config::events`](crate::Config::events).
    #[error("event {0} is not declared")]
    UnknownEvent(String),
    /// The engine itself could not start (script folder unreadable, watcher failed...).
    #[error("engine setup failed: {0}")]
    Setup(String),
}

impl Error {
    /// The kind of failure, one word a host can count and a caller can branch on: `not_found`,
    /// `compile`, `runtime`, `timeout`, `steps`, `memory`, `rate_limited`, `busy` or `refused`.
    ///
    /// ```
    /// use goop_script::Error;
    /// assert_eq!(Error::Busy.kind(), "busy");
    /// assert_eq!(Error::FunctionNotFound("score".into()).kind(), "not_found");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::FunctionNotFound(_) | Error::CommandNotFound(_) | Error::UnknownEvent(_) => "not_found",
            Error::CommandUnavailable { .. } | Error::FunctionUnavailable { .. } => "compile",
            Error::Runtime { .. } | Error::BadResult { .. } | Error::Setup(_) => "runtime",
            Error::Timeout { .. } => "timeout",
            Error::Steps { .. } => "steps",
            Error::Memory { .. } => "memory",
            Error::RateLimited(_) => "rate_limited",
            Error::Busy => "busy",
            Error::Disabled => "refused",
        }
    }
}
