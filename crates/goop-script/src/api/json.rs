//! Lua values ↔ JSON: `goop.json`, call params in and results out, with one set of rules.
//!
//! Rules: a table whose keys are exactly `1..n` is an array, the empty table is `[]`, any other
//! table is an object with string (or number) keys. Integral numbers are written as integers.
//! Cycles, nesting deeper than [`MAX_DEPTH`], NaN/infinity and functions are errors.
//!
//! Every conversion is host work for the script and is charged to its [`Budget`]: Lua → JSON
//! charges each node it builds (a table reached twice is built, and paid for, twice); JSON →
//! Lua builds Lua values directly from the text, so the VM's allocator counts them, and looks
//! at the deadline as it goes.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::mem::size_of;

use mlua::{Lua, Table, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value as Json};

use crate::budget::{Budget, Exceeded};

/// Deepest nesting accepted in either direction.
pub const MAX_DEPTH: usize = 100;

/// Host bytes one JSON node costs beyond its text: the value itself, and a key slot in objects.
const NODE_BYTES: usize = size_of::<Json>();
const ENTRY_BYTES: usize = size_of::<String>() + size_of::<Json>() + 2 * size_of::<usize>();
/// Host bytes of one (key, value) pair held while a table is read.
const PAIR_BYTES: usize = 2 * size_of::<Value>();

/// Why a conversion stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The value has no JSON form (a function, a cycle, NaN...), or the text is not JSON.
    #[error("{0}")]
    Invalid(String),
    /// The invocation's memory or time ran out.
    #[error(transparent)]
    Exceeded(#[from] Exceeded),
}

impl From<ConvertError> for mlua::Error {
    fn from(e: ConvertError) -> Self {
        match e {
            ConvertError::Invalid(m) => mlua::Error::runtime(m),
            ConvertError::Exceeded(e) => e.into(),
        }
    }
}

fn invalid(message: impl Into<String>) -> ConvertError {
    ConvertError::Invalid(message.into())
}

/// Converts a Lua value to JSON, charging every node to `budget`.
pub fn to_json(value: &Value, budget: &mut Budget) -> Result<Json, ConvertError> {
    Encoder { budget, seen: HashSet::new() }.encode(value, 0)
}

/// Serializes a Lua value as JSON text, the text charged to `budget` too.
pub fn to_json_text(value: &Value, budget: &mut Budget) -> Result<Vec<u8>, ConvertError> {
    let json = to_json(value, budget)?;
    let mut out = Charged { bytes: Vec::new(), budget };
    match serde_json::to_writer(&mut out, &json) {
        Ok(()) => Ok(out.bytes),
        Err(_) => Err(Exceeded::Memory.into()),
    }
}

/// The length of `json` as text, counting no further than `max + 1`.
pub fn text_len(json: &Json, max: usize) -> usize {
    let mut counter = Counter { len: 0, max };
    let _ = serde_json::to_writer(&mut counter, json);
    counter.len
}

/// A writer that charges what it keeps.
struct Charged<'b> {
    bytes: Vec<u8>,
    budget: &'b mut Budget,
}

impl std::io::Write for Charged<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.budget.charge(buf.len()).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer that only counts, and stops past `max`.
struct Counter {
    len: usize,
    max: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.len += buf.len();
        if self.len > self.max {
            return Err(std::io::Error::other("too long"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Encoder<'b> {
    budget: &'b mut Budget,
    /// Tables on the current path, to refuse cycles.
    seen: HashSet<usize>,
}

impl Encoder<'_> {
    fn encode(&mut self, value: &Value, depth: usize) -> Result<Json, ConvertError> {
        self.budget.charge(NODE_BYTES)?;
        Ok(match value {
            Value::Nil => Json::Null,
            Value::Boolean(b) => Json::Bool(*b),
            Value::Integer(i) => Json::Number((*i).into()),
            Value::Number(n) => number(*n)?,
            Value::String(s) => {
                let text = s.to_str().map_err(|_| invalid("string is not valid UTF-8"))?;
                self.budget.charge(text.len())?;
                Json::String(text.to_string())
            }
            Value::Table(t) => {
                if depth >= MAX_DEPTH {
                    return Err(invalid(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                let ptr = t.to_pointer() as usize;
                if !self.seen.insert(ptr) {
                    return Err(invalid("cannot encode a table that contains itself"));
                }
                let out = self.table(t, depth)?;
                self.seen.remove(&ptr);
                out
            }
            other => return Err(invalid(format!("cannot encode a {}", other.type_name()))),
        })
    }

    fn table(&mut self, t: &Table, depth: usize) -> Result<Json, ConvertError> {
        let len = t.raw_len();
        let mut entries = Vec::new();
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| invalid(e.to_string()))?;
            self.budget.charge(PAIR_BYTES)?;
            entries.push((k, v));
        }
        let index = |k: &Value| match k {
            Value::Integer(i) if *i >= 1 && (*i as usize) <= len => Some(*i as usize),
            Value::Number(n) if n.fract() == 0.0 && *n >= 1.0 && *n <= len as f64 => Some(*n as usize),
            _ => None,
        };
        if entries.len() == len && entries.iter().all(|(k, _)| index(k).is_some()) {
            let mut items = vec![Json::Null; len];
            for (k, v) in &entries {
                if let Some(i) = index(k) {
                    items[i - 1] = self.encode(v, depth + 1)?;
                }
            }
            return Ok(Json::Array(items));
        }
        self.object(entries, depth)
    }

    fn object(&mut self, entries: Vec<(Value, Value)>, depth: usize) -> Result<Json, ConvertError> {
        let mut keyed = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = match &k {
                Value::String(s) => s.to_str().map_err(|_| invalid("key is not valid UTF-8"))?.to_string(),
                Value::Integer(i) => i.to_string(),
                Value::Number(n) => number(*n)?.to_string(),
                other => return Err(invalid(format!("cannot use a {} as an object key", other.type_name()))),
            };
            self.budget.charge(ENTRY_BYTES + key.len())?;
            keyed.push((key, v));
        }
        // Lua's iteration order is arbitrary; sorted keys make answers stable and comparable.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut map = Map::new();
        for (key, v) in keyed {
            let value = self.encode(&v, depth + 1)?;
            map.insert(key, value);
        }
        Ok(Json::Object(map))
    }
}

/// A finite number as JSON: an integer while it is whole and exact, else a float.
pub(crate) fn number(n: f64) -> Result<Json, ConvertError> {
    if !n.is_finite() {
        return Err(invalid("cannot encode NaN or infinity"));
    }
    // 2^53: beyond it not every integer is representable, so keep the float.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return Ok(Json::Number((n as i64).into()));
    }
    Number::from_f64(n).map(Json::Number).ok_or_else(|| invalid("cannot encode number"))
}

/// Converts JSON to a Lua value. `null` becomes `nil`. Lua's allocator counts what it builds.
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

/// Parses JSON text straight into Lua values, with no host copy of the tree in between.
pub fn from_json_text(lua: &Lua, text: &[u8], budget: Budget) -> Result<Value, ConvertError> {
    let state = TextDecoder { lua, budget: RefCell::new(budget), failure: RefCell::new(None) };
    // serde_json stops at 128 levels, past our own MAX_DEPTH.
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = Seed { state: &state, depth: 0 }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (parsed, state.failure.into_inner()) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(stop)) => Err(stop),
        (Err(e), None) => Err(invalid(e.to_string())),
    }
}

struct TextDecoder<'l> {
    lua: &'l Lua,
    budget: RefCell<Budget>,
    /// Why decoding stopped, when it was not the text's fault.
    failure: RefCell<Option<ConvertError>>,
}

impl TextDecoder<'_> {
    /// Records a limit or Lua failure and turns it into a serde error that ends the parse.
    fn fail<E: de::Error>(&self, stop: ConvertError) -> E {
        let message = stop.to_string();
        self.failure.borrow_mut().get_or_insert(stop);
        E::custom(message)
    }

    fn lua<T, E: de::Error>(&self, made: mlua::Result<T>) -> Result<T, E> {
        made.map_err(|e| match e {
            mlua::Error::MemoryError(_) => self.fail(Exceeded::Memory.into()),
            other => self.fail(invalid(other.to_string())),
        })
    }

    fn tick<E: de::Error>(&self) -> Result<(), E> {
        let ticked = self.budget.borrow_mut().charge(0);
        ticked.map_err(|e| self.fail(e.into()))
    }
}

#[derive(Clone, Copy)]
struct Seed<'s, 'l> {
    state: &'s TextDecoder<'l>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        self.state.tick()?;
        if self.depth > MAX_DEPTH {
            return Err(self.state.fail(invalid(format!("JSON nested deeper than {MAX_DEPTH} levels"))));
        }
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.state.lua(self.state.lua.create_string(s)).map(Value::String)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let t = self.state.lua(self.state.lua.create_table())?;
        let inner = Seed { depth: self.depth + 1, ..self };
        let mut i = 0;
        while let Some(v) = seq.next_element_seed(inner)? {
            i += 1;
            self.state.lua(t.raw_set(i, v))?;
        }
        Ok(Value::Table(t))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let t = self.state.lua(self.state.lua.create_table())?;
        let inner = Seed { depth: self.depth + 1, ..self };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let key = self.state.lua(self.state.lua.create_string(key.as_bytes()))?;
            let v = map.next_value_seed(inner)?;
            self.state.lua(t.raw_set(key, v))?;
        }
        Ok(Value::Table(t))
    }
}

/// Builds the `goop.json` table: `encode(v)` and `decode(s)`, each returning `nil, err` when the
/// value or text is not convertible. Running out of memory or time is an error of the call.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, v: Value| match to_json_text(&v, &mut Budget::of(lua)) {
            Ok(text) => Ok((Value::String(lua.create_string(text)?), Value::Nil)),
            Err(ConvertError::Invalid(e)) => Ok((Value::Nil, Value::String(lua.create_string(e)?))),
            Err(stop) => Err(stop.into()),
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::LuaString| match from_json_text(lua, &s.as_bytes(), Budget::of(lua)) {
            Ok(v) => Ok((v, Value::Nil)),
            Err(ConvertError::Invalid(e)) => {
                Ok((Value::Nil, Value::String(lua.create_string(format!("invalid JSON: {e}"))?)))
            }
            Err(stop) => Err(stop.into()),
        })?,
    )?;
    Ok(t)
}
