//! Running SQL that a script wrote (for `goop.db`): one statement, bound parameters, the
//! authorizer's script rules, the read-only flag, row and size caps, and the caller's deadline.

use std::time::Instant;

use rusqlite::types::Value as Sql;

use super::error::StoreError;
use super::guard::{self, Rule};
use super::value::{self, MAX_RESULT_BYTES, MAX_ROWS};
use super::Store;

/// The rows of a query: column names, then values in the same order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Sql>>,
    /// The host bytes they take, as counted against [`MAX_RESULT_BYTES`]: per value its column
    /// name, its slot and its text or blob.
    pub bytes: usize,
}

/// How much of a query's result the caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Every row, at most [`MAX_ROWS`] and [`MAX_RESULT_BYTES`] (an error beyond).
    All,
    /// The first row only (`scalar`).
    First,
}

impl Store {
    /// Runs a read-only statement: it may read user tables and call SQL functions, nothing
    /// else. Stopped at `deadline`.
    pub fn script_query(&self, sql: &str, params: &[Sql], want: Want, deadline: Instant) -> Result<Rows, StoreError> {
        check(sql, deadline)?;
        self.refresh();
        let conn = self.inner.pool.get(deadline)?;
        guard::run(&conn, Rule::ScriptRead, deadline, |conn, _| {
            let mut stmt = conn.prepare(sql).map_err(StoreError::Sql)?;
            // The authorizer already refused any write; the flag is the second lock.
            if !stmt.readonly() {
                return Err(StoreError::WrongKind("query and scalar only read; use exec to write"));
            }
            let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let mut bytes: usize = 0;
            let mut out = Vec::new();
            let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(StoreError::Sql)?;
            while let Some(row) = rows.next().map_err(StoreError::Sql)? {
                if out.len() == MAX_ROWS {
                    return Err(StoreError::TooManyRows(MAX_ROWS));
                }
                let mut values = Vec::with_capacity(columns.len());
                for (i, name) in columns.iter().enumerate() {
                    let v = value::column(row, i).map_err(StoreError::Sql)?;
                    // The host's copy: a value slot each, and its text or blob.
                    bytes += name.len() + std::mem::size_of::<Sql>() + value::size(&v);
                    values.push(v);
                }
                if bytes > MAX_RESULT_BYTES {
                    return Err(StoreError::TooLarge(MAX_RESULT_BYTES));
                }
                out.push(values);
                if want == Want::First {
                    break;
                }
            }
            Ok(Rows { columns, rows: out, bytes })
        })
    }

    /// Runs an INSERT, UPDATE, DELETE or REPLACE on user tables (a script may set `_owner`
    /// itself); returns the rows it changed. No DDL, PRAGMA, ATTACH, transactions, or writes
    /// to internal tables. Rows from `RETURNING` are ignored. Stopped at `deadline`.
    pub fn script_exec(&self, sql: &str, params: &[Sql], deadline: Instant) -> Result<u64, StoreError> {
        check(sql, deadline)?;
        self.refresh();
        let conn = self.inner.pool.get(deadline)?;
        guard::run(&conn, Rule::ScriptWrite, deadline, |conn, writes_rows| {
            let mut stmt = conn.prepare(sql).map_err(StoreError::Sql)?;
            // Both: a SELECT is read-only, and a VACUUM writes without touching rows.
            if stmt.readonly() || !writes_rows() {
                return Err(StoreError::WrongKind(
                    "exec runs only INSERT, UPDATE, DELETE or REPLACE (use query to read)",
                ));
            }
            let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(StoreError::Sql)?;
            while rows.next().map_err(StoreError::Sql)?.is_some() {}
            drop(rows);
            Ok(conn.changes())
        })
    }
}

fn check(sql: &str, deadline: Instant) -> Result<(), StoreError> {
    if sql.trim().is_empty() {
        return Err(StoreError::WrongKind("empty SQL"));
    }
    if Instant::now() >= deadline {
        return Err(StoreError::Timeout);
    }
    Ok(())
}
