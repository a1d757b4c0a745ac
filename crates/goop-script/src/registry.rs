//! The script registry: which files are loaded, which names they answer to, what failed.
//!
//! A registry is an immutable snapshot; a rescan builds the next one from the files on disk,
//! reusing every script whose source did not change and keeping the last good version of a
//! script whose new source fails, or whose file is gone only for a moment.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, LoadError};
use crate::script::{self, Origin, Script};

/// Sub-folder of the script folder that holds data functions.
pub const FUNCTIONS_DIR: &str = "functions";

#[derive(Debug, Clone)]
pub(crate) struct FileState {
    pub origin: Origin,
    pub name: String,
    pub source_hash: u64,
    /// The active version: the last one that loaded.
    pub script: Option<Arc<Script>>,
    /// Why the current source did not load, if it did not.
    pub error: Option<LoadError>,
    /// Set while the file is gone but its last version stays active (see [`Removal::Settle`]).
    pub gone: Option<Gone>,
}

/// When a script's file was first seen gone, and what its folder looked like then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone {
    since: Instant,
    /// The folder's modification time: creating, deleting or renaming an entry changes it.
    folder: Option<SystemTime>,
}

/// What a rescan does with a loaded script whose file is no longer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Drop it now: the caller asked for the folder as it is.
    Now,
    /// Keep its last version until its file has been gone, and its folder unchanged, for
    /// `settle`. A tool that saves by deleting and writing anew (or a rescan that runs between
    /// the two) never drops the function; the watcher rescans until [`Registry::settling`] is
    /// false.
    Settle(Duration),
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub files: BTreeMap<PathBuf, FileState>,
    /// Lower-cased command name → script defining `handle`.
    pub commands: BTreeMap<String, Arc<Script>>,
    /// Function name → script defining `call`.
    pub functions: BTreeMap<String, Arc<Script>>,
    /// Event name → the scripts handling it, in script-name order.
    pub handlers: BTreeMap<String, Vec<Arc<Script>>>,
}

/// Runs a freshly compiled chunk and reports which of `handle`, `call` and the declared events
/// it defines as functions.
pub(crate) type Probe<'a> = dyn FnMut(&Script) -> Result<Vec<String>, Error> + 'a;

impl Registry {
    /// Builds the next registry from the files under `dir`, starting from `previous`.
    pub fn rescan(dir: &Path, previous: &Registry, probe: &mut Probe<'_>, removal: Removal) -> Registry {
        let mut files = BTreeMap::new();
        for (origin, folder) in [(Origin::Commands, dir.to_path_buf()), (Origin::Functions, dir.join(FUNCTIONS_DIR))] {
            for path in lua_files(&folder) {
                if let Some(state) = load_file(dir, &path, origin, previous.files.get(&path), probe) {
                    files.insert(path, state);
                }
            }
        }
        for (path, state) in &previous.files {
            if files.contains_key(path) {
                continue;
            }
            if let Some(kept) = keep_while_gone(path, state, removal) {
                files.insert(path.clone(), kept);
            } else {
                tracing::info!(target: "goop::script", "removed {}", path.display());
            }
        }
        let mut next = Registry { files, ..Registry::default() };
        next.index();
        next
    }

    /// Why the `origin` script named `name` failed to load, when no version of it is active
    /// (a command's name is matched without case, as commands are).
    pub fn never_loaded(&self, origin: Origin, name: &str) -> Option<&LoadError> {
        self.files.values().find_map(|f| {
            let same = match origin {
                Origin::Commands => f.name.eq_ignore_ascii_case(name),
                Origin::Functions => f.name == name,
            };
            (same && f.origin == origin && f.script.is_none()).then_some(f.error.as_ref()).flatten()
        })
    }

    /// Some script's file is gone but its last version is still kept: rescan again later.
    pub fn settling(&self) -> bool {
        self.files.values().any(|f| f.gone.is_some())
    }

    /// Fills the name maps. On a name clash a top-level script wins for commands and a
    /// `functions/` script wins for functions.
    fn index(&mut self) {
        let mut scripts: Vec<&Arc<Script>> = self.files.values().filter_map(|f| f.script.as_ref()).collect();
        scripts.sort_by_key(|s| s.origin);
        for s in scripts.iter().rev().filter(|s| s.has_handle) {
            self.commands.insert(s.name.to_lowercase(), Arc::clone(s));
        }
        for s in scripts.iter().filter(|s| s.has_call) {
            self.functions.insert(s.name.clone(), Arc::clone(s));
        }
        scripts.sort_by(|a, b| (&a.name, a.origin).cmp(&(&b.name, b.origin)));
        for s in scripts {
            for event in &s.handlers {
                self.handlers.entry(event.clone()).or_default().push(Arc::clone(s));
            }
        }
    }
}

/// The state to keep for a script whose file `path` was not found, or `None` to drop it.
fn keep_while_gone(path: &Path, state: &FileState, removal: Removal) -> Option<FileState> {
    let Removal::Settle(settle) = removal else { return None };
    state.script.as_ref()?;
    let folder = path.parent().and_then(|f| fs::metadata(f).ok()).and_then(|m| m.modified().ok());
    match state.gone {
        // Gone all along: nothing was created, deleted or renamed in its folder since.
        Some(gone) if gone.folder == folder && gone.since.elapsed() >= settle => None,
        Some(gone) if gone.folder == folder => Some(state.clone()),
        _ => Some(FileState { gone: Some(Gone { since: Instant::now(), folder }), ..state.clone() }),
    }
}

/// `*.lua` files directly in `folder`, sorted; a missing folder has none.
fn lua_files(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua") && p.is_file())
        .collect();
    out.sort();
    out
}

fn load_file(
    dir: &Path,
    path: &Path,
    origin: Origin,
    previous: Option<&FileState>,
    probe: &mut Probe<'_>,
) -> Option<FileState> {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let chunk_name = path.strip_prefix(dir).unwrap_or(path).to_string_lossy().into_owned();
    let last_good = previous.and_then(|p| p.script.clone());
    let fail = |error: LoadError, hash: u64| {
        tracing::warn!(target: "goop::script", "script {name} not loaded: {error}");
        let script = last_good.clone();
        Some(FileState { origin, name: name.clone(), source_hash: hash, script, error: Some(error), gone: None })
    };
    let source = match fs::read(path).map(String::from_utf8) {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => {
            return fail(LoadError { file: path.into(), line: None, message: "file is not valid UTF-8".into() }, 0)
        }
        // Deleted since the folder was listed: as if it had not been listed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return fail(LoadError { file: path.into(), line: None, message: format!("cannot read: {e}") }, 0),
    };
    let hash = script::hash_source(&source);
    if let Some(prev) = previous.filter(|p| p.source_hash == hash) {
        return Some(FileState { gone: None, ..prev.clone() });
    }
    // A save in place truncates first: an empty file is a write in progress, never a script.
    if source.trim().is_empty() {
        return fail(LoadError { file: path.into(), line: None, message: "file is empty".into() }, hash);
    }
    let mut compiled = match script::compile(&name, origin, path, &chunk_name, &source) {
        Ok(s) => s,
        Err(e) => return fail(e, hash),
    };
    match probe(&compiled) {
        Ok(mut defined) => {
            let mut take = |name: &str| match defined.iter().position(|d| d == name) {
                Some(i) => {
                    defined.remove(i);
                    true
                }
                None => false,
            };
            let (handle, call) = (take("handle"), take("call"));
            // A file cut short may still compile; one that lost an entry point it had, or has
            // none, keeps the last good version until the owner restarts with it.
            let lost: Vec<&str> = match &last_good {
                Some(good) => [(good.has_handle && !handle, "handle"), (good.has_call && !call, "call")]
                    .into_iter()
                    .filter_map(|(gone, entry)| gone.then_some(entry))
                    .collect(),
                None => Vec::new(),
            };
            if !lost.is_empty() {
                let message = format!("no longer defines {}; the last version stays active", lost.join(" or "));
                return fail(LoadError { file: path.into(), line: None, message }, hash);
            }
            if !handle && !call && defined.is_empty() {
                let message = "defines neither handle nor call (nor an event handler)".to_string();
                return fail(LoadError { file: path.into(), line: None, message }, hash);
            }
            compiled.has_handle = handle;
            compiled.has_call = call;
            compiled.handlers = defined;
            tracing::info!(target: "goop::script", "loaded {}", chunk_name);
            Some(FileState {
                origin,
                name,
                source_hash: hash,
                script: Some(Arc::new(compiled)),
                error: None,
                gone: None,
            })
        }
        Err(e) => {
            let error = match e {
                Error::Runtime { message, .. } => script::load_error(path, &message),
                other => LoadError { file: path.into(), line: None, message: other.to_string() },
            };
            fail(error, hash)
        }
    }
}
