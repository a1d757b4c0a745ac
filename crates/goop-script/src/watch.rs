//! Hot reload: watches the script folder and rescans it after changes settle.

use std::path::Path;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::error::Error;

/// How long the folder must be quiet before a rescan.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// How long a script's file must stay gone, with nothing created, deleted or renamed in its
/// folder, before a rescan drops the script. A tool that saves by deleting and writing anew
/// never drops the function, even when the machine stalls it between the two for a while.
pub const GONE_GRACE: Duration = Duration::from_secs(1);

/// Keeps the watcher alive; dropping it stops watching.
pub(crate) struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Calls `rescan` whenever something under `dir` (outside `.state/`) is created, changed,
/// renamed or removed.
///
/// A rescan compares every file with what is loaded, so an editor's write-to-temp-then-rename
/// ends in one reload of the renamed file, whatever events the platform reports.
pub(crate) fn watch(dir: &Path, rescan: impl Fn() + Send + 'static) -> Result<Watcher, Error> {
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
        Ok(events) => {
            // kv writes land in `.state/`; anything else may add, change or remove a script.
            let touches_scripts =
                events.iter().flat_map(|e| e.paths.iter()).any(|p| !p.components().any(|c| c.as_os_str() == ".state"));
            if touches_scripts {
                rescan();
            }
        }
        Err(errors) => {
            for e in errors {
                tracing::warn!(target: "goop::script", "file watcher: {e}");
            }
            rescan();
        }
    })
    .map_err(|e| Error::Setup(format!("cannot watch {}: {e}", dir.display())))?;
    debouncer
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|e| Error::Setup(format!("cannot watch {}: {e}", dir.display())))?;
    Ok(Watcher { _debouncer: debouncer })
}
