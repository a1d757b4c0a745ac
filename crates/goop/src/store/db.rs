//! `goop.db`: the peer's database for data functions (not chat commands).
//!
//! ```lua
//! local rows  = goop.db.query("SELECT * FROM games WHERE _id = ?", id)   -- array of row tables
//! local n     = goop.db.scalar("SELECT COUNT(*) FROM games")             -- first value or nil
//! local count = goop.db.exec("UPDATE games SET board = ? WHERE _id = ?", board, id) -- rows changed
//! ```
//!
//! Parameters are bound (strings, numbers, booleans, nil), never interpolated. One statement
//! per call. `query`/`scalar` cannot write; `exec` only inserts, updates and deletes rows of user
//! tables: see [`Store::script_query`] and [`Store::script_exec`]. At most 1000 rows and 1 MB
//! per result (an error beyond). A statement still running at the invocation's deadline stops.
//! The host's copies of the SQL, the parameters and the rows are charged to the invocation's
//! memory limit.
//!
//! Values come back as Lua values: INTEGER and REAL → number, TEXT and BLOB → string,
//! NULL → nil (so the field is absent from the row table).

use std::time::Instant;

use goop_script::mlua::{self, Lua, LuaString, MultiValue, Table, Value};
use goop_script::{Budget, HostModule, Invocation, Scope};
use rusqlite::types::Value as Sql;

use super::script::Want;
use super::Store;

/// The `goop.db` host module over a peer's store.
#[derive(Debug, Clone)]
pub struct DbModule {
    store: Store,
}

impl DbModule {
    pub fn new(store: Store) -> Self {
        DbModule { store }
    }
}

impl HostModule for DbModule {
    fn name(&self) -> &str {
        "db"
    }

    fn scope(&self) -> Scope {
        Scope::DataFunctions
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        let store = self.store.clone();
        t.set(
            "query",
            lua.create_function(move |lua, (sql, args): (LuaString, MultiValue)| {
                let (sql, params, deadline) = prepare(lua, "query", &sql, args)?;
                let rows = store.script_query(&sql, &params, Want::All, deadline).map_err(fail("query"))?;
                Budget::of(lua).charge(rows.bytes)?;
                let list = lua.create_table_with_capacity(rows.rows.len(), 0)?;
                for row in rows.rows {
                    let table = lua.create_table_with_capacity(0, rows.columns.len())?;
                    for (name, value) in rows.columns.iter().zip(row) {
                        table.raw_set(name.as_str(), to_lua(lua, value)?)?;
                    }
                    list.raw_push(table)?;
                }
                Ok(list)
            })?,
        )?;
        let store = self.store.clone();
        t.set(
            "scalar",
            lua.create_function(move |lua, (sql, args): (LuaString, MultiValue)| {
                let (sql, params, deadline) = prepare(lua, "scalar", &sql, args)?;
                let rows = store.script_query(&sql, &params, Want::First, deadline).map_err(fail("scalar"))?;
                match rows.rows.into_iter().next().and_then(|row| row.into_iter().next()) {
                    Some(value) => to_lua(lua, value),
                    None => Ok(Value::Nil),
                }
            })?,
        )?;
        let store = self.store.clone();
        t.set(
            "exec",
            lua.create_function(move |lua, (sql, args): (LuaString, MultiValue)| {
                let (sql, params, deadline) = prepare(lua, "exec", &sql, args)?;
                let changed = store.script_exec(&sql, &params, deadline).map_err(fail("exec"))?;
                // Lua numbers are doubles; a count never comes near 2^53.
                Ok(changed as f64)
            })?,
        )?;
        Ok(t)
    }
}

/// The SQL text, the bound values and the invocation's deadline.
fn prepare(lua: &Lua, function: &str, sql: &LuaString, args: MultiValue) -> mlua::Result<(String, Vec<Sql>, Instant)> {
    let mut budget = Budget::of(lua);
    budget.charge(sql.as_bytes().len())?;
    for arg in &args {
        if let Value::String(s) = arg {
            budget.charge(s.as_bytes().len())?;
        }
    }
    let sql = sql
        .to_str()
        .map_err(|_| mlua::Error::runtime(format!("goop.db.{function}: SQL must be UTF-8 text")))?
        .to_string();
    let params = args
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            to_sql(v).map_err(|kind| {
                mlua::Error::runtime(format!(
                    "goop.db.{function}: parameter {} is a {kind}; only strings, numbers, booleans and nil bind",
                    i + 1
                ))
            })
        })
        .collect::<mlua::Result<Vec<_>>>()?;
    // Read the deadline now and let go of the invocation: the query runs with only an Instant.
    let deadline = lua
        .try_app_data_ref::<Invocation>()
        .map_err(|_| mlua::Error::runtime(format!("goop.db.{function}: invocation state is busy")))?
        .map(|inv| inv.deadline())
        .ok_or_else(|| mlua::Error::runtime(format!("goop.db.{function} used outside an invocation")))?;
    Ok((sql, params, deadline))
}

fn fail(function: &'static str) -> impl Fn(super::StoreError) -> mlua::Error {
    move |e| mlua::Error::runtime(format!("goop.db.{function}: {e}"))
}

/// A Lua argument as a SQL value; the type name if it cannot be one.
fn to_sql(value: Value) -> Result<Sql, &'static str> {
    Ok(match value {
        Value::Nil => Sql::Null,
        Value::Boolean(b) => Sql::Integer(b.into()),
        Value::Integer(i) => Sql::Integer(i),
        // Whole numbers bind as integers, so `_id = ?` matches a number that came from JSON.
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Sql::Integer(n as i64),
        Value::Number(n) => Sql::Real(n),
        Value::String(s) => match s.to_str() {
            Ok(text) => Sql::Text(text.to_string()),
            Err(_) => Sql::Blob(s.as_bytes().to_vec()),
        },
        other => return Err(other.type_name()),
    })
}

fn to_lua(lua: &Lua, value: Sql) -> mlua::Result<Value> {
    Ok(match value {
        Sql::Null => Value::Nil,
        Sql::Integer(i) => Value::Number(i as f64),
        Sql::Real(f) => Value::Number(f),
        Sql::Text(s) => Value::String(lua.create_string(&s)?),
        Sql::Blob(b) => Value::String(lua.create_string(&b)?),
    })
}
