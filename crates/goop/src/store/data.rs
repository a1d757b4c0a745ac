//! The data protocol's table operations: `tables`, `describe`, `query`, `insert`, `update`,
//! `delete`, for a caller identified by peer ID, under the tables' access policies.
//!
//! Answers: `{"ok":true,"tables":[…]}`, `{"ok":true,"columns":[{"name","type"}…]}`,
//! `{"ok":true,"rows":[{…}…]}` (plus `"truncated":true` when the 1 MB cap cut rows off),
//! `{"ok":true,"id":N}`, `{"ok":true,"affected":N}`, or `{"ok":false,"error":"…"}`.
//!
//! Table and column names are checked against the live schema and quoted; values are bound.
//! The caller's `where` runs under the authorizer's [`Rule::Table`]: it may read only the
//! target table's columns. The system columns are stamped here, never taken from `data`.

use std::time::{Duration, Instant};

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Statement};
use serde_json::{json, Map, Value};

use super::error::StoreError;
use super::guard::{self, Rule, Write};
use super::policy::{Decision, Op};
use super::request::{self, cut, short, Filter, Query, Request};
use super::schema::{self, Column, SYSTEM_COLUMNS};
use super::value::{self, MAX_RESULT_BYTES};
use super::Store;

/// Longest error text in an answer.
pub const MAX_ERROR_CHARS: usize = 300;

/// Time one data request may take, waiting for a connection included.
pub const REQUEST_TIME: Duration = Duration::from_secs(2);

impl Store {
    /// Answers one table request from `caller` (a peer ID). Never panics on any JSON; every
    /// failure is `{"ok":false,"error":…}`. `lua-call`/`lua-list` are not handled here.
    pub fn data_request(&self, caller: &str, request: &Value) -> Value {
        self.refresh();
        match self.answer(caller, request) {
            Ok(answer) => answer,
            // Errors can quote the caller's input (serde does): keep them short.
            Err(e) => json!({ "ok": false, "error": cut(&e.to_string(), MAX_ERROR_CHARS) }),
        }
    }

    fn answer(&self, caller: &str, request: &Value) -> Result<Value, StoreError> {
        let request = request::parse(request)?;
        let deadline = Instant::now() + REQUEST_TIME;
        let conn = self.inner.pool.get(deadline)?;
        let ctx = Ctx { store: self, conn: &conn, caller, is_owner: caller == self.inner.owner, deadline };
        match request {
            Request::Tables => ctx.tables(),
            Request::Describe { table } => ctx.describe(&table),
            Request::Query(q) => ctx.query(q),
            Request::Insert { table, data } => ctx.insert(&table, &data),
            Request::Update { table, data, filter } => ctx.update(&table, &data, &filter),
            Request::Delete { table, filter } => ctx.delete(&table, &filter),
        }
    }
}

/// One request being answered.
struct Ctx<'a> {
    store: &'a Store,
    conn: &'a Connection,
    caller: &'a str,
    is_owner: bool,
    deadline: Instant,
}

/// A user table the caller may use for an op.
struct Target {
    name: String,
    columns: Vec<Column>,
    /// `true`: only rows whose `_owner` is the caller.
    own_rows: bool,
}

impl Target {
    /// The table's spelling of `name`, if it is one of its columns.
    fn column(&self, name: &str) -> Result<&str, StoreError> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.name.as_str())
            .ok_or_else(|| StoreError::Request(format!("no column {:?} in table {}", short(name), self.name)))
    }

    fn has_system_columns(&self) -> Result<(), StoreError> {
        for system in SYSTEM_COLUMNS {
            if !self.columns.iter().any(|c| c.name.eq_ignore_ascii_case(system)) {
                return Err(StoreError::Request(format!(
                    "table {} has no {system} column; remote writes need _id, _owner, _created_at and _updated_at",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// `(columns, values)` of `data`: existing, non-system columns only.
    fn data(&self, data: &Map<String, Value>) -> Result<(Vec<String>, Vec<Sql>), StoreError> {
        let mut columns = Vec::with_capacity(data.len());
        let mut values = Vec::with_capacity(data.len());
        for (name, v) in data {
            let column = self.column(name)?;
            if SYSTEM_COLUMNS.iter().any(|s| s.eq_ignore_ascii_case(column)) {
                return Err(StoreError::Request(format!("column {column} is set by the system")));
            }
            columns.push(quote(column));
            values.push(value::from_json(v, &format!("data.{column}"))?);
        }
        Ok((columns, values))
    }
}

impl Ctx<'_> {
    /// The table `name` if it exists and the caller may `op` it.
    fn target(&self, name: &str, op: Op) -> Result<Target, StoreError> {
        let Some((name, columns)) = schema::table(self.conn, name)? else {
            return Err(StoreError::Request(format!("no table {:?}", short(name))));
        };
        let own_rows = match self.store.policies().decide(&name, op, self.is_owner) {
            Decision::All => false,
            Decision::OwnRows => true,
            Decision::Refused(access) => {
                return Err(StoreError::Forbidden { op: op.name(), table: name, policy: access.name() })
            }
        };
        let target = Target { name, columns, own_rows };
        if own_rows && op != Op::Insert {
            target.column("_owner")?;
        }
        Ok(target)
    }

    fn tables(&self) -> Result<Value, StoreError> {
        let policies = self.store.policies();
        let visible: Vec<String> = schema::user_tables(self.conn)?
            .into_iter()
            .filter(|t| !matches!(policies.decide(t, Op::Read, self.is_owner), Decision::Refused(_)))
            .collect();
        Ok(json!({ "ok": true, "tables": visible }))
    }

    fn describe(&self, table: &str) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Read)?;
        let columns: Vec<Value> =
            target.columns.iter().map(|c| json!({ "name": c.name, "type": c.decl_type })).collect();
        Ok(json!({ "ok": true, "columns": columns }))
    }

    fn query(&self, q: Query) -> Result<Value, StoreError> {
        let target = self.target(&q.table, Op::Read)?;
        let columns = match &q.columns {
            Some(list) if list.is_empty() => return Err(StoreError::Request("columns must not be empty".into())),
            Some(list) => list.iter().map(|c| target.column(c).map(quote)).collect::<Result<Vec<_>, _>>()?,
            None => target.columns.iter().map(|c| quote(&c.name)).collect(),
        };
        let mut order = Vec::with_capacity(q.order.len());
        for (column, desc) in &q.order {
            order.push(format!("{} {}", quote(target.column(column)?), if *desc { "DESC" } else { "ASC" }));
        }
        let (filter, mut params) = self.filter(&target, q.filter.as_ref())?;
        let mut sql = format!("SELECT {} FROM {} WHERE {filter}", columns.join(", "), quote(&target.name));
        if !order.is_empty() {
            sql += &format!(" ORDER BY {}", order.join(", "));
        }
        sql += " LIMIT ? OFFSET ?";
        params.push(Sql::Integer(q.limit as i64));
        params.push(Sql::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));

        let rule = Rule::Table { table: target.name.clone(), write: None };
        let (rows, truncated) = guard::run(self.conn, rule, self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &sql)?;
            let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let mut rows = stmt.query(rusqlite::params_from_iter(&params)).map_err(StoreError::Sql)?;
            let mut out = Vec::new();
            let mut bytes = 2;
            // The LIMIT above caps the count; the loop caps it again, whatever the SQL did.
            while let Some(row) = rows.next().map_err(StoreError::Sql)? {
                let mut object = Map::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    object.insert(name.clone(), value::to_json(value::column(row, i).map_err(StoreError::Sql)?));
                }
                let object = Value::Object(object);
                bytes += object.to_string().len() + 1;
                if bytes > MAX_RESULT_BYTES {
                    return Ok((out, true));
                }
                out.push(object);
                if out.len() >= q.limit {
                    break;
                }
            }
            Ok((out, false))
        })?;
        Ok(if truncated {
            json!({ "ok": true, "rows": rows, "truncated": true })
        } else {
            json!({ "ok": true, "rows": rows })
        })
    }

    fn insert(&self, table: &str, data: &Map<String, Value>) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Insert)?;
        target.has_system_columns()?;
        let (mut columns, mut values) = target.data(data)?;
        let mut placeholders = vec!["?"; columns.len()];
        columns.push(quote("_owner"));
        values.push(Sql::Text(self.caller.to_string()));
        placeholders.push("?");
        for stamp in ["_created_at", "_updated_at"] {
            columns.push(quote(stamp));
            placeholders.push("CURRENT_TIMESTAMP");
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&target.name),
            columns.join(", "),
            placeholders.join(", ")
        );
        let rule = Rule::Table { table: target.name.clone(), write: Some(Write::Insert) };
        let id = guard::run(self.conn, rule, self.deadline, |conn, _| {
            prepare(conn, &sql)?.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)?;
            Ok(conn.last_insert_rowid())
        })?;
        Ok(json!({ "ok": true, "id": id }))
    }

    fn update(&self, table: &str, data: &Map<String, Value>, filter: &Filter) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Update)?;
        target.has_system_columns()?;
        let (columns, mut params) = target.data(data)?;
        let mut sets: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
        sets.push(format!("{} = CURRENT_TIMESTAMP", quote("_updated_at")));
        let (where_sql, where_params) = self.filter(&target, Some(filter))?;
        params.extend(where_params);
        let sql = format!("UPDATE {} SET {} WHERE {where_sql}", quote(&target.name), sets.join(", "));
        self.write(&target, Write::Update, &sql, &params)
    }

    fn delete(&self, table: &str, filter: &Filter) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Delete)?;
        target.has_system_columns()?;
        let (where_sql, params) = self.filter(&target, Some(filter))?;
        let sql = format!("DELETE FROM {} WHERE {where_sql}", quote(&target.name));
        self.write(&target, Write::Delete, &sql, &params)
    }

    fn write(&self, target: &Target, write: Write, sql: &str, params: &[Sql]) -> Result<Value, StoreError> {
        let rule = Rule::Table { table: target.name.clone(), write: Some(write) };
        let affected = guard::run(self.conn, rule, self.deadline, |conn, _| {
            prepare(conn, sql)?.execute(rusqlite::params_from_iter(params)).map_err(StoreError::Sql)
        })?;
        Ok(json!({ "ok": true, "affected": affected }))
    }

    /// The WHERE clause and its parameters: the caller's fragment (in parentheses, on its own
    /// lines) and, for `own` access, `AND _owner = caller`.
    fn filter(&self, target: &Target, filter: Option<&Filter>) -> Result<(String, Vec<Sql>), StoreError> {
        let mut params = Vec::new();
        let mut sql = match filter {
            Some(f) => {
                for (i, arg) in f.args.iter().enumerate() {
                    params.push(value::from_json(arg, &format!("args[{i}]"))?);
                }
                format!("(\n{}\n)", f.sql)
            }
            None => "1".to_string(),
        };
        if target.own_rows {
            sql += &format!(" AND {} = ?", quote("_owner"));
            params.push(Sql::Text(self.caller.to_string()));
        }
        Ok((sql, params))
    }
}

/// Prepares one of goop's statements and checks that every parameter is a plain `?`, so the
/// values line up with the placeholders goop wrote (a `?9` or `:name` in a `where` could
/// otherwise point at goop's own `_owner = ?`).
fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<Statement<'c>, StoreError> {
    let stmt = conn.prepare(sql).map_err(StoreError::Sql)?;
    if (1..=stmt.parameter_count()).any(|i| stmt.parameter_name(i).is_some()) {
        return Err(StoreError::Request("where may use only plain ? placeholders".into()));
    }
    Ok(stmt)
}

/// A checked identifier in double quotes.
fn quote(name: &str) -> String {
    format!("\"{name}\"")
}
