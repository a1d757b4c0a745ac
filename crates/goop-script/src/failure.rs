//! How a failed call reads: the error its caller is shown (cut to a bound, no memory
//! addresses), and whether the VM that ran it may serve another call.

use crate::error::Error;
use crate::text::cut;

/// Lines of Lua traceback kept in a runtime error.
const TRACEBACK_LINES: usize = 6;

/// Longest error message kept (for the caller, the log and the dashboard), in bytes.
pub(crate) const MAX_ERROR_BYTES: usize = 1024;

/// The `Runtime` error of `script` for a Lua error that is not a memory error.
pub(crate) fn runtime_error(script: &str, e: &mlua::Error) -> Error {
    let (message, traceback) = message_and_traceback(e);
    let message = match scrub_addresses(message) {
        word if VALUE_TYPES.contains(&word.as_str()) => format!("script raised a {word} as its error"),
        message => message,
    };
    Error::Runtime { script: script.to_string(), message, traceback: scrub_addresses(traceback) }
}

/// The script's message (without mlua's "runtime error: " prefix) and the first lines of the
/// traceback, each cut to a bound however long the script made them.
fn message_and_traceback(e: &mlua::Error) -> (String, String) {
    match e {
        mlua::Error::RuntimeError(m) => split_traceback(m),
        mlua::Error::CallbackError { cause, traceback } => {
            let (message, inner) = message_and_traceback(cause);
            let traceback = if inner.is_empty() { split_traceback(traceback).1 } else { inner };
            (message, traceback)
        }
        mlua::Error::WithContext { cause, .. } => message_and_traceback(cause),
        other => split_traceback(&other.to_string()),
    }
}

fn split_traceback(text: &str) -> (String, String) {
    let (message, traceback) = match text.find("stack traceback:") {
        Some(at) => (&text[..at], &text[at + "stack traceback:".len()..]),
        None => (text, ""),
    };
    let lines: Vec<&str> =
        traceback.lines().filter(|l| !l.trim().is_empty()).take(TRACEBACK_LINES).map(|l| cut(l, 200)).collect();
    (cut(message.trim(), MAX_ERROR_BYTES).to_string(), lines.join("\n"))
}

/// Whether a failed call left the Lua state as sound as a finished one: the script raised an
/// error, or called a function wrongly. Limits, stack overflows, failing error handlers and
/// anything mlua reports about its own state are not plain.
pub(crate) fn is_plain_script_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::RuntimeError(m) => !m.contains("stack overflow") && !m.contains("error in error handling"),
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_plain_script_error(cause)
        }
        mlua::Error::BadArgument { cause, .. } => is_plain_script_error(cause),
        mlua::Error::FromLuaConversionError { .. } | mlua::Error::ExternalError(_) => true,
        _ => false,
    }
}

/// Lua types whose `tostring` shows a memory address.
const VALUE_TYPES: [&str; 5] = ["table", "function", "userdata", "thread", "buffer"];

/// `text` with every `table: 0x55d0…`-style address cut to its type name: addresses tell a
/// caller about the host's memory and nothing about the error.
fn scrub_addresses(text: String) -> String {
    if !text.contains(": 0x") && !text.contains(": 0X") {
        return text;
    }
    // Luau writes an address as `0x` and 16 hex digits; `upper()` may have changed the case.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(": 0x") {
        let at = search + found;
        let hex = lower[at + 4..].bytes().take(16).take_while(u8::is_ascii_hexdigit).count();
        if hex > 0 && VALUE_TYPES.iter().any(|t| lower[..at].ends_with(t)) {
            out.push_str(&text[from..at]);
            from = at + 4 + hex;
        }
        search = at + 4;
    }
    out.push_str(&text[from..]);
    out
}

pub(crate) fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        other => other.to_string().contains("not enough memory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_scrubbed_to_type_names() {
        assert_eq!(scrub_addresses("table: 0x7fd6a8c0e2f0".to_string()), "table");
        assert_eq!(
            scrub_addresses("t.lua:3: got function: 0x55d0 and userdata: 0xABCDEF!".to_string()),
            "t.lua:3: got function and userdata!"
        );
        assert_eq!(scrub_addresses("value: 0x10 stays; table: 0x".to_string()), "value: 0x10 stays; table: 0x");
        assert_eq!(
            scrub_addresses("function: 0x00007f4d74188a80function: 0x00007f4d74188a90!".to_string()),
            "functionfunction!"
        );
        assert_eq!(scrub_addresses("xTABLE: 0X00007F4D74168370".to_string()), "xTABLE");
    }
}
