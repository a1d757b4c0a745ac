//! `goop.orm(table)` and `goop.expr(sql)` for data functions (not chat commands, like `goop.db`),
//! with goop2's methods and results, over the operations layer ([`super`]).
//!
//! ```lua
//! local posts = goop.orm("posts")            -- nil, "no table \"posts\"" when there is none
//! local rows  = posts:find({ where = "published = ?", args = { 1 }, order = "_id DESC", limit = 10 })
//! local id    = posts:insert({ title = "New" })                 -- _owner is goop.peer.id
//! posts:update_where({ hits = goop.expr("hits + 1") }, { where = "_id = ?", args = { id } })
//! ```
//!
//! A script is the owner's code, so like `goop.db` it reaches every row of every user table,
//! unbudgeted; but each statement reads only its own table, and every fragment is checked as
//! the data protocol's are. Results are capped at 1000 rows and 1 MB (an error past them), and
//! the host's copies are charged to the invocation's memory limit; statements stop at its
//! deadline. As in goop2, a failed operation returns `nil, err` (`false, err` for
//! update/delete/validate/exists, `0, err` for count/update_where/delete_where/seed); wrong
//! argument types raise. A `goop.expr` value is a userdata: nothing from JSON can forge one.

mod config;
mod methods;

pub use config::ConfigModule;

use std::sync::Arc;
use std::time::Instant;

use goop_script::mlua::{self, AnyUserData, Lua, MultiValue, Table, UserData, Value};
use goop_script::{Budget, HostModule, Invocation, Scope};
use rusqlite::types::Value as Sql;

use super::describe;
use super::query::{self, Limit, Query};
use super::read::Found;
use super::write::{Input, Row};
use super::{own, Actor, Session};
use crate::store::error::StoreError;
use crate::store::Store;

/// The `goop.orm` host module over a peer's store.
#[derive(Debug, Clone)]
pub struct OrmModule {
    store: Store,
}

impl OrmModule {
    pub fn new(store: Store) -> Self {
        OrmModule { store }
    }
}

/// The `goop.expr` host module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExprModule;

/// A raw SQL expression for an `update_where` value.
struct SqlExpr(String);

impl UserData for SqlExpr {}

/// A read-only table that calls `f` when called: how a function sits at `goop.<name>`.
fn callable<F>(lua: &Lua, f: F) -> mlua::Result<Table>
where
    F: Fn(&Lua, MultiValue) -> mlua::Result<MultiValue> + Send + 'static,
{
    let call = lua.create_function(move |lua, args: MultiValue| {
        // The first argument is the table itself.
        let args: MultiValue = args.into_iter().skip(1).collect();
        f(lua, args)
    })?;
    let meta = lua.create_table()?;
    meta.raw_set("__call", call)?;
    meta.raw_set("__metatable", false)?;
    meta.set_readonly(true);
    let t = lua.create_table()?;
    t.set_metatable(Some(meta))?;
    Ok(t)
}

impl HostModule for ExprModule {
    fn name(&self) -> &str {
        "expr"
    }

    fn scope(&self) -> Scope {
        Scope::DataFunctions
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        callable(lua, |lua, args| {
            let sql = match args.into_iter().next() {
                Some(Value::String(s)) => {
                    s.to_str().map(|s| s.to_string()).map_err(|_| bad("goop.expr", "UTF-8 text"))?
                }
                _ => return Err(bad("goop.expr", "a string")),
            };
            Budget::of(lua).charge(sql.len())?;
            Ok(MultiValue::from_iter([Value::UserData(lua.create_userdata(SqlExpr(sql))?)]))
        })
    }
}

impl HostModule for OrmModule {
    fn name(&self) -> &str {
        "orm"
    }

    fn scope(&self) -> Scope {
        Scope::DataFunctions
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        let store = Arc::new(self.store.clone());
        callable(lua, move |lua, args| {
            let name = match args.into_iter().next() {
                Some(Value::String(s)) => {
                    s.to_str().map(|s| s.to_string()).map_err(|_| bad("goop.orm", "UTF-8 text"))?
                }
                _ => return Err(bad("goop.orm", "a table name")),
            };
            let described = run(&store, lua, |s| {
                describe::describe(s.conn, &s.store.policies(), &s.store.schemas_as_read(), &name)
            });
            match described {
                Ok(Some(table)) => Ok(MultiValue::from_iter([Value::Table(handle(lua, &store, table)?), Value::Nil])),
                Ok(None) => failed(lua, Value::Nil, &StoreError::Request(format!("no table {name:?}"))),
                Err(e) => failed(lua, Value::Nil, &e),
            }
        })
    }
}

/// Runs `work` in a session for the running invocation: its caller, its deadline.
pub(super) fn run<T>(
    store: &Store,
    lua: &Lua,
    work: impl FnOnce(&Session<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let (caller, deadline) = invocation(lua).map_err(|e| StoreError::Request(e.to_string()))?;
    store.refresh();
    let conn = store.inner.pool.get(deadline)?;
    let _serving = own::serve(&caller);
    let session = Session { store, conn: &conn, caller: &caller, actor: Actor::Unrestricted, deadline };
    work(&session)
}

/// The caller's peer ID and the deadline, read now so the statement runs without the invocation.
fn invocation(lua: &Lua) -> mlua::Result<(String, Instant)> {
    lua.try_app_data_ref::<Invocation>()
        .map_err(|_| mlua::Error::runtime("goop.orm: invocation state is busy"))?
        .map(|inv| (inv.caller().id.clone(), inv.deadline()))
        .ok_or_else(|| mlua::Error::runtime("goop.orm used outside an invocation"))
}

pub(super) fn bad(function: &str, wanted: &str) -> mlua::Error {
    mlua::Error::runtime(format!("{function}: expected {wanted}"))
}

/// `first, "error"`: how goop2's ORM reports a failed operation.
pub(super) fn failed(lua: &Lua, first: Value, e: &StoreError) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([first, Value::String(lua.create_string(e.to_string())?)]))
}

pub(super) fn ok(value: Value) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([value, Value::Nil]))
}

/// The handle `goop.orm` returns: goop2's fields and methods for one table.
fn handle(lua: &Lua, store: &Arc<Store>, table: describe::Table) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("name", table.name.as_str())?;
    t.raw_set("system_key", table.system_key)?;
    let columns = lua.create_table()?;
    for c in &table.columns {
        let column = lua.create_table()?;
        column.raw_set("name", c.name.as_str())?;
        column.raw_set("type", c.kind.as_str())?;
        column.raw_set("required", c.required)?;
        column.raw_set("key", c.key)?;
        if let Some(d) = &c.default {
            column.raw_set("default", goop_script::api::json::from_json(lua, d)?)?;
        }
        columns.raw_push(column)?;
    }
    t.raw_set("columns", columns)?;
    let access = lua.create_table()?;
    for (op, rule) in [
        ("read", &table.access.read),
        ("insert", &table.access.insert),
        ("update", &table.access.update),
        ("delete", &table.access.delete),
    ] {
        access.raw_set(op, rule.as_str())?;
    }
    t.raw_set("access", access)?;
    let name: Arc<str> = Arc::from(table.name.as_str());
    let table = Arc::new(table);
    let method = |f: fn(&Lua, &Store, &str, &describe::Table, Args) -> mlua::Result<MultiValue>| {
        let (store, name, table) = (store.clone(), name.clone(), table.clone());
        lua.create_function(move |lua, args: MultiValue| {
            // `t:find(...)`: the first argument is the handle.
            let args = Args(args.into_iter().skip(1).collect());
            f(lua, &store, &name, &table, args)
        })
    };
    t.raw_set("find", method(methods::find)?)?;
    t.raw_set("find_one", method(methods::find_one)?)?;
    t.raw_set("get", method(methods::get)?)?;
    t.raw_set("get_by", method(methods::get_by)?)?;
    t.raw_set("list", method(methods::list)?)?;
    t.raw_set("count", method(methods::count)?)?;
    t.raw_set("exists", method(methods::exists)?)?;
    t.raw_set("pluck", method(methods::pluck)?)?;
    t.raw_set("distinct", method(methods::distinct)?)?;
    t.raw_set("aggregate", method(methods::aggregate)?)?;
    t.raw_set("insert", method(methods::insert)?)?;
    t.raw_set("update", method(methods::update)?)?;
    t.raw_set("delete", method(methods::delete)?)?;
    t.raw_set("update_where", method(methods::update_where)?)?;
    t.raw_set("delete_where", method(methods::delete_where)?)?;
    t.raw_set("upsert", method(methods::upsert)?)?;
    t.raw_set("seed", method(methods::seed)?)?;
    t.raw_set("validate", method(methods::validate_fn)?)?;
    Ok(t)
}

/// A method's arguments after the handle.
pub(super) struct Args(Vec<Value>);

impl Args {
    pub(super) fn get(&self, i: usize) -> Value {
        self.0.get(i).cloned().unwrap_or(Value::Nil)
    }

    pub(super) fn string(&self, i: usize, what: &str) -> mlua::Result<String> {
        match self.get(i) {
            Value::String(s) => Ok(s.to_str().map_err(|_| bad(what, "UTF-8 text"))?.to_string()),
            _ => Err(bad(what, "a string")),
        }
    }

    pub(super) fn table(&self, i: usize, what: &str) -> mlua::Result<Table> {
        match self.get(i) {
            Value::Table(t) => Ok(t),
            _ => Err(bad(what, "a table")),
        }
    }

    pub(super) fn opt_table(&self, i: usize, what: &str) -> mlua::Result<Option<Table>> {
        match self.get(i) {
            Value::Nil => Ok(None),
            Value::Table(t) => Ok(Some(t)),
            _ => Err(bad(what, "a table or nil")),
        }
    }

    pub(super) fn id(&self, i: usize, what: &str) -> mlua::Result<i64> {
        match self.get(i) {
            Value::Integer(n) => Ok(n),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Ok(n as i64),
            Value::String(s) => {
                s.to_str().ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| bad(what, "a row id"))
            }
            _ => Err(bad(what, "a row id")),
        }
    }
}

/// The options goop2's methods take: `where`, `args`, `order`, `limit`, `offset`, `fields`,
/// `group_by`; `allowed` says which. Unknown keys are errors (a mistyped `where` must not read
/// every row).
pub(super) fn options(
    lua: &Lua,
    opts: Option<&Table>,
    allowed: &[&str],
) -> Result<(Query, Option<String>), StoreError> {
    let mut query = Query::all();
    let Some(opts) = opts else { return Ok((query, None)) };
    let mut budget = Budget::of(lua);
    let (mut sql, mut args, mut group_by) = (None, Vec::new(), None);
    for pair in opts.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(lua_error)?;
        let key = match &key {
            Value::String(s) => s.to_string_lossy(),
            _ => return Err(StoreError::Request("options must have string keys".into())),
        };
        if !allowed.contains(&key.as_str()) {
            return Err(StoreError::Request(format!("unknown option {:?}", crate::store::request::short(&key))));
        }
        let text = || match &value {
            Value::String(s) => Ok(s.to_string_lossy()),
            _ => Err(StoreError::Request(format!("{key} must be a string"))),
        };
        let number = || match &value {
            Value::Integer(n) => Ok(*n),
            Value::Number(n) => Ok(*n as i64),
            _ => Err(StoreError::Request(format!("{key} must be a number"))),
        };
        match key.as_str() {
            "where" => {
                let t = text()?;
                budget.charge(t.len()).map_err(|e| StoreError::Request(e.to_string()))?;
                sql = Some(t);
            }
            "args" => args = values(lua, &value, "args")?,
            "order" => query.order = query::order(&text()?)?,
            "group_by" => group_by = Some(text()?),
            // goop2: 0 (or none) is every row; past 1000 rows a script gets an error.
            "limit" => {
                query.limit = usize::try_from(number()?)
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .map_or(Limit::All, Limit::Exactly)
            }
            "offset" => query.offset = query::offset(number()?)?,
            _ => {
                let Value::Table(list) = &value else {
                    return Err(StoreError::Request("fields must be a list of names".into()));
                };
                let names = list.sequence_values::<String>().collect::<Result<Vec<_>, _>>().map_err(lua_error)?;
                if names.is_empty() {
                    return Err(StoreError::Request("fields must not be empty".into()));
                }
                query.fields = Some(names);
            }
        }
    }
    query.filter = query::filter(sql, args)?;
    Ok((query, group_by))
}

fn lua_error(e: mlua::Error) -> StoreError {
    StoreError::Request(e.to_string())
}

/// A Lua list of values as SQL parameters.
fn values(lua: &Lua, list: &Value, what: &str) -> Result<Vec<Sql>, StoreError> {
    let Value::Table(list) = list else { return Err(StoreError::Request(format!("{what} must be a list"))) };
    let mut budget = Budget::of(lua);
    list.sequence_values::<Value>()
        .enumerate()
        .map(|(i, v)| {
            let v = v.map_err(lua_error)?;
            let sql = to_sql(&v).ok_or_else(|| {
                StoreError::Request(format!("{what}[{}] must be a string, number, boolean or nil", i + 1))
            })?;
            budget.charge(crate::store::value::size(&sql)).map_err(|e| StoreError::Request(e.to_string()))?;
            Ok(sql)
        })
        .collect()
}

/// A data table as a row to write; `goop.expr` values only where `exprs` allows.
pub(super) fn row(lua: &Lua, data: &Table, exprs: bool) -> Result<Row, StoreError> {
    let mut budget = Budget::of(lua);
    let mut out = Vec::new();
    for pair in data.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(lua_error)?;
        let Value::String(key) = key else { return Err(StoreError::Request("data must have string keys".into())) };
        let key = key.to_string_lossy();
        let input =
            match &value {
                Value::UserData(ud) if exprs => Input::Expr(expr(ud, &key)?),
                other => Input::Value(to_sql(other).ok_or_else(|| {
                    StoreError::Request(format!("data.{key} must be a string, number, boolean or nil"))
                })?),
            };
        if let Input::Value(v) = &input {
            budget.charge(key.len() + crate::store::value::size(v)).map_err(|e| StoreError::Request(e.to_string()))?;
        }
        out.push((key, input));
    }
    Ok(out)
}

fn expr(ud: &AnyUserData, key: &str) -> Result<String, StoreError> {
    let e =
        ud.borrow::<SqlExpr>().map_err(|_| StoreError::Request(format!("data.{key} must be a value or goop.expr")))?;
    query::expression("goop.expr", &e.0)
}

/// A Lua value as a SQL parameter, `None` for tables and functions.
pub(super) fn to_sql(value: &Value) -> Option<Sql> {
    Some(match value {
        Value::Nil => Sql::Null,
        Value::Boolean(b) => Sql::Integer((*b).into()),
        Value::Integer(i) => Sql::Integer(*i),
        // Whole numbers bind as integers, so `_id = ?` matches a number that came from JSON.
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Sql::Integer(*n as i64),
        Value::Number(n) => Sql::Real(*n),
        Value::String(s) => match s.to_str() {
            Ok(text) => Sql::Text(text.to_string()),
            Err(_) => Sql::Blob(s.as_bytes().to_vec()),
        },
        _ => return None,
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

/// Found rows as a list of row tables, charged to the invocation first.
pub(super) fn rows(lua: &Lua, found: Found) -> mlua::Result<Value> {
    Budget::of(lua).charge(found.bytes)?;
    let list = lua.create_table_with_capacity(found.rows.len(), 0)?;
    for row in found.rows {
        list.raw_push(row_table(lua, &found.columns, row)?)?;
    }
    Ok(Value::Table(list))
}

fn row_table(lua: &Lua, columns: &[String], row: Vec<Sql>) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, columns.len())?;
    for (name, value) in columns.iter().zip(row) {
        t.raw_set(name.as_str(), to_lua(lua, value)?)?;
    }
    Ok(t)
}

/// The first row, or nil.
pub(super) fn first(lua: &Lua, found: Found) -> mlua::Result<Value> {
    Budget::of(lua).charge(found.bytes)?;
    let Found { columns, rows, .. } = found;
    match rows.into_iter().next() {
        Some(row) => Ok(Value::Table(row_table(lua, &columns, row)?)),
        None => Ok(Value::Nil),
    }
}

/// One column's values as a list.
pub(super) fn column(lua: &Lua, found: Found) -> mlua::Result<Value> {
    Budget::of(lua).charge(found.bytes)?;
    let list = lua.create_table_with_capacity(found.rows.len(), 0)?;
    for (i, row) in found.rows.into_iter().enumerate() {
        // A NULL leaves a hole, as goop2's does.
        list.raw_set(i + 1, row.into_iter().next().map_or(Ok(Value::Nil), |v| to_lua(lua, v))?)?;
    }
    Ok(Value::Table(list))
}
