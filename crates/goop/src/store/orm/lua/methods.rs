//! The methods of a `goop.orm` handle, each goop2's: arguments after the handle, results as
//! goop2 returns them (see [`super`]).

use rusqlite::types::Value as Sql;

use super::{bad, column, failed, first, ok, options, row, rows, run, to_sql, Args};
use crate::store::error::StoreError;
use crate::store::orm::describe::{self, validate};
use crate::store::orm::query::{self, Filter, Limit, Query};
use crate::store::orm::read::{Found, Overflow, Read};
use crate::store::orm::write::{Input, Row};
use crate::store::Store;
use goop_script::mlua::{self, Lua, MultiValue, Table, Value};

/// Runs a read and turns its rows into `shape`; `nil, err` when it fails.
fn reading(
    lua: &Lua,
    store: &Store,
    table: &str,
    read: Read,
    query: Result<Query, StoreError>,
    shape: fn(&Lua, Found) -> mlua::Result<Value>,
) -> mlua::Result<MultiValue> {
    let found = query.and_then(|q| run(store, lua, |s| s.read(table, &read, &q, Overflow::Fail)));
    match found {
        Ok(found) => ok(shape(lua, found)?),
        Err(e) => failed(lua, Value::Nil, &e),
    }
}

const FIND: &[&str] = &["where", "args", "order", "limit", "offset", "fields"];
const FILTER: &[&str] = &["where", "args"];

pub(super) fn find(lua: &Lua, store: &Store, table: &str, _: &describe::Table, args: Args) -> mlua::Result<MultiValue> {
    let opts = args.opt_table(0, "find")?;
    reading(lua, store, table, Read::Rows, options(lua, opts.as_ref(), FIND).map(|o| o.0), rows)
}

pub(super) fn find_one(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let opts = args.opt_table(0, "find_one")?;
    let query = options(lua, opts.as_ref(), FIND).map(|(q, _)| Query { limit: Limit::Exactly(1), ..q });
    reading(lua, store, table, Read::One, query, first)
}

pub(super) fn get(lua: &Lua, store: &Store, table: &str, _: &describe::Table, args: Args) -> mlua::Result<MultiValue> {
    let id = args.id(0, "get")?;
    let filter = Filter { sql: "\"_id\" = ?".into(), args: vec![Sql::Integer(id)] };
    let query = Query { limit: Limit::Exactly(1), ..Query::matching(Some(filter)) };
    match run(store, lua, |s| s.read(table, &Read::One, &query, Overflow::Fail)) {
        Ok(found) if found.rows.is_empty() => failed(lua, Value::Nil, &StoreError::Request("not found".into())),
        Ok(found) => ok(first(lua, found)?),
        Err(e) => failed(lua, Value::Nil, &e),
    }
}

pub(super) fn get_by(
    lua: &Lua,
    store: &Store,
    table: &str,
    described: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let column = args.string(0, "get_by")?;
    let value = to_sql(&args.get(1)).ok_or_else(|| bad("get_by", "a string, number, boolean or nil value"))?;
    let query = match described
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .chain(["_id", "_owner", "_created_at", "_updated_at"])
        .find(|c| c.eq_ignore_ascii_case(&column))
    {
        Some(c) => Ok(Query {
            limit: Limit::Exactly(1),
            ..Query::matching(Some(Filter { sql: format!("\"{c}\" = ?"), args: vec![value] }))
        }),
        None => Err(StoreError::Request(format!(
            "no column {:?} in table {}",
            crate::store::request::short(&column),
            table
        ))),
    };
    reading(lua, store, table, Read::One, query, first)
}

pub(super) fn list(lua: &Lua, store: &Store, table: &str, _: &describe::Table, args: Args) -> mlua::Result<MultiValue> {
    let limit = match args.get(0) {
        Value::Nil => 0,
        _ => args.id(0, "list")?,
    };
    let limit = usize::try_from(limit).ok().filter(|n| (1..=1000).contains(n)).map_or(Limit::All, Limit::Exactly);
    reading(lua, store, table, Read::Rows, Ok(Query { limit, ..Query::all() }), rows)
}

pub(super) fn count(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let opts = args.opt_table(0, "count")?;
    let counted = options(lua, opts.as_ref(), FILTER).and_then(|(q, _)| run(store, lua, |s| s.count(table, &q)));
    match counted {
        Ok(n) => ok(Value::Number(n as f64)),
        Err(e) => failed(lua, Value::Number(0.0), &e),
    }
}

pub(super) fn exists(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let opts = args.opt_table(0, "exists")?;
    let found = options(lua, opts.as_ref(), FILTER).and_then(|(q, _)| run(store, lua, |s| s.exists(table, &q)));
    match found {
        Ok(yes) => ok(Value::Boolean(yes)),
        Err(e) => failed(lua, Value::Boolean(false), &e),
    }
}

pub(super) fn pluck(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let column_name = args.string(0, "pluck")?;
    let opts = args.opt_table(1, "pluck")?;
    let query = options(lua, opts.as_ref(), &["where", "args", "order", "limit"]).map(|o| o.0);
    reading(lua, store, table, Read::Pluck(column_name), query, column)
}

pub(super) fn distinct(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let column_name = args.string(0, "distinct")?;
    let opts = args.opt_table(1, "distinct")?;
    reading(lua, store, table, Read::Distinct(column_name), options(lua, opts.as_ref(), FILTER).map(|o| o.0), column)
}

pub(super) fn aggregate(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let expr = args.string(0, "aggregate")?;
    let opts = args.opt_table(1, "aggregate")?;
    let parsed = options(lua, opts.as_ref(), &["where", "args", "group_by"]).and_then(|(query, group_by)| {
        let expr = query::expression("expr", &expr)?;
        let group_by = match group_by {
            Some(text) => query::names("group_by", &text)?,
            None => Vec::new(),
        };
        Ok((Read::Aggregate { expr, group_by }, query))
    });
    match parsed {
        Ok((read, query)) => reading(lua, store, table, read, Ok(query), rows),
        Err(e) => failed(lua, Value::Nil, &e),
    }
}

/// goop2's insert: checked against the table first (required columns, types), then written.
fn insert_checked(
    lua: &Lua,
    store: &Store,
    table: &str,
    described: &describe::Table,
    data: &Table,
) -> Result<i64, StoreError> {
    let row = row(lua, data, false)?;
    check(described, &row)?;
    run(store, lua, |s| s.insert(table, &row))
}

fn check(described: &describe::Table, row: &Row) -> Result<(), StoreError> {
    let values: Vec<(String, Sql)> = row
        .iter()
        .filter_map(|(k, v)| match v {
            Input::Value(v) => Some((k.clone(), v.clone())),
            Input::Expr(_) => None,
        })
        .collect();
    validate(described, &values).map_err(StoreError::Request)
}

pub(super) fn insert(
    lua: &Lua,
    store: &Store,
    table: &str,
    described: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let data = args.table(0, "insert")?;
    match insert_checked(lua, store, table, described, &data) {
        Ok(id) => ok(Value::Number(id as f64)),
        Err(e) => failed(lua, Value::Nil, &e),
    }
}

pub(super) fn update(
    lua: &Lua,
    store: &Store,
    table: &str,
    described: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let id = args.id(0, "update")?;
    let data = args.table(1, "update")?;
    let filter = Filter { sql: "\"_id\" = ?".into(), args: vec![Sql::Integer(id)] };
    let done = row(lua, &data, false).and_then(|row| {
        // An update is partial: types only, nothing required.
        let typed = describe::Table {
            columns: described.columns.iter().map(|c| describe::Column { required: false, ..c.clone() }).collect(),
            ..described.clone()
        };
        check(&typed, &row)?;
        run(store, lua, |s| s.update(table, &row, &filter))
    });
    match done {
        Ok(_) => ok(Value::Boolean(true)),
        Err(e) => failed(lua, Value::Boolean(false), &e),
    }
}

pub(super) fn delete(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let id = args.id(0, "delete")?;
    let filter = Filter { sql: "\"_id\" = ?".into(), args: vec![Sql::Integer(id)] };
    match run(store, lua, |s| s.delete(table, &filter)) {
        Ok(_) => ok(Value::Boolean(true)),
        Err(e) => failed(lua, Value::Boolean(false), &e),
    }
}

/// The `where` an update_where or delete_where must have.
fn required_filter(lua: &Lua, opts: &Table, what: &str) -> Result<Filter, StoreError> {
    let (query, _) = options(lua, Some(opts), FILTER)?;
    query.filter.ok_or_else(|| StoreError::Request(format!("{what} requires a where clause")))
}

pub(super) fn update_where(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let data = args.table(0, "update_where")?;
    let opts = args.table(1, "update_where")?;
    let done = required_filter(lua, &opts, "update_where")
        .and_then(|filter| Ok((filter, row(lua, &data, true)?)))
        .and_then(|(filter, row)| run(store, lua, |s| s.update(table, &row, &filter)));
    match done {
        Ok(n) => ok(Value::Number(n as f64)),
        Err(e) => failed(lua, Value::Number(0.0), &e),
    }
}

pub(super) fn delete_where(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let opts = args.table(0, "delete_where")?;
    let done =
        required_filter(lua, &opts, "delete_where").and_then(|filter| run(store, lua, |s| s.delete(table, &filter)));
    match done {
        Ok(n) => ok(Value::Number(n as f64)),
        Err(e) => failed(lua, Value::Number(0.0), &e),
    }
}

pub(super) fn upsert(
    lua: &Lua,
    store: &Store,
    table: &str,
    _: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let key = args.string(0, "upsert")?;
    let data = args.table(1, "upsert")?;
    match row(lua, &data, false).and_then(|row| run(store, lua, |s| s.upsert(table, &key, &row))) {
        Ok(id) => ok(Value::Number(id as f64)),
        Err(e) => failed(lua, Value::Nil, &e),
    }
}

/// goop2's seed: inserts the rows only if the table is empty; how many went in (a row that
/// does not fit is skipped, as in goop2).
pub(super) fn seed(
    lua: &Lua,
    store: &Store,
    table: &str,
    described: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let list = args.table(0, "seed")?;
    match run(store, lua, |s| s.exists(table, &Query::all())) {
        Ok(true) => return ok(Value::Number(0.0)),
        Ok(false) => {}
        Err(e) => return failed(lua, Value::Number(0.0), &e),
    }
    let mut inserted = 0;
    for entry in list.sequence_values::<Value>() {
        if let Value::Table(data) = entry? {
            match insert_checked(lua, store, table, described, &data) {
                Ok(_) => inserted += 1,
                Err(e) => tracing::debug!("seed {table}: a row skipped: {e}"),
            }
        }
    }
    ok(Value::Number(f64::from(inserted)))
}

pub(super) fn validate_fn(
    lua: &Lua,
    _: &Store,
    _: &str,
    described: &describe::Table,
    args: Args,
) -> mlua::Result<MultiValue> {
    let data = args.table(0, "validate")?;
    match row(lua, &data, false).and_then(|row| check(described, &row)) {
        Ok(()) => ok(Value::Boolean(true)),
        Err(e) => failed(lua, Value::Boolean(false), &e),
    }
}
