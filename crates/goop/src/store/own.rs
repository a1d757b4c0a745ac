//! `own` access made structural: a caller restricted to their own rows reads a table only
//! through a per-connection view of those rows.
//!
//! For table `t` the view is
//! `CREATE TEMP VIEW "_goop_own_t" AS SELECT <columns> FROM main."t" WHERE "_owner" = goop_caller() LIMIT -1 OFFSET 0`,
//! and the caller's `where` runs as `SELECT … FROM temp."_goop_own_t" AS "t" WHERE (…)`. The
//! authorizer ([`super::guard::Rule::Table`]'s `through`) refuses every read of `t` that SQLite
//! does not attribute to that view (it names the view as the accessor of the reads it makes), so
//! a `(…) IN t`, an `IN main.t` or a table function cannot reach other rows. The `LIMIT`
//! keeps SQLite from flattening the view into the outer query or pushing the caller's `where`
//! down into it: the `where` is evaluated only on rows the view produced, so even an error or a
//! slow function in it says nothing about anyone else's rows.
//!
//! `goop_caller()` is a SQL function answering the caller the current thread is serving (set
//! with [`serve`] around a request); elsewhere it is NULL, which matches no row.

use std::cell::RefCell;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension};

use super::error::StoreError;

thread_local! {
    static CALLER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Adds `goop_caller()` to a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    // Not deterministic: the answer changes between requests on one connection.
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("goop_caller", 0, flags, |_| Ok(CALLER.with(|c| c.borrow().clone())))
}

/// While alive, `goop_caller()` on this thread answers `caller`.
pub struct Serving(());

/// Sets the caller this thread serves until the returned value is dropped.
pub fn serve(caller: &str) -> Serving {
    CALLER.with(|c| *c.borrow_mut() = Some(caller.to_string()));
    Serving(())
}

impl Drop for Serving {
    fn drop(&mut self) {
        CALLER.with(|c| *c.borrow_mut() = None);
    }
}

/// The name of `table`'s own-rows view.
pub fn view_name(table: &str) -> String {
    format!("_goop_own_{table}")
}

/// Makes sure this connection has `table`'s view with exactly `columns` (quoted), recreating
/// it when the table's columns changed; returns its name. Runs goop's SQL only, unguarded.
pub fn view(conn: &Connection, table: &str, columns: &[String]) -> Result<String, StoreError> {
    let name = view_name(table);
    let body = format!(
        "SELECT {} FROM main.\"{table}\" WHERE \"_owner\" = goop_caller() LIMIT -1 OFFSET 0",
        columns.join(", ")
    );
    let existing: Option<String> = conn
        .prepare_cached("SELECT sql FROM temp.sqlite_schema WHERE type = 'view' AND name = ?")?
        .query_row([&name], |r| r.get(0))
        .optional()?;
    if existing.as_deref().is_some_and(|sql| sql.ends_with(&body)) {
        return Ok(name);
    }
    conn.execute_batch(&format!("DROP VIEW IF EXISTS temp.\"{name}\"; CREATE TEMP VIEW \"{name}\" AS {body}"))?;
    Ok(name)
}
