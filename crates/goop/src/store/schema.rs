//! The database's shape: goop's internal tables, the site's `schema.sql`, and what user tables
//! and columns exist.
//!
//! ## How `schema.sql` is applied
//!
//! It runs at every start, and again when it changes, so it must be harmless to run again, even
//! though the spec's schema uses plain `CREATE TABLE`. The rule:
//!
//! 1. SQLite splits the file into statements (by running it once on a scratch in-memory
//!    database, which also checks it before the real one is touched), each with the line it
//!    starts on.
//! 2. A statement whose text (trimmed) was applied before, as recorded in `_goop_schema`, is
//!    skipped. So seed `INSERT`s run once; editing a statement makes it a new one.
//! 3. A new statement runs; if it creates an object that already exists, it is recorded and
//!    skipped with a warning. Any other failure is a [`SchemaError`] naming the file and the
//!    statement's line (`site/schema.sql:12: near "TABLEE": syntax error`), and nothing of this
//!    run stays applied (one transaction): the tables stay as the last good version left them.
//!
//! So `schema.sql` is additive: to change an existing table, append an `ALTER TABLE`.
//!
//! Both runs (scratch and real) are guarded ([`Rule::Schema`]): nothing that names another file
//! (ATTACH, DETACH, the directory pragmas; `VACUUM INTO` meets the zero-attached-databases
//! limit) is even prepared, and each statement stops after [`STATEMENT_TIME`]. A statement
//! with parameters (`?`, `:name`) is refused: nothing would fill them in.
//!
//! Afterwards every user table with an `_owner` column gets an index on it
//! (`_goop_owner_<table>`): own-rows reads and per-peer quotas look up a caller's rows by it.
//!
//! ## Beside `site/schemas/*.json`
//!
//! Those tables ([`super::schemas`]) are made first, and exist on the scratch database too, so
//! `schema.sql` may seed them or index them. It may not create one (`CREATE TABLE`, with or
//! without `IF NOT EXISTS`, or a virtual table of that name): a table is defined in one place,
//! and such a statement is an error on its line naming the schema file.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::{Batch, Connection, OptionalExtension, TransactionBehavior};

use super::error::{SchemaError, StoreError};
use super::guard::{self, Rule};
use super::schemas::{apply, Schemas};

/// The schema file, in the peer folder.
pub const FILE: &str = "site/schema.sql";
/// Largest `schema.sql` accepted.
pub const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;
/// Longest table or column name the data protocol accepts.
pub const MAX_NAME_LEN: usize = 64;
/// Time one `schema.sql` statement may run.
pub const STATEMENT_TIME: Duration = Duration::from_secs(10);
/// Columns the system stamps on every user table.
pub const SYSTEM_COLUMNS: [&str; 4] = ["_id", "_owner", "_created_at", "_updated_at"];
/// goop2's fifth system column, on tables from `site/schemas/*.json`: the row owner's email
/// (empty when unknown).
pub const OWNER_EMAIL: &str = "_owner_email";

/// A column the system writes, never a caller ([`SYSTEM_COLUMNS`] and [`OWNER_EMAIL`]); it
/// does not count toward a peer's quota.
pub fn is_system_column(name: &str) -> bool {
    SYSTEM_COLUMNS.iter().chain([&OWNER_EMAIL]).any(|s| s.eq_ignore_ascii_case(name))
}

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

/// Creates goop's internal tables.
pub fn internal_tables(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(INTERNAL_TABLES)?;
    conn.execute_batch(apply::REGISTRY)?;
    Ok(())
}

/// Creates goop's internal tables, then applies [`FILE`] of the peer folder `dir` if it exists,
/// beside the tables of `schemas` (already made). A fault of the file is [`StoreError::Schema`].
pub fn setup(conn: &mut Connection, dir: &Path, schemas: &Schemas) -> Result<(), StoreError> {
    internal_tables(conn)?;
    let path = dir.join(FILE);
    let unreadable = |e: std::io::Error| StoreError::from(SchemaError::Read { file: FILE, reason: e.to_string() });
    let text = match std::fs::metadata(&path) {
        Ok(m) if m.len() > MAX_SCHEMA_BYTES => {
            return Err(SchemaError::TooLarge { file: FILE, max: MAX_SCHEMA_BYTES }.into())
        }
        Ok(_) => std::fs::read_to_string(&path).map_err(unreadable)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unreadable(e)),
    };
    let prelude: Vec<String> = schemas.tables().map(apply::create_sql).collect();
    let reserved = apply::made_from_files(conn)?;
    let statements = split(&text, &prelude, &reserved)?;
    // IMMEDIATE: two processes starting on one folder apply it one after the other.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for Statement { text, line } in statements {
        let done: Option<i64> =
            tx.query_row("SELECT 1 FROM _goop_schema WHERE statement = ?", [&text], |r| r.get(0)).optional()?;
        if done.is_some() {
            continue;
        }
        let ran = guarded(&tx, line, |conn| conn.prepare(&text).and_then(|mut s| step_through(&mut s)));
        match ran {
            Err(StoreError::Schema(SchemaError::Statement { message, .. })) if message.contains("already exists") => {
                tracing::warn!("{FILE}:{line}: skipped, {message}");
            }
            other => other?,
        }
        tx.execute("INSERT INTO _goop_schema (statement) VALUES (?)", [&text])?;
    }
    index_owners(&tx)?;
    tx.commit()?;
    Ok(())
}

/// A statement of `schema.sql`: its text, trimmed, without the comments above it (its identity
/// in `_goop_schema`), and the line it starts on.
#[derive(Debug, PartialEq, Eq)]
struct Statement {
    text: String,
    line: usize,
}

/// Runs `work` for the statement starting on `line` under [`Rule::Schema`] and
/// [`STATEMENT_TIME`]; every error names the line.
fn guarded(
    conn: &Connection,
    line: usize,
    work: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    // The guard sets its own busy timeout from the deadline; the statement waits no longer.
    match guard::run(conn, Rule::Schema, Instant::now() + STATEMENT_TIME, |conn, _| work(conn).map_err(StoreError::Sql))
    {
        Ok(()) => Ok(()),
        Err(e) => {
            let message = match e {
                StoreError::Timeout => format!("stopped: ran past {} s", STATEMENT_TIME.as_secs()),
                other => other.to_string(),
            };
            Err(SchemaError::Statement { file: FILE, line, message }.into())
        }
    }
}

/// An index on `_owner` for every user table that has one (virtual tables cannot have one).
pub(crate) fn index_owners(conn: &Connection) -> Result<(), StoreError> {
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

/// The statements of `sql` as SQLite splits them, with their lines. Runs them (guarded) on a
/// scratch in-memory database, after the `prelude` (goop's own `CREATE TABLE`s of the schema
/// files' tables), so later statements can refer to earlier ones. A statement creating one of
/// the `reserved` tables (name, file) is an error.
fn split(sql: &str, prelude: &[String], reserved: &[(String, Option<String>)]) -> Result<Vec<Statement>, StoreError> {
    let scratch = Connection::open_in_memory()?;
    scratch.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    for create in prelude {
        scratch.execute_batch(create)?;
    }
    let mut batch = Batch::new(&scratch, sql);
    let mut lines = Lines::default();
    let mut out = Vec::new();
    // Where the last statement ended.
    let mut end = 0;
    loop {
        // The next statement starts at the first token after the last one; an error while
        // preparing it (SQLite could not parse it, or the authorizer refused it) is on its line.
        let start = next_statement(sql, end);
        let line = lines.at(sql, start);
        let is_create = sql[start..].get(..6).is_some_and(|word| word.eq_ignore_ascii_case("create"));
        if is_create && !reserved.is_empty() {
            for created in created_tables(&scratch, &sql[start..]) {
                if let Some((name, file)) = reserved.iter().find(|(name, _)| name.eq_ignore_ascii_case(&created)) {
                    let file = file.as_deref().unwrap_or(super::schemas::folder::DIR);
                    let message = format!(
                        "creates table {name}, which {file} defines; a table is defined in one place: remove \
                         it from one of them"
                    );
                    return Err(SchemaError::Statement { file: FILE, line, message }.into());
                }
            }
        }
        let mut next = None;
        // Preparing runs the authorizer, so it is guarded too.
        guarded(&scratch, line, |_| {
            next = batch.next()?;
            Ok(())
        })?;
        let Some(mut stmt) = next else { return Ok(out) };
        if stmt.parameter_count() > 0 {
            let message = "has parameters (?, :name), and nothing fills them in".to_string();
            return Err(SchemaError::Statement { file: FILE, line, message }.into());
        }
        // Without parameters this is the statement's own text, from where SQLite began reading
        // it: spaces, comments and empty statements before it included.
        let raw = stmt.expanded_sql().unwrap_or_default();
        let body = &raw[next_statement(&raw, 0)..];
        end = match sql[start..].starts_with(body) {
            true => start + body.len(),
            false => sql[end..].find(&raw).map_or(start, |at| end + at + raw.len()),
        };
        // Its identity, as it always was: without the comments above it.
        let text = without_leading_comments(&raw).trim_end_matches(';').trim_end().to_string();
        guarded(&scratch, line, |_| step_through(&mut stmt))?;
        out.push(Statement { text, line });
    }
}

/// The tables the first statement of `sql` would create, as SQLite's authorizer names them
/// while preparing it (before it checks whether they exist, so `IF NOT EXISTS` is seen too).
/// Nothing runs.
fn created_tables(conn: &Connection, sql: &str) -> Vec<String> {
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&created);
    let record = move |ctx: AuthContext<'_>| {
        if let AuthAction::CreateTable { table_name } | AuthAction::CreateVtable { table_name, .. } = ctx.action {
            seen.lock().unwrap_or_else(PoisonError::into_inner).push(table_name.to_string());
        }
        Authorization::Allow
    };
    if conn.authorizer(Some(record)).is_ok() {
        // A batch prepares only its first statement.
        let _ = Batch::new(conn, sql).next();
        let _ = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    }
    let names = created.lock().unwrap_or_else(PoisonError::into_inner).clone();
    names
}

/// Where the statement after byte `at` of `sql` starts: past spaces, comments and empty
/// statements (`;`).
fn next_statement(sql: &str, mut at: usize) -> usize {
    loop {
        at = sql.len() - without_leading_comments(&sql[at..]).len();
        match sql[at..].starts_with(';') {
            true => at += 1,
            false => return at,
        }
    }
}

/// Line numbers of byte offsets that only grow, counted once through the text.
#[derive(Default)]
struct Lines {
    counted: usize,
    line: usize,
}

impl Lines {
    /// The line (from 1) of byte `at`, at or after every offset asked before.
    fn at(&mut self, text: &str, at: usize) -> usize {
        let at = at.max(self.counted);
        self.line += text.as_bytes()[self.counted..at].iter().filter(|&&b| b == b'\n').count();
        self.counted = at;
        self.line + 1
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

    fn statement(line: usize, text: &str) -> Statement {
        Statement { text: text.into(), line }
    }

    #[test]
    fn statements_are_split_by_sqlite_with_their_lines() {
        let sql = "-- games\nCREATE TABLE a (x TEXT DEFAULT ';');\n/* seed */ INSERT INTO a VALUES ('--');\n\
                   ;;\n\nCREATE TRIGGER t AFTER INSERT ON a\nBEGIN DELETE FROM a WHERE 0; END;\n-- trailing";
        assert_eq!(
            split(sql, &[], &[]).map_err(|e| e.to_string()),
            Ok(vec![
                statement(2, "CREATE TABLE a (x TEXT DEFAULT ';')"),
                statement(3, "INSERT INTO a VALUES ('--')"),
                // Empty statements before one are part of its text (its identity since the start).
                statement(6, ";;\n\nCREATE TRIGGER t AFTER INSERT ON a\nBEGIN DELETE FROM a WHERE 0; END"),
            ])
        );
    }

    #[test]
    fn an_error_names_the_line_its_statement_starts_on() {
        let error = |sql: &str| split(sql, &[], &[]).map(|_| ()).map_err(|e| e.to_string());
        let sql = "CREATE TABLE a (x);\n\n-- next; with a semicolon\nCREATE TABLEE b (y);\n";
        assert_eq!(error(sql), Err("site/schema.sql:4: near \"TABLEE\": syntax error".into()));
        let sql = "CREATE TABLE a (x);;\nINSERT INTO a VALUES ('a;\nb');\n\nINSERT INTO\n  nowhere VALUES (1);";
        assert_eq!(error(sql), Err("site/schema.sql:5: no such table: nowhere".into()));
        let sql = "CREATE TABLE a (x);\nINSERT INTO a VALUES (1), (1);\nCREATE UNIQUE INDEX u ON a (x);";
        assert_eq!(error(sql), Err("site/schema.sql:3: UNIQUE constraint failed: a.x".into()));
        let sql = "CREATE TABLE a (x);\n\nINSERT INTO a VALUES (?);";
        assert_eq!(error(sql), Err("site/schema.sql:3: has parameters (?, :name), and nothing fills them in".into()));
    }
}
