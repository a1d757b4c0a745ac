//! The database's shape: goop's internal tables, the site's `schema.sql`, and what user tables
//! and columns exist.
//!
//! ## How `schema.sql` is applied
//!
//! It runs at every start, so it must be harmless to run again, even though the spec's schema
//! uses plain `CREATE TABLE`. The rule:
//!
//! 1. SQLite splits the file into statements (by running it once on a scratch in-memory
//!    database, which also checks it before the real one is touched).
//! 2. A statement whose text (trimmed) was applied before, as recorded in `_goop_schema`, is
//!    skipped. So seed `INSERT`s run once; editing a statement makes it a new one.
//! 3. A new statement runs; if it creates an object that already exists, it is recorded and
//!    skipped with a warning. Any other failure stops the start, and nothing of this run stays
//!    applied (one transaction).
//!
//! So `schema.sql` is additive: to change an existing table, append an `ALTER TABLE`.
//!
//! Both runs (scratch and real) are guarded ([`Rule::Schema`]): nothing that names another file
//! (ATTACH, DETACH, the directory pragmas; `VACUUM INTO` meets the zero-attached-databases
//! limit) is even prepared, and each statement stops after [`STATEMENT_TIME`], naming itself.
//!
//! Afterwards every user table with an `_owner` column gets an index on it
//! (`_goop_owner_<table>`): own-rows reads and per-peer quotas look up a caller's rows by it.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::limits::Limit;
use rusqlite::{Batch, Connection, OptionalExtension, TransactionBehavior};

use super::error::StoreError;
use super::guard::{self, Rule};

/// Largest `schema.sql` accepted.
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;
/// Longest table or column name the data protocol accepts.
pub const MAX_NAME_LEN: usize = 64;
/// Time one `schema.sql` statement may run.
pub const STATEMENT_TIME: Duration = Duration::from_secs(10);
/// Columns the system stamps on every user table.
pub const SYSTEM_COLUMNS: [&str; 4] = ["_id", "_owner", "_created_at", "_updated_at"];

const INTERNAL_TABLES: &str = "
CREATE TABLE IF NOT EXISTS _goop_schema (
    statement  TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS _goop_inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    from_peer   TEXT NOT NULL,
    from_label  TEXT NOT NULL,
    content     TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS _goop_inbox_sender ON _goop_inbox (from_peer, id);";

/// Tables no caller may name: goop's own, SQLite's, and SQLite's pragma table functions
/// (`pragma_table_info`, `pragma_database_list`...), which describe the database.
pub fn is_internal(table: &str) -> bool {
    let lower = table.to_ascii_lowercase();
    lower.starts_with("_goop_") || lower.starts_with("sqlite_") || lower.starts_with("pragma_")
}

/// A plain SQL identifier: letters, digits and `_`, not starting with a digit.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Creates goop's internal tables, then applies `schema` (the file's path) if it exists.
pub fn setup(conn: &mut Connection, schema: &Path) -> Result<(), StoreError> {
    conn.execute_batch(INTERNAL_TABLES)?;
    let text = match std::fs::metadata(schema) {
        Ok(m) if m.len() > MAX_SCHEMA_BYTES => {
            return Err(StoreError::FileTooLarge { path: schema.into(), max: MAX_SCHEMA_BYTES })
        }
        Ok(_) => std::fs::read_to_string(schema).map_err(|source| StoreError::Read { path: schema.into(), source })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Read { path: schema.into(), source }),
    };
    let statements = split(&text, schema)?;
    // IMMEDIATE: two processes starting on one folder apply it one after the other.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for statement in statements {
        let done: Option<i64> =
            tx.query_row("SELECT 1 FROM _goop_schema WHERE statement = ?", [&statement], |r| r.get(0)).optional()?;
        if done.is_some() {
            continue;
        }
        let ran = guarded(&tx, &statement, schema, |conn| {
            conn.prepare(&statement).and_then(|mut s| step_through(&mut s)).map_err(StoreError::Sql)
        });
        match ran {
            Err(StoreError::Schema { source, .. }) if source.to_string().contains("already exists") => {
                tracing::warn!("{}: skipped, object already exists: {statement}", schema.display());
            }
            other => other?,
        }
        tx.execute("INSERT INTO _goop_schema (statement) VALUES (?)", [&statement])?;
    }
    index_owners(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Runs `work` for `statement` of `schema` under [`Rule::Schema`] and [`STATEMENT_TIME`];
/// every error names the statement.
fn guarded(
    conn: &Connection,
    statement: &str,
    schema: &Path,
    work: impl FnOnce(&Connection) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let stopped = |why: String| StoreError::SchemaStopped { path: schema.into(), statement: statement.into(), why };
    // The guard sets its own busy timeout from the deadline; the statement waits no longer.
    match guard::run(conn, Rule::Schema, Instant::now() + STATEMENT_TIME, |conn, _| work(conn)) {
        Ok(()) => Ok(()),
        Err(StoreError::Timeout) => Err(stopped(format!("ran past {} s", STATEMENT_TIME.as_secs()))),
        Err(StoreError::Denied(what)) => Err(stopped(format!("not allowed: {what}"))),
        Err(StoreError::Sql(source)) => {
            Err(StoreError::Schema { path: schema.into(), statement: statement.into(), source })
        }
        Err(other) => Err(stopped(other.to_string())),
    }
}

/// An index on `_owner` for every user table that has one (virtual tables cannot have one).
fn index_owners(conn: &Connection) -> Result<(), StoreError> {
    let mut virtual_tables =
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")?;
    let virtual_tables = virtual_tables.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    for name in user_tables(conn)?.into_iter().filter(|t| !virtual_tables.contains(t)) {
        let Some((name, columns)) = table(conn, &name)? else { continue };
        if columns.iter().any(|c| c.name.eq_ignore_ascii_case("_owner")) {
            conn.execute(&format!("CREATE INDEX IF NOT EXISTS \"_goop_owner_{name}\" ON \"{name}\" (\"_owner\")"), [])?;
        }
    }
    Ok(())
}

/// The statements of `sql` as SQLite splits them, trimmed, without comments above them. Runs
/// them (guarded) on a scratch in-memory database, so later statements can refer to earlier ones.
fn split(sql: &str, schema: &Path) -> Result<Vec<String>, StoreError> {
    let scratch = Connection::open_in_memory()?;
    scratch.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    let mut batch = Batch::new(&scratch, sql);
    let mut out = Vec::new();
    loop {
        // Preparing runs the authorizer, so it is guarded too.
        let mut next = None;
        let place = after(sql, &out);
        guarded(&scratch, &place, schema, |_| {
            next = batch.next().map_err(StoreError::Sql)?;
            Ok(())
        })?;
        let Some(mut stmt) = next else { return Ok(out) };
        let text = stmt.expanded_sql().unwrap_or_default();
        let text = without_leading_comments(&text).trim_end_matches(';').trim_end().to_string();
        guarded(&scratch, &text, schema, |_| step_through(&mut stmt).map_err(StoreError::Sql))?;
        out.push(text);
    }
}

/// A statement's text starts where the previous one ended, comments above it included; they
/// are not part of its identity.
fn without_leading_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("--") {
            text = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return text;
        }
    }
}

/// Runs a statement to its end. Rows it returns (a stray SELECT) are ignored, as in a batch.
pub fn step_through(stmt: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()> {
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}

/// The text of the statement after the `done` ones, for an error at its preparation (SQLite
/// could not parse it, or the authorizer refused it): what follows the last one done, or a
/// description of its place if that cannot be found.
fn after(sql: &str, done: &[String]) -> String {
    let mut rest = Some(sql);
    for text in done {
        rest = rest.and_then(|r| r.find(text.as_str()).map(|at| &r[at + text.len()..]));
    }
    let next = rest.map(|r| without_leading_comments(r.trim_start().trim_start_matches(';')).trim());
    match (next, done.last()) {
        (Some(next), _) if !next.is_empty() => next.to_string(),
        (_, Some(last)) => format!("(the one after {last:?})"),
        (_, None) => "(the first)".into(),
    }
}

/// A column of a user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The declared type, as written (may be empty).
    pub decl_type: String,
}

/// User tables (not internal) whose names are plain identifiers, in name order.
pub fn user_tables(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(names.into_iter().filter(|n| is_identifier(n) && !is_internal(n)).collect())
}

/// The canonical name and columns of user table `name` (matched without regard to case), or
/// `None` if there is no such user table.
pub fn table(conn: &Connection, name: &str) -> Result<Option<(String, Vec<Column>)>, StoreError> {
    if !is_identifier(name) || is_internal(name) {
        return Ok(None);
    }
    let canonical: Option<String> = conn
        .prepare_cached("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let Some(canonical) = canonical else { return Ok(None) };
    let mut stmt = conn.prepare_cached("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")?;
    let columns = stmt
        .query_map([&canonical], |r| Ok(Column { name: r.get(0)?, decl_type: r.get(1)? }))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((canonical, columns)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_by_sqlite() {
        let sql = "-- games\nCREATE TABLE a (x TEXT DEFAULT ';');\n/* seed */ INSERT INTO a VALUES ('--');\n\
                   CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM a WHERE 0; END;\n-- trailing";
        let split = split(sql, Path::new("schema.sql")).map_err(|e| e.to_string());
        assert_eq!(
            split,
            Ok(vec![
                "CREATE TABLE a (x TEXT DEFAULT ';')".to_string(),
                "INSERT INTO a VALUES ('--')".to_string(),
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM a WHERE 0; END".to_string(),
            ])
        );
    }
}
