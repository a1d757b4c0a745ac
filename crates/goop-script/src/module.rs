//! Host modules: tables a host adds to `goop` (the peer adds `goop.db` and `goop.http`).

use mlua::{Lua, Table};

/// Which entry points see a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Chat commands (`handle`) and data functions (`call`).
    All,
    /// Data functions (`call`) only, like `goop.db`.
    DataFunctions,
}

/// A table installed as `goop.<name>` in every worker VM, made read-only by the engine.
///
/// `build` runs once per VM. Per-call state (caller, deadline, counters) comes from the
/// [`Invocation`](crate::Invocation) in the VM's app data, never from the table.
pub trait HostModule: Send + Sync {
    /// The field name under `goop`.
    fn name(&self) -> &str;
    /// Who may see it.
    fn scope(&self) -> Scope;
    /// Builds the table in `lua`.
    fn build(&self, lua: &Lua) -> mlua::Result<Table>;
}
