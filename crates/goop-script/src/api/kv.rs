//! `goop.kv`: a small persistent key-value store per script, one JSON file each under `.state/`.
//!
//! Writes are atomic (temp file, fsync, rename). A file that does not parse is reported as an
//! error on every access and left untouched, so an owner can repair it; it is never replaced.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mlua::{Lua, Table, Value};
use serde_json::{Map, Value as Json};

use crate::api::json::{from_json, text_len, to_json, ConvertError};
use crate::budget::Budget;
use crate::invocation::Invocation;

/// Most keys one script may keep.
pub const MAX_KEYS: usize = 1000;
/// Largest serialized size of one script's store, in bytes.
pub const MAX_BYTES: usize = 64 * 1024;
/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// One script's keys, guarded so its writes happen one at a time.
type ScriptStore = Arc<Mutex<Map<String, Json>>>;

/// All scripts' stores under one `.state` directory.
#[derive(Debug)]
pub struct KvStore {
    dir: PathBuf,
    open: Mutex<HashMap<String, ScriptStore>>,
}

impl KvStore {
    pub fn new(dir: PathBuf) -> Self {
        KvStore { dir, open: Mutex::new(HashMap::new()) }
    }

    fn path(&self, script: &str) -> PathBuf {
        self.dir.join(format!("{script}.json"))
    }

    fn store(&self, script: &str) -> Result<ScriptStore, String> {
        let mut open = self.open.lock().map_err(|_| "kv store lock poisoned")?;
        if let Some(s) = open.get(script) {
            return Ok(s.clone());
        }
        // The owner reads the path and the reason in the log; a caller learns only which store.
        let map = read_file(&self.path(script)).map_err(|detail| {
            tracing::warn!(target: "goop::script", "{detail}");
            format!("kv store of {script} is unreadable")
        })?;
        let store = Arc::new(Mutex::new(map));
        open.insert(script.to_string(), store.clone());
        Ok(store)
    }

    pub fn get(&self, script: &str, key: &str) -> Result<Option<Json>, String> {
        let store = self.store(script)?;
        let map = store.lock().map_err(|_| "kv store lock poisoned")?;
        Ok(map.get(key).cloned())
    }

    /// Sets (`Some`) or deletes (`None`) a key, and persists before returning.
    pub fn put(&self, script: &str, key: &str, value: Option<Json>) -> Result<(), String> {
        let store = self.store(script)?;
        let mut map = store.lock().map_err(|_| "kv store lock poisoned")?;
        let mut next = map.clone();
        match value {
            Some(v) => next.insert(key.to_string(), v),
            None => next.remove(key),
        };
        if next.len() > MAX_KEYS {
            return Err(format!("kv store full: at most {MAX_KEYS} keys per script"));
        }
        let bytes = serde_json::to_vec(&next).map_err(|e| e.to_string())?;
        if bytes.len() > MAX_BYTES {
            return Err(full());
        }
        write_atomic(&self.dir, &self.path(script), &bytes).map_err(|e| {
            tracing::warn!(target: "goop::script", "kv store of {script}: cannot write {}: {e}", self.path(script).display());
            format!("kv store of {script}: write failed")
        })?;
        *map = next;
        Ok(())
    }
}

fn full() -> String {
    format!("kv store full: at most {} KB per script", MAX_BYTES / 1024)
}

fn read_file(path: &Path) -> Result<Map<String, Json>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("kv store {} is corrupt ({e}); fix or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(format!("kv store {} unreadable: {e}", path.display())),
    }
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The calling script's name; refuses once the invocation is past its deadline.
fn script_name(lua: &Lua) -> mlua::Result<String> {
    let inv =
        lua.app_data_ref::<Invocation>().ok_or_else(|| mlua::Error::runtime("goop.kv used outside an invocation"))?;
    if inv.remaining().is_zero() {
        return Err(mlua::Error::runtime("timeout: script ran past its deadline"));
    }
    Ok(inv.script().to_string())
}

/// A key as text, refused before any copy when it is too long.
fn key_text(key: &mlua::LuaString) -> mlua::Result<String> {
    if key.as_bytes().len() > MAX_KEY_BYTES {
        return Err(mlua::Error::runtime(format!("goop.kv: a key is at most {MAX_KEY_BYTES} bytes")));
    }
    Ok(key.to_str()?.to_string())
}

/// Builds the `goop.kv` table over `store`. Failures raise a Lua error with the reason.
pub fn module(lua: &Lua, store: Arc<KvStore>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let s = store.clone();
    t.set(
        "get",
        lua.create_function(move |lua, key: mlua::LuaString| {
            match s.get(&script_name(lua)?, &key_text(&key)?).map_err(mlua::Error::runtime)? {
                Some(v) => from_json(lua, &v),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    let s = store.clone();
    t.set(
        "set",
        lua.create_function(move |lua, (key, value): (mlua::LuaString, Value)| {
            let key = key_text(&key)?;
            let json = match value {
                Value::Nil => None,
                Value::String(_) | Value::Number(_) | Value::Integer(_) | Value::Boolean(_) | Value::Table(_) => {
                    Some(to_json(&value, &mut Budget::of(lua)).map_err(|e| match e {
                        ConvertError::Invalid(m) => mlua::Error::runtime(format!("goop.kv.set: {m}")),
                        stop => stop.into(),
                    })?)
                }
                other => {
                    return Err(mlua::Error::runtime(format!("goop.kv.set: cannot store a {}", other.type_name())))
                }
            };
            // A value that alone overflows the store is refused before the store is copied.
            if json.as_ref().is_some_and(|v| text_len(v, MAX_BYTES) > MAX_BYTES) {
                return Err(mlua::Error::runtime(full()));
            }
            s.put(&script_name(lua)?, &key, json).map_err(mlua::Error::runtime)
        })?,
    )?;
    t.set(
        "del",
        lua.create_function(move |lua, key: mlua::LuaString| {
            store.put(&script_name(lua)?, &key_text(&key)?, None).map_err(mlua::Error::runtime)
        })?,
    )?;
    Ok(t)
}
