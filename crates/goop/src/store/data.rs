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
//!
//! A `where` never sees rows the caller may not read: under read `own` (or `owner`/`none`)
//! it runs over the caller's own-rows view ([`own`]), for queries and for update/delete alike
//! (those first collect the matching `_id`s there, then change exactly those rows).
//!
//! A remote caller's requests are budgeted ([`super::budget`], [`super::policy`]): at most
//! [`MAX_QUERIES_PER_PEER`](super::budget::MAX_QUERIES_PER_PEER) at once, writes per minute,
//! [`MAX_ROW_BYTES`] of data per write, and a quota of rows and bytes they own per table,
//! checked inside the write's transaction. The owner is not budgeted.

use std::time::{Duration, Instant};

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Statement, Transaction, TransactionBehavior};
use serde_json::{json, Map, Value};

use super::error::StoreError;
use super::guard::{self, Rule, Write};
use super::own;
use super::policy::{Decision, Op, TablePolicy};
use super::request::{self, cut, short, Filter, Query, Request};
use super::schema::{self, Column, SYSTEM_COLUMNS};
use super::value::{self, MAX_RESULT_BYTES};
use super::Store;

/// Longest error text in an answer.
pub const MAX_ERROR_CHARS: usize = 300;

/// Time one data request may take, waiting for a connection included.
pub const REQUEST_TIME: Duration = Duration::from_secs(2);
/// Most bytes of data one remote insert or update may write.
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// Most rows one remote update or delete that goes through the own-rows view may change.
pub const MAX_WRITE_ROWS: usize = 10_000;

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

    /// The schema's spelling of `table` and its columns, `None` if there is no such table.
    pub fn spelling(&self, table: &str) -> Result<Option<(String, Vec<String>)>, StoreError> {
        self.refresh();
        let conn = self.inner.pool.get(Instant::now() + REQUEST_TIME)?;
        let found = schema::table(&conn, table)?;
        Ok(found.map(|(name, columns)| (name, columns.into_iter().map(|c| c.name).collect())))
    }

    fn answer(&self, caller: &str, request: &Value) -> Result<Value, StoreError> {
        let request = request::parse(request)?;
        let deadline = Instant::now() + REQUEST_TIME;
        let is_owner = caller == self.inner.owner;
        // One peer's heavy queries hold only a few of the pool's connections.
        let _running = if is_owner { None } else { Some(self.inner.budgets.query(caller, deadline)?) };
        let conn = self.inner.pool.get(deadline)?;
        let _serving = own::serve(caller);
        let ctx = Ctx { store: self, conn: &conn, caller, is_owner, deadline };
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
    /// `true`: the caller may read every row (so a `where` may look at them all).
    reads_all: bool,
    policy: TablePolicy,
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
        let policies = self.store.policies();
        let reads_all = matches!(policies.decide(&name, Op::Read, self.is_owner), Decision::All);
        let policy = policies.table(&name);
        let target = Target { name, columns, own_rows, reads_all, policy };
        if (own_rows || !reads_all) && op != Op::Insert {
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
        let (filter, mut params) = self.filter(q.filter.as_ref(), false)?;
        let (from, through) = self.source(&target)?;
        let mut sql = format!("SELECT {} FROM {from} WHERE {filter}", columns.join(", "));
        if !order.is_empty() {
            sql += &format!(" ORDER BY {}", order.join(", "));
        }
        sql += " LIMIT ? OFFSET ?";
        params.push(Sql::Integer(q.limit as i64));
        params.push(Sql::Integer(i64::try_from(q.offset).unwrap_or(i64::MAX)));

        let rule = Rule::Table { table: target.name.clone(), write: None, through };
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

    /// What a `where` reads from: the table, or the caller's own-rows view (named as the
    /// table) when they may not read every row; and the view the authorizer must see.
    fn source(&self, target: &Target) -> Result<(String, Option<String>), StoreError> {
        if !target.own_rows && target.reads_all {
            return Ok((quote(&target.name), None));
        }
        let columns: Vec<String> = target.columns.iter().map(|c| quote(&c.name)).collect();
        let view = own::view(self.conn, &target.name, &columns)?;
        Ok((format!("temp.{} AS {}", quote(&view), quote(&target.name)), Some(view)))
    }

    fn insert(&self, table: &str, data: &Map<String, Value>) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Insert)?;
        target.has_system_columns()?;
        let (mut columns, mut values) = target.data(data)?;
        self.charge(&target, &values)?;
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
        let rule = Rule::Table { table: target.name.clone(), write: Some(Write::Insert), through: None };
        let tx = self.begin()?;
        let id = guard::run(self.conn, rule, self.deadline, |conn, _| {
            prepare(conn, &sql)?.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)?;
            Ok(conn.last_insert_rowid())
        })?;
        if !self.is_owner {
            let (rows, bytes) = self.usage(&target)?;
            let policy = &target.policy;
            if policy.quota_rows > 0 && rows > u64::from(policy.quota_rows) {
                return Err(StoreError::QuotaRows { max: policy.quota_rows, table: target.name });
            }
            if policy.quota_bytes > 0 && bytes > policy.quota_bytes {
                return Err(StoreError::QuotaBytes { max: policy.quota_bytes, table: target.name });
            }
        }
        tx.commit()?;
        Ok(json!({ "ok": true, "id": id }))
    }

    fn update(&self, table: &str, data: &Map<String, Value>, filter: &Filter) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Update)?;
        target.has_system_columns()?;
        let (columns, values) = target.data(data)?;
        self.charge(&target, &values)?;
        let mut sets: Vec<String> = columns.iter().map(|c| format!("{c} = ?")).collect();
        sets.push(format!("{} = CURRENT_TIMESTAMP", quote("_updated_at")));
        let set = format!("UPDATE {} SET {}", quote(&target.name), sets.join(", "));
        let quota = if self.is_owner { 0 } else { target.policy.quota_bytes };
        let written_per_row = values.iter().map(value::size).sum::<usize>() as u64;
        let tx = self.begin()?;
        let before = if quota > 0 { self.usage(&target)?.1 } else { 0 };
        let affected = self.write(&target, Write::Update, &set, values, filter)?;
        if quota > 0 {
            let after = self.usage(&target)?.1;
            if after > quota && after > before {
                return Err(StoreError::QuotaBytes { max: quota, table: target.name });
            }
            // Under `update: open` the rows may be others': one request still writes no more
            // than the caller could store.
            if (affected as u64).saturating_mul(written_per_row) > quota {
                return Err(StoreError::UpdateTooLarge { max: quota, rows: affected });
            }
        }
        tx.commit()?;
        Ok(json!({ "ok": true, "affected": affected }))
    }

    fn delete(&self, table: &str, filter: &Filter) -> Result<Value, StoreError> {
        let target = self.target(table, Op::Delete)?;
        target.has_system_columns()?;
        self.charge(&target, &[])?;
        let tx = self.begin()?;
        let affected =
            self.write(&target, Write::Delete, &format!("DELETE FROM {}", quote(&target.name)), vec![], filter)?;
        tx.commit()?;
        Ok(json!({ "ok": true, "affected": affected }))
    }

    /// Runs `head` (`UPDATE t SET …` with `values`, or `DELETE FROM t`) on the rows `filter`
    /// matches among those the caller may see; the number of rows changed.
    fn write(
        &self,
        target: &Target,
        write: Write,
        head: &str,
        mut values: Vec<Sql>,
        filter: &Filter,
    ) -> Result<usize, StoreError> {
        let rule = |through| Rule::Table { table: target.name.clone(), write: Some(write), through };
        let (from, through) = self.source(target)?;
        let Some(view) = through else {
            // Every row is readable: one statement, limited to the caller's rows if `own`.
            let (where_sql, where_params) = self.filter(Some(filter), target.own_rows)?;
            values.extend(where_params);
            let sql = format!("{head} WHERE {where_sql}");
            return guard::run(self.conn, rule(None), self.deadline, |conn, _| {
                prepare(conn, &sql)?.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)
            });
        };
        // Find the rows through the view, then change exactly those: the caller's `where`
        // never runs on a row they cannot see, and the count says nothing about others.
        let (where_sql, where_params) = self.filter(Some(filter), false)?;
        let find = format!("SELECT {} FROM {from} WHERE {where_sql} LIMIT {}", quote("_id"), MAX_WRITE_ROWS + 1);
        let read = Rule::Table { table: target.name.clone(), write: None, through: Some(view) };
        let ids: Vec<Sql> = guard::run(self.conn, read, self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &find)?;
            let ids = stmt.query_map(rusqlite::params_from_iter(&where_params), |r| r.get::<_, Sql>(0));
            ids.and_then(|rows| rows.collect()).map_err(StoreError::Sql)
        })?;
        if ids.len() > MAX_WRITE_ROWS {
            return Err(StoreError::TooManyMatches(MAX_WRITE_ROWS));
        }
        let sql = format!("{head} WHERE {} = ? AND {} = goop_caller()", quote("_id"), quote("_owner"));
        guard::run(self.conn, rule(None), self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &sql)?;
            let mut changed = 0;
            for id in ids {
                values.push(id);
                changed += stmt.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)?;
                values.pop();
            }
            Ok(changed)
        })
    }

    /// Charges a remote caller's write: the table's writes per minute and the row size.
    fn charge(&self, target: &Target, values: &[Sql]) -> Result<(), StoreError> {
        if self.is_owner {
            return Ok(());
        }
        self.store.inner.budgets.write(self.caller, &target.name, target.policy.rate_limit)?;
        if values.iter().map(value::size).sum::<usize>() > MAX_ROW_BYTES {
            return Err(StoreError::RowTooLarge(MAX_ROW_BYTES));
        }
        Ok(())
    }

    /// A write transaction, taken at once (waiting for the write lock until the deadline), so
    /// the quota checked is the quota committed. Rolled back unless committed.
    fn begin(&self) -> Result<Transaction<'_>, StoreError> {
        self.conn.busy_timeout(self.deadline.saturating_duration_since(Instant::now()))?;
        Ok(Transaction::new_unchecked(self.conn, TransactionBehavior::Immediate)?)
    }

    /// The caller's rows in the table and the bytes of their non-system columns, counting at
    /// most one row past the row quota (the index on `_owner` keeps this to their rows).
    fn usage(&self, target: &Target) -> Result<(u64, u64), StoreError> {
        let sizes: Vec<String> = target
            .columns
            .iter()
            .filter(|c| !SYSTEM_COLUMNS.iter().any(|s| s.eq_ignore_ascii_case(&c.name)))
            .map(|c| format!("coalesce(octet_length({}), 0)", quote(&c.name)))
            .collect();
        let size = if sizes.is_empty() { "0".to_string() } else { sizes.join(" + ") };
        let limit = match target.policy.quota_rows {
            0 => -1,
            n => i64::from(n) + 1,
        };
        let sql = format!(
            "SELECT count(*), coalesce(sum(size), 0) FROM (SELECT {size} AS size FROM main.{} WHERE {} = ? LIMIT ?)",
            quote(&target.name),
            quote("_owner")
        );
        let (rows, bytes): (i64, i64) = self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params![self.caller, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((rows.max(0) as u64, bytes.max(0) as u64))
    }

    /// The WHERE clause and its parameters: the caller's fragment (in parentheses, on its own
    /// lines) and, with `own_rows`, `AND _owner = caller`.
    fn filter(&self, filter: Option<&Filter>, own_rows: bool) -> Result<(String, Vec<Sql>), StoreError> {
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
        if own_rows {
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
