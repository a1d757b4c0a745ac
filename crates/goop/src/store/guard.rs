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
    /// only `table`, only as `write` says. No other table, no recursion, no function that
    /// tells what the connection did before. With `through`, `table` may be read only by
    /// that temp view of the caller's rows ([`super::own`]), and the view itself is readable.
    Table { table: String, write: Option<Write>, through: Option<String> },
    /// The owner's `schema.sql`: anything on this database, nothing that names a file
    /// (ATTACH, DETACH, the directory pragmas).
    Schema,
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
/// SQL functions that tell what a pooled connection did for someone else (the last row id
/// inserted, rows changed): not for remote callers.
const CONNECTION_STATE_FUNCTIONS: [&str; 3] = ["last_insert_rowid", "changes", "total_changes"];
/// Pragmas that point SQLite at other directories.
const FILE_PRAGMAS: [&str; 2] = ["temp_store_directory", "data_store_directory"];

/// The busy timeout a connection keeps outside guarded work.
const IDLE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How refusals of DDL read.
const SCHEMA_CHANGE: &str = "changing the schema (CREATE, DROP, ALTER...)";

/// How many SQLite VM steps run between two deadline checks.
const PROGRESS_STEPS: i32 = 1000;

/// What the authorizer saw while preparing the guarded statement.
#[derive(Debug, Default)]
struct Seen {
    /// The first action it refused, in words.
    refused: Option<String>,
    /// It allowed an INSERT, UPDATE or DELETE of rows.
    writes_rows: bool,
}

/// Runs `work` on `conn` under `rule`, stopped at `deadline`. The second argument of `work`
/// says, once its statement is prepared, whether the statement inserts, updates or deletes
/// rows (what `exec` is for; a `VACUUM` or a bare `SELECT` does not).
///
/// The authorizer stays installed while `work` runs, because SQLite re-prepares a statement
/// (and asks again) when the schema changed under it.
pub fn run<T>(
    conn: &Connection,
    rule: Rule,
    deadline: Instant,
    work: impl FnOnce(&Connection, &dyn Fn() -> bool) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let hook = Arc::clone(&seen);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let mut seen = hook.lock().unwrap_or_else(PoisonError::into_inner);
        let write =
            matches!(ctx.action, AuthAction::Insert { .. } | AuthAction::Update { .. } | AuthAction::Delete { .. });
        match judge(&rule, &ctx) {
            Ok(()) => {
                seen.writes_rows |= write;
                Authorization::Allow
            }
            Err(what) => {
                seen.refused.get_or_insert(what);
                Authorization::Deny
            }
        }
    }))?;
    // From here on, `_hooks` takes everything off again, even if `work` panics, so the
    // connection goes back to the pool clean.
    let _hooks = Hooks(conn);
    conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline))?;
    // Waiting for the write lock counts against the same deadline.
    conn.busy_timeout(deadline.saturating_duration_since(Instant::now()))?;

    let lock = || seen.lock().unwrap_or_else(PoisonError::into_inner);
    work(conn, &|| lock().writes_rows).map_err(|e| match e {
        StoreError::Sql(sql) => StoreError::from_sql(sql, lock().refused.take()),
        other => other,
    })
}

/// Removes the authorizer and the progress handler when dropped.
struct Hooks<'c>(&'c Connection);

impl Drop for Hooks<'_> {
    fn drop(&mut self) {
        // These only fail on a connection rusqlite does not own, which a pooled one never is.
        let _ = self.0.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let _ = self.0.progress_handler(0, None::<fn() -> bool>);
        let _ = self.0.busy_timeout(IDLE_BUSY_TIMEOUT);
    }
}

/// `Ok` if `rule` lets the statement do this, else what was refused, in words.
fn judge(rule: &Rule, ctx: &AuthContext<'_>) -> Result<(), String> {
    if let Rule::Schema = rule {
        return schema_rule(ctx);
    }
    // Only the main database (and a caller's own-rows view in temp): other `temp` objects
    // and attached files are out of reach. A read that uses no column of the view (`count(*)`)
    // comes without a database name.
    let own_view = match (rule, ctx.action) {
        (Rule::Table { through: Some(view), .. }, AuthAction::Read { table_name, .. }) => {
            table_name.eq_ignore_ascii_case(view) && ctx.database_name.is_none_or(|db| db == "temp")
        }
        _ => false,
    };
    if own_view {
        return Ok(());
    }
    if let Some(db) = ctx.database_name {
        if db != "main" {
            return Err(format!("database {db} (only main)"));
        }
    }
    match (rule, ctx.action) {
        (_, AuthAction::Select) => Ok(()),
        (_, AuthAction::Function { function_name }) => {
            let named = |list: &[&str]| list.iter().any(|f| f.eq_ignore_ascii_case(function_name));
            if named(&DENIED_FUNCTIONS) || (matches!(rule, Rule::Table { .. }) && named(&CONNECTION_STATE_FUNCTIONS)) {
                Err(format!("function {function_name}"))
            } else {
                Ok(())
            }
        }
        (Rule::Table { table, through: Some(view), .. }, AuthAction::Read { table_name, .. })
            if table_name.eq_ignore_ascii_case(table)
                && !ctx.accessor.is_some_and(|a| a.eq_ignore_ascii_case(view)) =>
        {
            // Any read of the table the view does not make would see other callers' rows.
            Err(format!("reading table {table_name} (only your own rows)"))
        }
        (Rule::Table { table, write, .. }, action) => table_rule(table, *write, action),
        (Rule::ScriptRead, AuthAction::Read { table_name, .. }) => user_table(table_name, "reading"),
        (Rule::ScriptRead | Rule::ScriptWrite, AuthAction::Recursive) => Ok(()),
        (Rule::ScriptWrite, AuthAction::Read { table_name, .. }) => user_table(table_name, "reading"),
        (Rule::ScriptWrite, AuthAction::Insert { table_name }) => user_table(table_name, "inserting into"),
        (Rule::ScriptWrite, AuthAction::Update { table_name, .. }) => user_table(table_name, "updating"),
        (Rule::ScriptWrite, AuthAction::Delete { table_name }) => user_table(table_name, "deleting from"),
        (_, action) => Err(describe(action)),
    }
}

/// `schema.sql` may do anything to this database, and nothing that names another file.
fn schema_rule(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Err(format!("{} (schema.sql may change only this peer's database)", describe(ctx.action)))
        }
        AuthAction::Pragma { pragma_name, .. } if FILE_PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(pragma_name)) => {
            Err(format!("PRAGMA {pragma_name} (schema.sql may change only this peer's database)"))
        }
        _ => Ok(()),
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
    // DDL shows up first as a write to the schema table (SQLite asks nothing more once refused).
    let schema_table = ["sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"];
    if verb != "reading" && schema_table.iter().any(|t| t.eq_ignore_ascii_case(name)) {
        return Err(SCHEMA_CHANGE.into());
    }
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
        AuthAction::Read { table_name, .. } => format!("reading table {table_name}"),
        AuthAction::Insert { table_name } => format!("inserting into table {table_name}"),
        AuthAction::Update { table_name, .. } => format!("updating table {table_name}"),
        AuthAction::Delete { table_name } => format!("deleting from table {table_name}"),
        AuthAction::Unknown { code, .. } => format!("SQLite action {code}"),
        // CREATE/DROP of tables, indexes, triggers and views, ALTER, REINDEX, ANALYZE...
        _ => SCHEMA_CHANGE.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Prepares `sql` under `rule` on a small database.
    fn check(rule: Rule, sql: &str) -> Result<(), String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.execute_batch(
            "CREATE TABLE notes (_id INTEGER PRIMARY KEY, _owner TEXT, text TEXT);
             CREATE TABLE other (a); CREATE TABLE _goop_inbox (id, content);",
        )
        .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        run(&conn, rule, deadline, |conn, _| conn.prepare(sql).map(|_| ()).map_err(StoreError::Sql))
            .map_err(|e| e.to_string())
    }

    fn read_notes() -> Rule {
        Rule::Table { table: "notes".into(), write: None, through: None }
    }

    #[test]
    fn table_rule_reads_only_its_table() {
        assert_eq!(check(read_notes(), "SELECT text FROM notes WHERE upper(text) = 'A' AND _id > 1"), Ok(()));
        let denied = [
            ("SELECT text FROM notes WHERE _id IN (SELECT id FROM _goop_inbox)", "reading table _goop_inbox"),
            ("SELECT text FROM notes WHERE (SELECT count(*) FROM sqlite_master) > 0", "reading table sqlite_master"),
            ("SELECT text FROM notes WHERE _id IN (SELECT a FROM other)", "reading table other"),
            ("SELECT * FROM notes WHERE _id IN (SELECT value FROM json_each('[1]'))", "reading table json_each"),
            ("SELECT text FROM notes WHERE _id IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)", "recursive queries"),
            ("DELETE FROM notes", "deleting from table notes"),
            ("SELECT load_extension('x')", "function load_extension"),
            ("SELECT text FROM notes WHERE last_insert_rowid() > 1", "function last_insert_rowid"),
        ];
        for (sql, expected) in denied {
            assert_eq!(check(read_notes(), sql), Err(format!("not allowed: {expected}")), "{sql}");
        }
    }

    #[test]
    fn table_rule_writes_only_as_told() {
        let update = Rule::Table { table: "notes".into(), write: Some(Write::Update), through: None };
        assert_eq!(check(update.clone(), "UPDATE notes SET text = 'x' WHERE _owner = 'me'"), Ok(()));
        assert!(check(update.clone(), "DELETE FROM notes").is_err());
        assert!(check(update, "UPDATE other SET a = 1").is_err());
    }

    /// SQLite names the view as the accessor of the reads it makes, so only those pass.
    #[test]
    fn own_rule_reads_only_through_the_view() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE notes (_id INTEGER PRIMARY KEY, _owner TEXT, text TEXT)").unwrap();
        super::super::own::register(&conn).unwrap();
        let columns = ["\"_id\"".to_string(), "\"_owner\"".into(), "\"text\"".into()];
        let view = super::super::own::view(&conn, "notes", &columns).unwrap();
        let rule = Rule::Table { table: "notes".into(), write: None, through: Some(view) };
        let prepare = |frag: &str| {
            let sql = format!("SELECT text FROM temp.\"_goop_own_notes\" AS notes WHERE ({frag})");
            let deadline = Instant::now() + Duration::from_secs(5);
            run(&conn, rule.clone(), deadline, |conn, _| conn.prepare(&sql).map(|_| ()).map_err(StoreError::Sql))
                .map_err(|e| e.to_string())
        };
        assert_eq!(prepare("text = 'a' AND notes._id > 0"), Ok(()));
        let own_rows_only = Err("not allowed: reading table notes (only your own rows)".to_string());
        assert_eq!(prepare("(1, 'x', 'y') IN notes"), own_rows_only);
        assert_eq!(prepare("(1, 'x', 'y') IN main.notes"), own_rows_only);
        assert_eq!(prepare("(SELECT count(*) FROM notes) > 0"), own_rows_only);
        assert_eq!(prepare("(1, 'x', 'y') IN temp._goop_own_notes"), Ok(()));
        // count(*) reads the view without naming a column or a database.
        let count = format!("SELECT count(*) FROM temp.\"{}\" AS notes", super::super::own::view_name("notes"));
        let deadline = Instant::now() + Duration::from_secs(5);
        let counted =
            run(&conn, rule.clone(), deadline, |conn, _| conn.prepare(&count).map(|_| ()).map_err(StoreError::Sql));
        assert_eq!(counted.map_err(|e| e.to_string()), Ok(()));
    }

    #[test]
    fn script_rules() {
        assert_eq!(check(Rule::ScriptRead, "SELECT * FROM notes JOIN other"), Ok(()));
        assert_eq!(check(Rule::ScriptRead, "SELECT value FROM json_each('[1,2]')"), Ok(()));
        assert!(check(Rule::ScriptRead, "SELECT * FROM pragma_table_info('notes')").is_err());
        assert!(check(Rule::ScriptRead, "INSERT INTO other VALUES (1)").is_err());
        assert_eq!(check(Rule::ScriptWrite, "INSERT INTO other SELECT text FROM notes"), Ok(()));
        assert_eq!(check(Rule::ScriptWrite, "DROP TABLE other"), Err(format!("not allowed: {SCHEMA_CHANGE}")));
        assert!(check(Rule::ScriptWrite, "INSERT INTO _goop_inbox VALUES (1, 'x')").is_err());
    }
}
