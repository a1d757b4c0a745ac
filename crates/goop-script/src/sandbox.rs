//! The sandboxed Luau state: exactly the libraries and base functions the spec allows.

use mlua::{Lua, LuaOptions, StdLib, Table, Value};

use crate::api::log;
use crate::{bounded, date};

/// Globals removed from Luau's base library: code loading, environment access, GC control.
pub const REMOVED_GLOBALS: &[&str] = &[
    "getfenv",
    "setfenv",
    "loadstring",
    "load",
    "loadfile",
    "dofile",
    "require",
    "collectgarbage",
    "gcinfo",
    "newproxy",
    "debug",
    "io",
    "package",
];

/// The only `os` functions scripts get; `date` is goop's own (see `date.rs`).
pub const OS_FUNCTIONS: &[&str] = &["time", "date", "clock"];

/// A new Luau state with the allowed libraries, not yet frozen; returns it with its globals.
///
/// The caller adds what it needs, then calls `lua.sandbox(true)`, which makes every library,
/// the globals table and the string metatable read-only.
pub fn new_state() -> mlua::Result<(Lua, Table)> {
    let libs =
        StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::OS | StdLib::COROUTINE | StdLib::UTF8 | StdLib::BIT;
    let lua = Lua::new_with(libs, LuaOptions::new())?;
    let globals = lua.globals();
    for name in REMOVED_GLOBALS {
        globals.raw_set(*name, Value::Nil)?;
    }
    let full_os: Table = globals.get("os")?;
    let os = lua.create_table()?;
    for name in OS_FUNCTIONS {
        os.raw_set(*name, full_os.raw_get::<Value>(*name)?)?;
    }
    os.raw_set("date", date::function(&lua)?)?;
    globals.raw_set("os", os)?;
    globals.raw_set("print", log::print(&lua)?)?;
    bounded::install(&lua, &globals)?;
    Ok((lua, globals))
}
