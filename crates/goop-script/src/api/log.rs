//! `goop.log` and `print`: script output into the peer's log through `tracing`.
//!
//! A line is built only when its level is logged at all, and is cut at [`MAX_LINE_BYTES`]
//! (ending with [`CUT`]), so a script cannot make the host copy more than that per call.

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use crate::invocation::Invocation;
use crate::text::cut;

/// Longest log line a script can write, in bytes, marker included.
pub const MAX_LINE_BYTES: usize = 4096;
/// Ends a line that was cut.
pub const CUT: &str = " [cut]";

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

fn enabled(level: Level) -> bool {
    match level {
        Level::Info => tracing::enabled!(target: "goop::script", tracing::Level::INFO),
        Level::Warn => tracing::enabled!(target: "goop::script", tracing::Level::WARN),
        Level::Error => tracing::enabled!(target: "goop::script", tracing::Level::ERROR),
    }
}

fn emit(lua: &Lua, tostring: &Function, level: Level, args: MultiValue) -> mlua::Result<()> {
    if !enabled(level) {
        return Ok(());
    }
    let text = line(tostring, &args)?;
    let script = lua.app_data_ref::<Invocation>().map(|i| i.script().to_string()).unwrap_or_default();
    match level {
        Level::Info => tracing::info!(target: "goop::script", script = %script, "{text}"),
        Level::Warn => tracing::warn!(target: "goop::script", script = %script, "{text}"),
        Level::Error => tracing::error!(target: "goop::script", script = %script, "{text}"),
    }
    Ok(())
}

/// The arguments joined by tabs, at most [`MAX_LINE_BYTES`]. Strings are read in place; other
/// values go through Lua's own `tostring` (so `__tostring` works), and only the bytes that fit
/// are copied.
fn line(tostring: &Function, args: &MultiValue) -> mlua::Result<String> {
    let room = MAX_LINE_BYTES - CUT.len();
    let mut bytes: Vec<u8> = Vec::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            bytes.push(b'\t');
        }
        let text = match v {
            Value::String(s) => s.clone(),
            other => tostring.call::<LuaString>(other)?,
        };
        let text = text.as_bytes();
        let take = (room + 1).saturating_sub(bytes.len()).min(text.len());
        bytes.extend_from_slice(&text[..take]);
        if bytes.len() > room {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    if text.len() <= room {
        return Ok(text.into_owned());
    }
    Ok(format!("{}{CUT}", cut(&text, room)))
}

/// Builds `goop.log` with `info`, `warn` and `error`.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (name, level) in [("info", Level::Info), ("warn", Level::Warn), ("error", Level::Error)] {
        let tostring: Function = lua.globals().raw_get("tostring")?;
        t.set(name, lua.create_function(move |lua, args: MultiValue| emit(lua, &tostring, level, args))?)?;
    }
    Ok(t)
}

/// `print(...)`, logged at info level like `goop.log.info`.
pub fn print(lua: &Lua) -> mlua::Result<mlua::Function> {
    let tostring: Function = lua.globals().raw_get("tostring")?;
    lua.create_function(move |lua, args: MultiValue| emit(lua, &tostring, Level::Info, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let lua = Lua::new();
        let tostring: Function = lua.globals().get("tostring").unwrap();
        let big = lua.create_string("é".repeat(10_000)).unwrap();
        let args = MultiValue::from_iter([Value::String(big), Value::Integer(7)]);
        let text = line(&tostring, &args).unwrap();
        assert!(text.len() <= MAX_LINE_BYTES, "{}", text.len());
        assert!(text.ends_with(CUT));
        assert!(text.starts_with("éé"));
        let short = MultiValue::from_iter([Value::Integer(1), Value::Boolean(true)]);
        assert_eq!(line(&tostring, &short).unwrap(), "1\ttrue");
        let huge: Table = lua
            .load("return setmetatable({}, { __tostring = function() return string.rep('y', 1e6) end })")
            .eval()
            .unwrap();
        let text = line(&tostring, &MultiValue::from_iter([Value::Table(huge)])).unwrap();
        assert_eq!(text.len(), MAX_LINE_BYTES);
    }
}
