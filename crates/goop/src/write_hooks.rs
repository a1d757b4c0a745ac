//! Data hooks: the scripts' `before_*` and `after_*` handlers around the data protocol's table
//! writes, so a site validates what visitors write directly without a function per write.
//!
//! `before_insert(table, row)`, `before_update(table, change)`, `before_delete(table, target)`
//! run in script-name order with `goop.peer` the writer. One that raises an error or returns
//! `false, "reason"` (or Lua's `nil, "reason"`) refuses the write (`refused: reason`);
//! `before_insert` may return a replacement row, which the next handler and the write get. After
//! a write, `after_insert(table, row)` (with its `_id` and `_owner`), `after_update(table,
//! change)` and `after_delete(table, target)` (with `affected`) see what was done. `change` is
//! `{data, where, args}`, `target` is `{where, args}`. goop2's writes fire the same hooks
//! (`update`/`delete` by `id` as `where = "_id = ?"`, `update-where`, `delete-where`); an
//! `upsert` is refused while hooks watch inserts or updates. Writes a script makes with
//! `goop.db` or `goop.orm` do not fire hooks.

use std::ops::ControlFlow;

use goop_script::{Engine, Error, HandlerRun, Peer};
use serde_json::{json, Map, Value};

use crate::events::{verdict, Verdict};
use crate::node::services::DataStore;
use crate::store::data::MAX_ERROR_CHARS;
use crate::store::request::cut;

pub const BEFORE_INSERT: &str = "before_insert";
pub const BEFORE_UPDATE: &str = "before_update";
pub const BEFORE_DELETE: &str = "before_delete";
pub const AFTER_INSERT: &str = "after_insert";
pub const AFTER_UPDATE: &str = "after_update";
pub const AFTER_DELETE: &str = "after_delete";

/// Every data hook, for the engine's list of events.
pub const ALL: [&str; 6] = [BEFORE_INSERT, BEFORE_UPDATE, BEFORE_DELETE, AFTER_INSERT, AFTER_UPDATE, AFTER_DELETE];

/// Answers a table request from `caller`, with the hooks around a write.
pub fn answer(engine: Option<&Engine>, store: &dyn DataStore, caller: &Peer, mut request: Value) -> Value {
    let Some(engine) = engine else {
        return store.data_request(&caller.id, &request);
    };
    let (before, after) = match request.get("op").and_then(Value::as_str) {
        Some("insert") => (BEFORE_INSERT, AFTER_INSERT),
        Some("update" | "update-where") => (BEFORE_UPDATE, AFTER_UPDATE),
        Some("delete" | "delete-where") => (BEFORE_DELETE, AFTER_DELETE),
        // Insert or update, known only inside the store's transaction: no hook could judge it.
        Some("upsert")
            if [BEFORE_INSERT, BEFORE_UPDATE, AFTER_INSERT, AFTER_UPDATE].iter().any(|h| engine.handles(h)) =>
        {
            return json!({ "ok": false, "error": "refused: upsert is not available while data hooks watch inserts and updates; use insert or update" });
        }
        _ => return store.data_request(&caller.id, &request),
    };
    if !engine.handles(before) && !engine.handles(after) {
        return store.data_request(&caller.id, &request);
    }
    if let Err(e) = respell(store, &mut request) {
        return json!({ "ok": false, "error": cut(&e, MAX_ERROR_CHARS) });
    }
    let table = request.get("table").cloned().unwrap_or(Value::Null);
    if engine.handles(before) {
        if let Err(reason) = run_before(engine, before, caller, &table, &mut request) {
            return json!({ "ok": false, "error": format!("refused: {}", cut(&reason, MAX_ERROR_CHARS)) });
        }
    }
    let answer = store.data_request(&caller.id, &request);
    if answer.get("ok") == Some(&Value::Bool(true)) && engine.handles(after) {
        let mut done = subject(before, &request);
        if let Value::Object(fields) = &mut done {
            if before == BEFORE_INSERT {
                fields.insert("_id".into(), answer.get("id").cloned().unwrap_or(Value::Null));
                fields.insert("_owner".into(), Value::String(caller.id.clone()));
            } else {
                let affected = answer.get("affected").or_else(|| answer.get("data").and_then(|d| d.get("affected")));
                fields.insert("affected".into(), affected.cloned().unwrap_or(Value::Null));
            }
        }
        crate::events::fire(engine, after, caller, &[table, done]);
    }
    answer
}

/// The `before_*` chain; the reason when a handler refused. A replacement row from
/// `before_insert` goes into `request`.
fn run_before(engine: &Engine, event: &str, caller: &Peer, table: &Value, request: &mut Value) -> Result<(), String> {
    let mut refusal = None;
    let may_replace = event == BEFORE_INSERT;
    let next = |run: &HandlerRun, args: &mut Vec<Value>| {
        let said = match verdict(run) {
            Verdict::Failed(e) => reason(e),
            Verdict::No(said) => said.map_or_else(|| format!("{} said no", run.script), str::to_string),
            Verdict::Yes => {
                if let (true, Ok([row @ Value::Object(_), ..])) = (may_replace, run.result.as_deref()) {
                    args[1] = row.clone();
                }
                return ControlFlow::Continue(());
            }
        };
        refusal = Some(said);
        ControlFlow::Break(())
    };
    let args = vec![table.clone(), subject(event, request)];
    let fired = engine.fire_with(event, caller, args, next).map_err(|e| e.to_string())?;
    if let Some(reason) = refusal {
        return Err(reason);
    }
    // The row the last replacement left is the one written.
    if may_replace {
        let replaced = fired.runs.iter().rev().find_map(|run| match run.result.as_deref() {
            Ok([row @ Value::Object(_), ..]) => Some(row.clone()),
            _ => None,
        });
        if let (Some(row), Value::Object(fields)) = (replaced, request) {
            fields.insert("data".into(), row);
        }
    }
    Ok(())
}

/// Spells the request's table and `data` columns as the schema does: SQLite names are
/// case-insensitive, and a hook checking `tbl == "notes"` must not miss a write to `NOTES`.
fn respell(store: &dyn DataStore, request: &mut Value) -> Result<(), String> {
    let Some(table) = request.get("table").and_then(Value::as_str) else { return Ok(()) };
    // Not knowing how the schema spells it is no reason to let the write past the hooks.
    let Some((name, columns)) = store.spelling(table)? else { return Ok(()) };
    request["table"] = Value::String(name);
    if let Some(Value::Object(data)) = request.get_mut("data") {
        let mut spelled = Map::with_capacity(data.len());
        for (key, value) in std::mem::take(data) {
            let column = columns.iter().find(|c| c.eq_ignore_ascii_case(&key)).cloned().unwrap_or(key);
            if spelled.contains_key(&column) {
                return Err(format!("column {column} is given twice"));
            }
            spelled.insert(column, value);
        }
        *data = spelled;
    }
    Ok(())
}

/// What a hook sees of a write: the row for an insert, `{data, where, args}` for an update,
/// `{where, args}` for a delete (by `id`: `where` is `_id = ?`, `args` is `[id]`).
fn subject(event: &str, request: &Value) -> Value {
    let by_id = request.get("id").filter(|id| !id.is_null());
    let field = |name: &str| match (name, by_id) {
        ("where", Some(_)) => Value::String("_id = ?".into()),
        ("args", Some(id)) => Value::Array(vec![id.clone()]),
        _ => request.get(name).cloned().unwrap_or(Value::Null),
    };
    let mut out = Map::new();
    match event {
        BEFORE_INSERT => return field("data"),
        BEFORE_UPDATE => {
            out.insert("data".into(), field("data"));
        }
        _ => {}
    }
    out.insert("where".into(), field("where"));
    out.insert("args".into(), field("args"));
    Value::Object(out)
}

/// A refusing handler's error, without the `file.lua:LINE: ` Lua puts in front of it.
fn reason(error: &Error) -> String {
    match error {
        Error::Runtime { message, .. } => match message.split_once(": ") {
            Some((place, rest))
                if place.rsplit_once(':').is_some_and(|(file, line)| {
                    file.ends_with(".lua") && !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
                }) =>
            {
                rest.to_string()
            }
            _ => message.clone(),
        },
        other => other.to_string(),
    }
}
