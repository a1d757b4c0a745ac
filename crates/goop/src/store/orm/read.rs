//! Reads: rows (`find`/`query`), one row, count, exists, pluck, distinct, aggregate — each one
//! `SELECT` over the target table (or the caller's own-rows view), read-only, capped in rows
//! and bytes.

use rusqlite::types::Value as Sql;

use super::query::{Limit, Query};
use super::{prepare, quote, Session};
use crate::store::error::StoreError;
use crate::store::guard::{self, Rule};
use crate::store::policy::Op;
use crate::store::value::{self, MAX_RESULT_BYTES, MAX_ROWS};

/// What a read returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The rows, as a list.
    Rows,
    /// The first row, or none.
    One,
    Count,
    Exists,
    /// One column's values.
    Pluck(String),
    /// One column's distinct values, in order.
    Distinct(String),
    /// A select list (checked by [`super::query::expression`]) per group of `group_by` columns.
    Aggregate {
        expr: String,
        group_by: Vec<String>,
    },
}

/// What happens past [`MAX_ROWS`] rows or [`MAX_RESULT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// The answer stops there and says so (the data protocol: `"truncated": true`).
    Truncate,
    /// The read fails (a script, like `goop.db`: "more than 1000 rows; add a LIMIT").
    Fail,
}

/// Rows read: column names, then values in the same order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Sql>>,
    /// What they take, as counted against [`MAX_RESULT_BYTES`]: per row its JSON text.
    pub bytes: usize,
    /// Rows were left out ([`Overflow::Truncate`]).
    pub truncated: bool,
}

impl Found {
    /// The first value of the first row.
    pub fn scalar(&self) -> Option<&Sql> {
        self.rows.first().and_then(|r| r.first())
    }
}

impl Session<'_> {
    /// Runs `read` on `table` as `query` says.
    pub fn read(&self, table: &str, read: &Read, query: &Query, overflow: Overflow) -> Result<Found, StoreError> {
        let target = self.target(table, Op::Read)?;
        let mut order = Vec::with_capacity(query.order.len());
        for (column, desc) in &query.order {
            order.push(format!("{} {}", quote(target.column(column)?), if *desc { "DESC" } else { "ASC" }));
        }
        let mut limit = query.limit;
        let mut tail = String::new();
        let list = match read {
            Read::Rows | Read::One => match &query.fields {
                Some(list) => {
                    list.iter().map(|c| target.column(c).map(quote)).collect::<Result<Vec<_>, _>>()?.join(", ")
                }
                None => target.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", "),
            },
            Read::Count => {
                limit = Limit::Exactly(1);
                "count(*) AS n".to_string()
            }
            Read::Exists => {
                limit = Limit::Exactly(1);
                "1 AS found".to_string()
            }
            Read::Pluck(column) => quote(target.column(column)?),
            Read::Distinct(column) => {
                let column = quote(target.column(column)?);
                if order.is_empty() {
                    order.push(column.clone());
                }
                format!("DISTINCT {column}")
            }
            Read::Aggregate { expr, group_by } => {
                if !group_by.is_empty() {
                    let names = group_by.iter().map(|c| target.column(c).map(quote)).collect::<Result<Vec<_>, _>>()?;
                    tail = format!(" GROUP BY {}", names.join(", "));
                }
                expr.clone()
            }
        };
        let (filter, mut params) = self.filter(query.filter.as_ref(), false);
        let (from, through) = self.source(&target)?;
        let mut sql = format!("SELECT {list} FROM {from} WHERE {filter}{tail}");
        if !order.is_empty() {
            sql += &format!(" ORDER BY {}", order.join(", "));
        }
        // One row past the cap, to tell a full answer from a cut one.
        let fetch = match limit {
            Limit::Exactly(n) => n,
            Limit::All => MAX_ROWS + 1,
        };
        sql += " LIMIT ? OFFSET ?";
        params.push(Sql::Integer(fetch as i64));
        params.push(Sql::Integer(i64::try_from(query.offset).unwrap_or(i64::MAX)));

        let rule = Rule::Table { table: target.name.clone(), write: None, through };
        guard::run(self.conn, rule, self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &sql)?;
            // The authorizer refused every write; the flag is the second lock.
            if !stmt.readonly() {
                return Err(StoreError::WrongKind("a read may not write"));
            }
            let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
            let mut found = Found { columns, bytes: 2, ..Found::default() };
            let mut rows = stmt.query(rusqlite::params_from_iter(&params)).map_err(StoreError::Sql)?;
            while let Some(row) = rows.next().map_err(StoreError::Sql)? {
                if found.rows.len() == MAX_ROWS {
                    return overflowed(found, overflow, StoreError::TooManyRows(MAX_ROWS));
                }
                let mut values = Vec::with_capacity(found.columns.len());
                let mut bytes = 2;
                for (i, name) in found.columns.iter().enumerate() {
                    let v = value::column(row, i).map_err(StoreError::Sql)?;
                    bytes += json_size(name, &v);
                    values.push(v);
                }
                if found.bytes + bytes > MAX_RESULT_BYTES {
                    return overflowed(found, overflow, StoreError::TooLarge(MAX_RESULT_BYTES));
                }
                found.bytes += bytes;
                found.rows.push(values);
            }
            Ok(found)
        })
    }

    /// How many rows match.
    pub fn count(&self, table: &str, query: &Query) -> Result<i64, StoreError> {
        let found = self.read(table, &Read::Count, query, Overflow::Fail)?;
        Ok(match found.scalar() {
            Some(Sql::Integer(n)) => *n,
            _ => 0,
        })
    }

    /// Whether any row matches.
    pub fn exists(&self, table: &str, query: &Query) -> Result<bool, StoreError> {
        Ok(!self.read(table, &Read::Exists, query, Overflow::Fail)?.rows.is_empty())
    }
}

/// A read that reached a cap: what was read so far, marked, or the error.
fn overflowed(mut found: Found, overflow: Overflow, error: StoreError) -> Result<Found, StoreError> {
    match overflow {
        Overflow::Truncate => {
            found.truncated = true;
            Ok(found)
        }
        Overflow::Fail => Err(error),
    }
}

/// What a value adds to a JSON object: `"name":value,`.
fn json_size(name: &str, value: &Sql) -> usize {
    let text = match value {
        Sql::Text(s) => serde_json::to_string(s).map_or(s.len() + 2, |t| t.len()),
        Sql::Blob(b) => b.len() + 2,
        other => value::to_json(other.clone()).to_string().len(),
    };
    name.len() + 4 + text
}
