//! Events: names a host declares and fires; a script handles one by defining a global function
//! of that name (`function on_tick(n) … end`).

use serde_json::Value as Json;

use crate::error::Error;

/// Most values a handler's return is kept of (`return false, "reason"` is two).
pub const MAX_HANDLER_VALUES: usize = 4;

/// An event the host fires. Declared up front in [`Config::events`](crate::Config::events), so
/// the engine knows at load time which scripts handle what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The global function a handler defines, e.g. `on_tick`.
    pub name: String,
    /// A handler returning `true` stops the chain: later scripts do not see the event.
    pub consumable: bool,
    /// It closes what an earlier event opened (a leave, a disconnect): not charged to the
    /// caller's rate limits, so a script that heard the opening always hears the closing. The
    /// host fires it at most once per opening it fired, which bounds it.
    pub closing: bool,
}

impl Event {
    /// An event every handler sees.
    pub fn new(name: impl Into<String>) -> Event {
        Event { name: name.into(), consumable: false, closing: false }
    }

    /// An event the first handler returning `true` consumes.
    pub fn consumable(name: impl Into<String>) -> Event {
        Event { name: name.into(), consumable: true, closing: false }
    }

    /// An event that closes what an earlier one opened (see [`Event::closing`](Event#structfield.closing)).
    pub fn closing(name: impl Into<String>) -> Event {
        Event { name: name.into(), consumable: false, closing: true }
    }
}

/// One handler's run: the script and what it returned (as JSON, at most
/// [`MAX_HANDLER_VALUES`] values; `nil` is `null`) or why it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerRun {
    pub script: String,
    pub result: Result<Vec<Json>, Error>,
}

impl HandlerRun {
    /// Whether the handler returned `true` first.
    pub fn returned_true(&self) -> bool {
        matches!(self.result.as_deref(), Ok([Json::Bool(true), ..]))
    }
}

/// What firing an event did: the handlers that ran, in script-name order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fired {
    pub runs: Vec<HandlerRun>,
    /// The script that consumed the event, if one did.
    pub consumed_by: Option<String>,
}
