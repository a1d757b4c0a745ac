//! The files behind `goop.kv`: one JSON object per script under `.state/`, read and written under
//! a file lock, so every process working on the folder (a running peer, a local `goop call`) and
//! a hand edit see one value.
//!
//! A command's store is `.state/NAME.json` (as the spec says), a data function's
//! `.state/functions/NAME.json`, so the two never share one. Nothing is cached: every access
//! reads the file under a shared lock (`.state/.NAME.lock`); a change reads it again under the
//! exclusive lock, writes a temporary file, syncs it and renames it over, then syncs the folder.
//! Temporary files a killed writer left behind are removed by the next writer, which holds the
//! lock they were written under. A file that does not parse is an error on every access and is
//! never replaced, so its owner can repair it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

/// Most keys one store may keep.
pub const MAX_KEYS: usize = 1000;
/// Largest serialized size of one store, in bytes.
pub const MAX_BYTES: usize = 64 * 1024;

/// Whose store: a chat command's or a data function's (the same name is two stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    Command(&'a str),
    Function(&'a str),
}

impl Owner<'_> {
    fn name(&self) -> &str {
        match self {
            Owner::Command(n) | Owner::Function(n) => n,
        }
    }
}

/// All scripts' stores under one `.state` directory.
#[derive(Debug)]
pub struct KvStore {
    dir: PathBuf,
}

/// One store's keys.
pub type Entries = Map<String, Json>;

impl KvStore {
    pub fn new(dir: PathBuf) -> Self {
        KvStore { dir }
    }

    /// The folder and file name of `owner`'s store.
    fn place(&self, owner: Owner<'_>) -> (PathBuf, String) {
        match owner {
            Owner::Command(name) => (self.dir.clone(), format!("{name}.json")),
            Owner::Function(name) => (self.dir.join("functions"), format!("{name}.json")),
        }
    }

    /// The value of `key`.
    pub fn get(&self, owner: Owner<'_>, key: &str) -> Result<Option<Json>, String> {
        let _lock = self.lock(owner, false)?;
        Ok(self.read(owner)?.remove(key))
    }

    /// Changes the store under its exclusive lock: `change` sees the entries as they are on disk
    /// now, and what it returns is returned once the change is durable.
    pub fn update<T>(
        &self,
        owner: Owner<'_>,
        change: impl FnOnce(&mut Entries) -> Result<T, String>,
    ) -> Result<T, String> {
        let _lock = self.lock(owner, true)?;
        let mut entries = self.read(owner)?;
        let out = change(&mut entries)?;
        if entries.len() > MAX_KEYS {
            return Err(format!("kv store full: at most {MAX_KEYS} keys per script"));
        }
        let bytes = serde_json::to_vec(&entries).map_err(|e| e.to_string())?;
        if bytes.len() > MAX_BYTES {
            return Err(full());
        }
        let (dir, file) = self.place(owner);
        write_atomic(&dir, &file, &bytes).map_err(|e| {
            tracing::warn!(target: "goop::script", "kv store of {}: cannot write {}: {e}", owner.name(), dir.join(&file).display());
            format!("kv store of {}: write failed", owner.name())
        })?;
        Ok(out)
    }

    /// The entries on disk. A data function without a file of its own yet reads the store it
    /// shared with a command of its name before they were separated.
    fn read(&self, owner: Owner<'_>) -> Result<Entries, String> {
        let (dir, file) = self.place(owner);
        let read = match read_file(&dir.join(&file)) {
            Ok(None) if matches!(owner, Owner::Function(_)) => read_file(&self.dir.join(&file)),
            other => other,
        };
        match read {
            Ok(entries) => Ok(entries.unwrap_or_default()),
            Err(detail) => {
                // The owner reads the path and the reason in the log; a caller learns only which store.
                tracing::warn!(target: "goop::script", "{detail}");
                Err(format!("kv store of {} is unreadable", owner.name()))
            }
        }
    }

    /// Takes the store's lock (`.state/.NAME.lock`, beside the file), released when dropped.
    fn lock(&self, owner: Owner<'_>, exclusive: bool) -> Result<File, String> {
        let (dir, file) = self.place(owner);
        let path = dir.join(format!(".{file}.lock"));
        let opened = fs::create_dir_all(&dir)
            .and_then(|()| File::options().create(true).truncate(false).write(true).open(&path));
        let lock = opened.and_then(|f| if exclusive { f.lock() } else { f.lock_shared() }.map(|()| f));
        lock.map_err(|e| {
            tracing::warn!(target: "goop::script", "kv store of {}: cannot lock {}: {e}", owner.name(), path.display());
            format!("kv store of {} is unavailable", owner.name())
        })
    }
}

pub(crate) fn full() -> String {
    format!("kv store full: at most {} KB per script", MAX_BYTES / 1024)
}

/// The entries of `path`, `None` if it does not exist; `Err` names the path and the reason.
fn read_file(path: &Path) -> Result<Option<Entries>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("kv store {} is corrupt ({e}); fix or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("kv store {} unreadable: {e}", path.display())),
    }
}

/// Writes `dir/file` atomically, first removing temporary files a killed writer left (the
/// caller holds the lock they were written under, so none is in use).
fn write_atomic(dir: &Path, file: &str, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let prefix = format!(".{file}.");
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
    let mut tmp = tempfile::Builder::new().prefix(&prefix).suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(file)).map_err(|e| e.error)?;
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_and_a_function_of_one_name_have_two_stores() {
        let dir = tempfile::tempdir().unwrap();
        let kv = KvStore::new(dir.path().to_path_buf());
        kv.update(Owner::Command("score"), |e| Ok(e.insert("k".into(), Json::from(1)))).unwrap();
        kv.update(Owner::Function("score"), |e| Ok(e.insert("k".into(), Json::from(2)))).unwrap();
        assert_eq!(kv.get(Owner::Command("score"), "k").unwrap(), Some(Json::from(1)));
        assert_eq!(kv.get(Owner::Function("score"), "k").unwrap(), Some(Json::from(2)));
        assert!(dir.path().join("score.json").exists() && dir.path().join("functions/score.json").exists());
    }

    #[test]
    fn a_function_reads_the_store_it_shared_before() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("score.json"), r#"{"k": 7}"#).unwrap();
        let kv = KvStore::new(dir.path().to_path_buf());
        assert_eq!(kv.get(Owner::Function("score"), "k").unwrap(), Some(Json::from(7)));
        kv.update(Owner::Function("score"), |e| Ok(e.insert("j".into(), Json::from(1)))).unwrap();
        let own: Entries = serde_json::from_slice(&fs::read(dir.path().join("functions/score.json")).unwrap()).unwrap();
        assert_eq!(own.len(), 2, "the old keys came along: {own:?}");
    }

    #[test]
    fn a_writer_removes_what_a_killed_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..3 {
            fs::write(dir.path().join(format!(".t.json.left{n}.tmp")), "{").unwrap();
        }
        fs::write(dir.path().join(".other.json.x.tmp"), "{").unwrap();
        let kv = KvStore::new(dir.path().to_path_buf());
        kv.update(Owner::Command("t"), |e| Ok(e.insert("k".into(), Json::from(1)))).unwrap();
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert_eq!(left, vec![".other.json.x.tmp".to_string()], "only another store's file stays");
    }
}
