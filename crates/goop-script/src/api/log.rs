//! `goop.log` and `print`: script output into the peer's log through `tracing`.

use mlua::{Lua, MultiValue, Table};

use crate::invocation::Invocation;

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

fn emit(lua: &Lua, level: Level, args: MultiValue) -> mlua::Result<()> {
    let mut text = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            text.push('\t');
        }
        text.push_str(&v.to_string()?);
    }
    let script = lua.app_data_ref::<Invocation>().map(|i| i.script().to_string()).unwrap_or_default();
    match level {
        Level::Info => tracing::info!(target: "goop::script", script = %script, "{text}"),
        Level::Warn => tracing::warn!(target: "goop::script", script = %script, "{text}"),
        Level::Error => tracing::error!(target: "goop::script", script = %script, "{text}"),
    }
    Ok(())
}

/// Builds `goop.log` with `info`, `warn` and `error`.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (name, level) in [("info", Level::Info), ("warn", Level::Warn), ("error", Level::Error)] {
        t.set(name, lua.create_function(move |lua, args: MultiValue| emit(lua, level, args))?)?;
    }
    Ok(t)
}

/// `print(...)`, logged at info level like `goop.log.info`.
pub fn print(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(|lua, args: MultiValue| emit(lua, Level::Info, args))
}
