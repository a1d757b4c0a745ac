//! The fence around SQL that others wrote: a SQLite authorizer that sees every table, column
//! and action of a statement while it is prepared, and a progress handler that stops it at a
//! deadline.
//!
//! Looking at the first word of a statement is not enough (`WITH x AS (SELECT 1) DELETE FROM t`
//! starts like a read), so the rules below name what a statement may touch instead.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use super::error::StoreError;
use super::schema::is_internal;

/// What a guarded statement may do.
#[derive(Debug, Clone)]
pub enum Rule {
    /// A data-protocol statement: read the columns of `table` and call SQL functions; write
    /// only `table`, only as `write` says. No other table, no subquery (with `own` access, a
    /// subquery over the same table would be an oracle on other callers' rows), no recursion.
    Table { table: String, write: Option<Write> },
    /// `goop.db.query` / `scalar`: read user tables, call SQL functions, recurse.
    ScriptRead,
    /// `goop.db.exec`: like `ScriptRead`, plus insert, update and delete rows of user tables.
    ScriptWrite,
}

/// The one kind of write a data-protocol statement makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Insert,
    Update,
    Delete,
}

/// SQL functions no caller may use, whatever the rule.
const DENIED_FUNCTIONS: [&str; 2] = ["load_extension", "fts3_tokenizer"];

/// The busy timeout a connection keeps outside guarded work.
const IDLE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many SQLite VM steps run between two deadline checks.
const PROGRESS_STEPS: i32 = 1000;

/// Runs `work` on `conn` under `rule`, stopped at `deadline`.
///
/// The authorizer stays installed while `work` runs, because SQLite re-prepares a statement
/// (and asks again) when the schema changed under it.
pub fn run<T>(
    conn: &Connection,
    rule: Rule,
    deadline: Instant,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let refused: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = Arc::clone(&refused);
    let mut selects = 0;
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match judge(&rule, &ctx, &mut selects) {
        Ok(()) => Authorization::Allow,
        Err(what) => {
            seen.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(what);
            Authorization::Deny
        }
    }))?;
    conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline))?;
    // Waiting for the write lock counts against the same deadline.
    conn.busy_timeout(deadline.saturating_duration_since(Instant::now()))?;

    let result = work(conn);

    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
    conn.progress_handler(0, None::<fn() -> bool>)?;
    conn.busy_timeout(IDLE_BUSY_TIMEOUT)?;
    result.map_err(|e| match e {
        StoreError::Sql(sql) => {
            StoreError::from_sql(sql, refused.lock().unwrap_or_else(PoisonError::into_inner).take())
        }
        other => other,
    })
}

/// `Ok` if `rule` lets the statement do this, else what was refused, in words. `selects`
/// counts the SELECTs seen so far in the statement.
fn judge(rule: &Rule, ctx: &AuthContext<'_>, selects: &mut u32) -> Result<(), String> {
    // Only the main database: `temp` objects and attached files are out of reach.
    if let Some(db) = ctx.database_name {
        if db != "main" {
            return Err(format!("database {db}"));
        }
    }
    match (rule, ctx.action) {
        (Rule::Table { write, .. }, AuthAction::Select) => {
            // A query is one SELECT; a write has none of its own.
            *selects += 1;
            let allowed = if write.is_none() { 1 } else { 0 };
            if *selects > allowed {
                Err("subqueries".into())
            } else {
                Ok(())
            }
        }
        (_, AuthAction::Select) => Ok(()),
        (_, AuthAction::Function { function_name }) => {
            if DENIED_FUNCTIONS.iter().any(|f| f.eq_ignore_ascii_case(function_name)) {
                Err(format!("function {function_name}"))
            } else {
                Ok(())
            }
        }
        (Rule::Table { table, write }, action) => table_rule(table, *write, action),
        (Rule::ScriptRead, AuthAction::Read { table_name, .. }) => user_table(table_name, "reading"),
        (Rule::ScriptRead | Rule::ScriptWrite, AuthAction::Recursive) => Ok(()),
        (Rule::ScriptWrite, AuthAction::Read { table_name, .. }) => user_table(table_name, "reading"),
        (Rule::ScriptWrite, AuthAction::Insert { table_name }) => user_table(table_name, "inserting into"),
        (Rule::ScriptWrite, AuthAction::Update { table_name, .. }) => user_table(table_name, "updating"),
        (Rule::ScriptWrite, AuthAction::Delete { table_name }) => user_table(table_name, "deleting from"),
        (_, action) => Err(describe(action)),
    }
}

fn table_rule(table: &str, write: Option<Write>, action: AuthAction<'_>) -> Result<(), String> {
    let (name, wanted, verb) = match action {
        AuthAction::Read { table_name, .. } => (table_name, None, "reading"),
        AuthAction::Insert { table_name } => (table_name, Some(Write::Insert), "inserting into"),
        AuthAction::Update { table_name, .. } => (table_name, Some(Write::Update), "updating"),
        AuthAction::Delete { table_name } => (table_name, Some(Write::Delete), "deleting from"),
        other => return Err(describe(other)),
    };
    if !name.eq_ignore_ascii_case(table) {
        return Err(format!("{verb} table {name}"));
    }
    match wanted {
        Some(w) if Some(w) != write => Err(format!("{verb} table {name}")),
        _ => Ok(()),
    }
}

fn user_table(name: &str, verb: &str) -> Result<(), String> {
    if is_internal(name) {
        Err(format!("{verb} internal table {name}"))
    } else {
        Ok(())
    }
}

/// Words for a refused action, e.g. "PRAGMA journal_mode" or "DROP TABLE games".
fn describe(action: AuthAction<'_>) -> String {
    match action {
        AuthAction::Pragma { pragma_name, .. } => format!("PRAGMA {pragma_name}"),
        AuthAction::Attach { .. } => "ATTACH".into(),
        AuthAction::Detach { .. } => "DETACH".into(),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => "transactions".into(),
        AuthAction::Recursive => "recursive queries".into(),
        AuthAction::CreateTable { table_name } | AuthAction::CreateTempTable { table_name } => {
            format!("CREATE TABLE {table_name}")
        }
        AuthAction::DropTable { table_name } | AuthAction::DropTempTable { table_name } => {
            format!("DROP TABLE {table_name}")
        }
        AuthAction::AlterTable { table_name, .. } => format!("ALTER TABLE {table_name}"),
        AuthAction::Read { table_name, .. } => format!("reading table {table_name}"),
        AuthAction::Insert { table_name } => format!("inserting into table {table_name}"),
        AuthAction::Update { table_name, .. } => format!("updating table {table_name}"),
        AuthAction::Delete { table_name } => format!("deleting from table {table_name}"),
        other => format!("schema or database change ({other:?})"),
    }
}
