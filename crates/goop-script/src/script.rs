//! One script file: its name, its `---` metadata and its bytecode, compiled once at load.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::LoadError;

/// Which directory a script came from: `site/lua/` (commands first) or `site/lua/functions/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// `site/lua/*.lua`.
    Commands,
    /// `site/lua/functions/*.lua`.
    Functions,
}

/// What the leading `---` comment block says about a script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The first line of the block that is not an `@` annotation.
    pub description: String,
    /// `@rate_limit N`: calls per caller per minute; `Some(0)` means unlimited.
    pub rate_limit: Option<u32>,
    /// `@every 30s` (units `s`, `m`, `h`): how often the host's schedule runs the script.
    pub every: Option<Duration>,
}

/// A compiled script, immutable once built. A reload builds a new one with a new `id`.
#[derive(Debug)]
pub struct Script {
    /// Unique per compiled version, so VM caches can tell versions apart.
    pub id: u64,
    /// The file stem: the command or function name.
    pub name: String,
    pub origin: Origin,
    /// How errors name the file: its path inside the script folder, e.g. `functions/ttt.lua`.
    pub chunk_name: String,
    pub metadata: Metadata,
    pub bytecode: Vec<u8>,
    /// Whether running the chunk defined `handle` / `call`; filled by the loader.
    pub has_handle: bool,
    pub has_call: bool,
    /// The declared events it defines a handler for; filled by the loader.
    pub handlers: Vec<String>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Compiles `source` to Luau bytecode; syntax errors carry file and line.
pub(crate) fn compile(
    name: &str,
    origin: Origin,
    file: &Path,
    chunk_name: &str,
    source: &str,
) -> Result<Script, LoadError> {
    let bytecode = mlua::chunk::Compiler::new().set_optimization_level(1).set_debug_level(1).compile(source).map_err(
        |e| match e {
            mlua::Error::SyntaxError { message, .. } => load_error(file, &message),
            other => load_error(file, &other.to_string()),
        },
    )?;
    let (metadata, problem) = read_metadata(source);
    if let Some((line, message)) = problem {
        return Err(LoadError { file: file.to_path_buf(), line: Some(line), message });
    }
    Ok(Script {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        name: name.to_string(),
        origin,
        chunk_name: chunk_name.to_string(),
        metadata,
        bytecode,
        has_handle: false,
        has_call: false,
        handlers: Vec::new(),
    })
}

pub(crate) fn hash_source(source: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    h.finish()
}

/// Reads the leading block of `---` lines (blank lines before it are allowed); an annotation
/// it cannot read is left out.
pub fn parse_metadata(source: &str) -> Metadata {
    read_metadata(source).0
}

/// The metadata, and the first annotation that could not be read: `(line, message)`.
fn read_metadata(source: &str) -> (Metadata, Option<(u32, String)>) {
    let mut meta = Metadata::default();
    let mut problem = None;
    let lines = source.lines().map(str::trim).enumerate().skip_while(|(_, l)| l.is_empty());
    for (index, line) in lines {
        let Some(text) = line.strip_prefix("---") else {
            break;
        };
        let text = text.trim();
        if let Some(annotation) = text.strip_prefix('@') {
            let mut words = annotation.split_whitespace();
            match words.next() {
                Some("rate_limit") => meta.rate_limit = words.next().and_then(|n| n.parse().ok()),
                Some("every") => match parse_every(words.next().unwrap_or("")) {
                    Ok(period) => meta.every = Some(period),
                    Err(message) => {
                        problem.get_or_insert((index as u32 + 1, message));
                    }
                },
                _ => {}
            }
        } else if meta.description.is_empty() && !text.is_empty() {
            meta.description = text.to_string();
        }
    }
    (meta, problem)
}

/// `30s`, `5m`, `1h`: a schedule's period, at least one second.
/// Longest `@every` period, a year: a longer one would never come, and one past the clock's
/// range stopped every schedule of the peer.
const MAX_EVERY_SECONDS: u64 = 366 * 24 * 3600;

fn parse_every(text: &str) -> Result<Duration, String> {
    let problem = || format!("@every needs a period such as 30s, 5m or 1h (1s to 8784h), got {text:?}");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(problem)?;
    let count: u64 = text[..split].parse().map_err(|_| problem())?;
    let unit = match &text[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(problem()),
    };
    match count.checked_mul(unit) {
        Some(seconds) if (1..=MAX_EVERY_SECONDS).contains(&seconds) => Ok(Duration::from_secs(seconds)),
        _ => Err(problem()),
    }
}

/// Turns a Luau message such as `[string "x"]:3: oops` or `x.lua:3: oops` into a [`LoadError`].
pub(crate) fn load_error(file: &Path, raw: &str) -> LoadError {
    let first = raw.lines().next().unwrap_or(raw);
    let (line, message) = split_location(first);
    LoadError { file: file.to_path_buf(), line, message: message.to_string() }
}

/// Splits a leading `chunk:LINE: ` location off an error message.
pub(crate) fn split_location(msg: &str) -> (Option<u32>, &str) {
    // The compiler says `LINE: msg` or `:LINE: msg`; the runtime says `chunk:LINE: msg`, where
    // the chunk name may itself contain ':' (e.g. `[string "..."]`), so look for `:digits: `.
    let msg = match msg.strip_prefix(':') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => msg,
    };
    let lead = msg.bytes().take_while(u8::is_ascii_digit).count();
    if lead > 0 && msg[lead..].starts_with(": ") {
        return (msg[..lead].parse().ok(), &msg[lead + 2..]);
    }
    let bytes = msg.as_bytes();
    let mut i = 0;
    while let Some(pos) = msg[i..].find(':') {
        let start = i + pos + 1;
        let digits = bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && msg[start + digits..].starts_with(": ") {
            let line = msg[start..start + digits].parse().ok();
            return (line, &msg[start + digits + 2..]);
        }
        i = start;
    }
    (None, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_reads_description_and_rate_limit() {
        let m = parse_metadata("\n--- Score a quiz\n--- @rate_limit 5\n--- more text\nfunction call() end");
        assert_eq!(m.description, "Score a quiz");
        assert_eq!(m.rate_limit, Some(5));
        let m = parse_metadata("--- @rate_limit 0\n---\n--- Second line wins\n");
        assert_eq!(m.description, "Second line wins");
        assert_eq!(m.rate_limit, Some(0));
    }

    #[test]
    fn every_reads_seconds_minutes_and_hours_and_refuses_the_rest() {
        assert_eq!(parse_metadata("--- @every 30s").every, Some(Duration::from_secs(30)));
        assert_eq!(parse_metadata("--- @every 5m").every, Some(Duration::from_secs(300)));
        assert_eq!(parse_metadata("--- @every 2h").every, Some(Duration::from_secs(7200)));
        assert_eq!(parse_metadata("--- @every 8784h").every, Some(Duration::from_secs(366 * 24 * 3600)));
        for bad in ["0s", "1.5s", "10", "s", "5d", "-1m", "", "99999999999999999999h", "18446744073709551615s", "8785h"]
        {
            let source = format!("--- Ticks\n--- @every {bad}\nfunction on_schedule() end");
            let err = compile("t", Origin::Commands, Path::new("t.lua"), "t.lua", &source).unwrap_err();
            assert_eq!(err.line, Some(2), "{bad}: {err}");
            assert!(err.message.starts_with("@every needs a period"), "{bad}: {err}");
        }
    }

    #[test]
    fn metadata_stops_at_first_code_line() {
        let m = parse_metadata("local x = 1\n--- not metadata\n");
        assert_eq!(m, Metadata::default());
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err =
            compile("bad", Origin::Commands, Path::new("bad.lua"), "bad.lua", "local x = 1\nfunction (\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.to_string().starts_with("bad.lua:2: "), "{err}");
    }

    #[test]
    fn location_split_handles_string_chunk_names() {
        assert_eq!(split_location("[string \"a:b\"]:7: boom"), (Some(7), "boom"));
        assert_eq!(split_location("no location"), (None, "no location"));
    }
}
