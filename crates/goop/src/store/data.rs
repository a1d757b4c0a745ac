//! The data protocol's table operations for a caller identified by peer ID, under the tables'
//! access policies, answered through the operations layer ([`super::orm`]).
//!
//! Answers (today's ops keep their shapes; goop2's ops answer in `data`, as goop2 does):
//! - `tables` `{"ok":true,"tables":[…]}`, `describe` `{"ok":true,"columns":[{"name","type"}…]}`;
//! - `query` `{"ok":true,"rows":[{…}…]}` (plus `"truncated":true` when the 1 MB cap cut rows off);
//! - `insert` `{"ok":true,"id":N}`; `update`/`delete` by `where` `{"ok":true,"affected":N}`, by
//!   `id` also `"data":{"status":"updated"|"deleted"}`;
//! - `query-one` `{"ok":true,"data":{…}|null}`, `exists` `"data":{"exists":bool}`, `count`
//!   `"data":{"count":N}`, `pluck`/`distinct` `"data":[values]`, `aggregate` `"data":[{…}]`
//!   (those three also `"truncated":true` past 1000 rows or 1 MB), `update-where`/`delete-where`
//!   `"data":{"affected":N}`, `upsert` `"data":{"status":"ok","id":N}`, `orm-schema`
//!   `"data":{"table":{name,system_key,columns,access}…}`, `role`
//!   `"data":{"role":"owner"|"visitor","permissions":{"read":bool,…}}`;
//! - or `{"ok":false,"error":"…"}`.
//!
//! A remote caller's requests are budgeted ([`super::budget`], [`super::policy`]): at most
//! [`MAX_QUERIES_PER_PEER`](super::budget::MAX_QUERIES_PER_PEER) at once, writes per minute,
//! [`MAX_ROW_BYTES`] of data per write, and a quota of rows and bytes they own per table,
//! checked inside the write's transaction. The owner is not budgeted.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::error::StoreError;
use super::orm::describe;
use super::orm::read::{Found, Overflow, Read};
use super::orm::write::{Input, Row};
use super::orm::{Actor, Session};
use super::policy::{Decision, Op};
use super::request::{self, cut, Answer, Request};
use super::{own, schema, value, Store};

pub use super::orm::write::{MAX_ROW_BYTES, MAX_WRITE_ROWS};

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
        let actor = if caller == self.inner.owner { Actor::Unrestricted } else { Actor::Remote };
        // One peer's heavy queries hold only a few of the pool's connections.
        let _running =
            if actor == Actor::Unrestricted { None } else { Some(self.inner.budgets.query(caller, deadline)?) };
        let conn = self.inner.pool.get(deadline)?;
        let _serving = own::serve(caller);
        let session = Session { store: self, conn: &conn, caller, actor, deadline };
        let policies = self.policies();
        match request {
            Request::Tables => {
                let readable = |t: &String| {
                    !matches!(policies.decide(t, Op::Read, actor == Actor::Unrestricted), Decision::Refused(_))
                };
                let visible: Vec<String> = schema::user_tables(&conn)?.into_iter().filter(readable).collect();
                Ok(json!({ "ok": true, "tables": visible }))
            }
            Request::Describe { table } => {
                let target = session.target(&table, Op::Read)?;
                let columns: Vec<Value> =
                    target.columns.iter().map(|c| json!({ "name": c.name, "type": c.decl_type })).collect();
                Ok(json!({ "ok": true, "columns": columns }))
            }
            Request::OrmSchema => {
                let tables: Map<String, Value> = describe::all(&conn, &policies, &self.schemas_as_read(), actor)?
                    .into_iter()
                    .map(|t| (t.name.clone(), serde_json::to_value(t).unwrap_or(Value::Null)))
                    .collect();
                Ok(json!({ "ok": true, "data": tables }))
            }
            Request::Role { table } => {
                let Some(found) = describe::describe(&conn, &policies, &self.schemas_as_read(), &table)? else {
                    return Err(StoreError::Request(format!("no table {:?}", request::short(&table))));
                };
                let role = if actor == Actor::Unrestricted { "owner" } else { "visitor" };
                let permissions = describe::permissions(&policies, &found.name, actor);
                Ok(json!({ "ok": true, "data": { "role": role, "permissions": permissions } }))
            }
            Request::Read { table, read, query } => {
                let found = session.read(&table, &read, &query, Overflow::Truncate)?;
                Ok(read_answer(&read, found))
            }
            Request::Insert { table, data } => Ok(json!({ "ok": true, "id": session.insert(&table, &row(&data)?)? })),
            Request::Update { table, data, filter, answer } => {
                let affected = session.update(&table, &row(&data)?, &filter)?;
                write_answer(answer, affected, "updated", actor)
            }
            Request::Delete { table, filter, answer } => {
                let affected = session.delete(&table, &filter)?;
                write_answer(answer, affected, "deleted", actor)
            }
            Request::Upsert { table, key, data } => {
                let id = session.upsert(&table, &key, &row(&data)?)?;
                Ok(json!({ "ok": true, "data": { "status": "ok", "id": id } }))
            }
        }
    }
}

/// `data` as a row to write: JSON scalars only.
fn row(data: &Map<String, Value>) -> Result<Row, StoreError> {
    data.iter().map(|(k, v)| Ok((k.clone(), Input::Value(value::from_json(v, &format!("data.{k}"))?)))).collect()
}

fn write_answer(answer: Answer, affected: usize, status: &str, actor: Actor) -> Result<Value, StoreError> {
    Ok(match answer {
        Answer::Affected => json!({ "ok": true, "affected": affected }),
        Answer::ById if affected == 0 && actor == Actor::Remote => {
            return Err(StoreError::Request("row not found or not owned by caller".into()))
        }
        Answer::ById => json!({ "ok": true, "affected": affected, "data": { "status": status } }),
        Answer::Where => json!({ "ok": true, "data": { "affected": affected } }),
    })
}

/// A read's answer in the protocol's shape for its op.
fn read_answer(read: &Read, found: Found) -> Value {
    let truncated = found.truncated;
    let column = |found: Found| -> Vec<Value> {
        found.rows.into_iter().map(|r| r.into_iter().next().map_or(Value::Null, value::to_json)).collect()
    };
    let mut answer = match read {
        Read::Rows => json!({ "ok": true, "rows": objects(found) }),
        Read::One => json!({ "ok": true, "data": objects(found).into_iter().next() }),
        Read::Count => {
            let n = found.scalar().and_then(|v| value::to_json(v.clone()).as_i64()).unwrap_or(0);
            json!({ "ok": true, "data": { "count": n } })
        }
        Read::Exists => json!({ "ok": true, "data": { "exists": !found.rows.is_empty() } }),
        Read::Pluck(_) | Read::Distinct(_) => json!({ "ok": true, "data": column(found) }),
        Read::Aggregate { .. } => json!({ "ok": true, "data": objects(found) }),
    };
    if truncated {
        answer["truncated"] = Value::Bool(true);
    }
    answer
}

/// Rows as JSON objects.
fn objects(found: Found) -> Vec<Value> {
    let Found { columns, rows, .. } = found;
    rows.into_iter()
        .map(|row| Value::Object(columns.iter().cloned().zip(row.into_iter().map(value::to_json)).collect()))
        .collect()
}
