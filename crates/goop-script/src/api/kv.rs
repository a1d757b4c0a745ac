//! `goop.kv`: a small persistent key-value store per script (files: [`kv_store`](super::kv_store)).
//!
//! ```lua
//! goop.kv.set("greeting", { text = "hi" })   -- any JSON-able value; nil deletes
//! local g = goop.kv.get("greeting")           -- the value, or nil
//! goop.kv.del("greeting")
//! local n = goop.kv.incr("visits")            -- atomic: returns the new number (missing = 0)
//! local m = goop.kv.incr("score", -2.5)
//! ```
//!
//! Each call is atomic and durable on its own, and sees what any other process wrote. `get`
//! then `set` is two calls, not one: another invocation may write in between; `incr` is the
//! atomic counter. Failures raise a Lua error with the reason.

use std::sync::Arc;

use mlua::{Lua, LuaString, Table, Value};
use serde_json::Value as Json;

use super::kv_store::{full, KvStore, Owner, MAX_BYTES};
use crate::api::json::{from_json, number, text_len, to_json, ConvertError};
use crate::budget::Budget;
use crate::invocation::Invocation;
use crate::script::Origin;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The calling script (name and kind); refuses once the invocation is past its deadline.
fn caller_script(lua: &Lua) -> mlua::Result<(String, Origin)> {
    let inv =
        lua.app_data_ref::<Invocation>().ok_or_else(|| mlua::Error::runtime("goop.kv used outside an invocation"))?;
    if inv.remaining().is_zero() {
        return Err(mlua::Error::runtime("timeout: script ran past its deadline"));
    }
    Ok((inv.script().to_string(), inv.origin))
}

fn owner(script: &(String, Origin)) -> Owner<'_> {
    match script.1 {
        Origin::Commands => Owner::Command(&script.0),
        Origin::Functions => Owner::Function(&script.0),
    }
}

/// A key as text, refused before any copy when it is too long.
fn key_text(key: &LuaString) -> mlua::Result<String> {
    if key.as_bytes().len() > MAX_KEY_BYTES {
        return Err(mlua::Error::runtime(format!("goop.kv: a key is at most {MAX_KEY_BYTES} bytes")));
    }
    Ok(key.to_str()?.to_string())
}

/// A value to store, converted under the invocation's budget; `None` for nil.
fn stored(lua: &Lua, value: Value) -> mlua::Result<Option<Json>> {
    let json = match value {
        Value::Nil => return Ok(None),
        Value::String(_) | Value::Number(_) | Value::Integer(_) | Value::Boolean(_) | Value::Table(_) => {
            to_json(&value, &mut Budget::of(lua)).map_err(|e| match e {
                ConvertError::Invalid(m) => mlua::Error::runtime(format!("goop.kv.set: {m}")),
                stop => stop.into(),
            })?
        }
        other => return Err(mlua::Error::runtime(format!("goop.kv.set: cannot store a {}", other.type_name()))),
    };
    // A value that alone overflows the store is refused before the store is read.
    if text_len(&json, MAX_BYTES) > MAX_BYTES {
        return Err(mlua::Error::runtime(full()));
    }
    Ok(Some(json))
}

/// `old + delta` as JSON, an integer while both are whole.
fn add(old: Option<&Json>, delta: f64, key: &str) -> Result<Json, String> {
    let old = match old {
        None => 0.0,
        Some(Json::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(_) => return Err(format!("goop.kv.incr: the value of {key:?} is not a number")),
    };
    number(old + delta).map_err(|_| format!("goop.kv.incr: {key:?} would not be a finite number"))
}

/// Builds the `goop.kv` table over `store`.
pub fn module(lua: &Lua, store: Arc<KvStore>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let s = store.clone();
    t.set(
        "get",
        lua.create_function(move |lua, key: LuaString| {
            let script = caller_script(lua)?;
            match s.get(owner(&script), &key_text(&key)?).map_err(mlua::Error::runtime)? {
                Some(v) => from_json(lua, &v),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    let s = store.clone();
    t.set(
        "set",
        lua.create_function(move |lua, (key, value): (LuaString, Value)| {
            let key = key_text(&key)?;
            let value = stored(lua, value)?;
            let script = caller_script(lua)?;
            s.update(owner(&script), |entries| {
                match value {
                    Some(v) => entries.insert(key, v),
                    None => entries.remove(&key),
                };
                Ok(())
            })
            .map_err(mlua::Error::runtime)
        })?,
    )?;
    let s = store.clone();
    t.set(
        "del",
        lua.create_function(move |lua, key: LuaString| {
            let key = key_text(&key)?;
            let script = caller_script(lua)?;
            s.update(owner(&script), |entries| {
                entries.remove(&key);
                Ok(())
            })
            .map_err(mlua::Error::runtime)
        })?,
    )?;
    t.set(
        "incr",
        lua.create_function(move |lua, (key, delta): (LuaString, Option<f64>)| {
            let key = key_text(&key)?;
            let script = caller_script(lua)?;
            let sum = store
                .update(owner(&script), |entries| {
                    let sum = add(entries.get(&key), delta.unwrap_or(1.0), &key)?;
                    entries.insert(key.clone(), sum.clone());
                    Ok(sum)
                })
                .map_err(mlua::Error::runtime)?;
            from_json(lua, &sum)
        })?,
    )?;
    Ok(t)
}
