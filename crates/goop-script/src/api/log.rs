//! `goop.log` and `print`: script output into the peer's log through `tracing`.
//!
//! A line is built only when its level is logged at all, and is cut at [`MAX_LINE_BYTES`]
//! (ending with [`CUT`]), so a script cannot make the host copy more than that per call.

use mlua::{Lua, MultiValue, Table, Value};

use crate::invocation::Invocation;

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

fn emit(lua: &Lua, level: Level, args: MultiValue) -> mlua::Result<()> {
    if !enabled(level) {
        return Ok(());
    }
    let text = line(&args)?;
    let script = lua.app_data_ref::<Invocation>().map(|i| i.script().to_string()).unwrap_or_default();
    match level {
        Level::Info => tracing::info!(target: "goop::script", script = %script, "{text}"),
        Level::Warn => tracing::warn!(target: "goop::script", script = %script, "{text}"),
        Level::Error => tracing::error!(target: "goop::script", script = %script, "{text}"),
    }
    Ok(())
}

/// The arguments joined by tabs, at most [`MAX_LINE_BYTES`]; strings are read in place.
fn line(args: &MultiValue) -> mlua::Result<String> {
    let room = MAX_LINE_BYTES - CUT.len();
    let mut bytes: Vec<u8> = Vec::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            bytes.push(b'\t');
        }
        match v {
            Value::String(s) => {
                let s = s.as_bytes();
                let take = (room + 1).saturating_sub(bytes.len()).min(s.len());
                bytes.extend_from_slice(&s[..take]);
            }
            other => bytes.extend_from_slice(other.to_string()?.as_bytes()),
        }
        if bytes.len() > room {
            break;
        }
    }
    if bytes.len() <= room {
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    bytes.truncate(room);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    // A multi-byte character cut in half shows as one replacement character; keep the line whole.
    while text.len() > room {
        text.pop();
    }
    text.push_str(CUT);
    Ok(text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let lua = Lua::new();
        let big = lua.create_string("é".repeat(10_000)).unwrap();
        let args = MultiValue::from_iter([Value::String(big), Value::Integer(7)]);
        let text = line(&args).unwrap();
        assert!(text.len() <= MAX_LINE_BYTES, "{}", text.len());
        assert!(text.ends_with(CUT));
        assert!(text.starts_with("éé"));
        let short = MultiValue::from_iter([Value::Integer(1), Value::Boolean(true)]);
        assert_eq!(line(&short).unwrap(), "1\ttrue");
    }
}
