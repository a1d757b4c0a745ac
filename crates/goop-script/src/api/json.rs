//! Lua values ↔ JSON: `goop.json`, call params in and results out, with one set of rules.
//!
//! Rules: a table whose keys are exactly `1..n` is an array, the empty table is `[]`, any other
//! table is an object with string (or number) keys. Integral numbers are written as integers.
//! Cycles, nesting deeper than [`MAX_DEPTH`], NaN/infinity and functions are errors.

use std::collections::HashSet;

use mlua::{Lua, Table, Value};
use serde_json::{Map, Number, Value as Json};

/// Deepest nesting accepted in either direction.
pub const MAX_DEPTH: usize = 100;

/// Converts a Lua value to JSON.
pub fn to_json(value: &Value) -> Result<Json, String> {
    let mut seen = HashSet::new();
    encode(value, 0, &mut seen)
}

fn encode(value: &Value, depth: usize, seen: &mut HashSet<usize>) -> Result<Json, String> {
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::Number((*i).into()),
        Value::Number(n) => number(*n)?,
        Value::String(s) => Json::String(s.to_str().map_err(|_| "string is not valid UTF-8")?.to_string()),
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
            }
            let ptr = t.to_pointer() as usize;
            if !seen.insert(ptr) {
                return Err("cannot encode a table that contains itself".into());
            }
            let out = encode_table(t, depth, seen)?;
            seen.remove(&ptr);
            out
        }
        other => return Err(format!("cannot encode a {}", other.type_name())),
    })
}

fn number(n: f64) -> Result<Json, String> {
    if !n.is_finite() {
        return Err("cannot encode NaN or infinity".into());
    }
    // 2^53: beyond it not every integer is representable, so keep the float.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return Ok(Json::Number((n as i64).into()));
    }
    Number::from_f64(n).map(Json::Number).ok_or_else(|| "cannot encode number".into())
}

fn encode_table(t: &Table, depth: usize, seen: &mut HashSet<usize>) -> Result<Json, String> {
    let len = t.raw_len();
    let mut count = 0usize;
    let mut entries = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        count += 1;
        entries.push((k, v));
    }
    let index = |k: &Value| match k {
        Value::Integer(i) if *i >= 1 && (*i as usize) <= len => Some(*i as usize),
        Value::Number(n) if n.fract() == 0.0 && *n >= 1.0 && *n <= len as f64 => Some(*n as usize),
        _ => None,
    };
    if count == len && entries.iter().all(|(k, _)| index(k).is_some()) {
        let mut items = vec![Json::Null; len];
        for (k, v) in &entries {
            if let Some(i) = index(k) {
                items[i - 1] = encode(v, depth + 1, seen)?;
            }
        }
        return Ok(Json::Array(items));
    }
    encode_object(entries, depth, seen)
}

fn encode_object(entries: Vec<(Value, Value)>, depth: usize, seen: &mut HashSet<usize>) -> Result<Json, String> {
    let mut keyed = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let key = match &k {
            Value::String(s) => s.to_str().map_err(|_| "key is not valid UTF-8")?.to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => number(*n)?.to_string(),
            other => return Err(format!("cannot use a {} as an object key", other.type_name())),
        };
        keyed.push((key, v));
    }
    // Lua's iteration order is arbitrary; sorted keys make answers stable and comparable.
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut map = Map::new();
    for (key, v) in keyed {
        map.insert(key, encode(&v, depth + 1, seen)?);
    }
    Ok(Json::Object(map))
}

/// Converts JSON to a Lua value. `null` becomes `nil`.
pub fn from_json(lua: &Lua, json: &Json) -> mlua::Result<Value> {
    decode(lua, json, 0)
}

fn decode(lua: &Lua, json: &Json, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime(format!("JSON nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, decode(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
        Json::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                t.raw_set(k.as_str(), decode(lua, v, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

/// Builds the `goop.json` table: `encode(v)` and `decode(s)`, each returning `nil, err` on failure.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, v: Value| match to_json(&v) {
            Ok(j) => Ok((Value::String(lua.create_string(j.to_string())?), Value::Nil)),
            Err(e) => Ok((Value::Nil, Value::String(lua.create_string(e)?))),
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let parsed = serde_json::from_slice::<Json>(&s.as_bytes());
            match parsed.map_err(|e| e.to_string()).and_then(|j| from_json(lua, &j).map_err(|e| e.to_string())) {
                Ok(v) => Ok((v, Value::Nil)),
                Err(e) => Ok((Value::Nil, Value::String(lua.create_string(format!("invalid JSON: {e}"))?))),
            }
        })?,
    )?;
    Ok(t)
}
