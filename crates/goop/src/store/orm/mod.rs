//! The table operations layer: one set of checked operations on the site's tables — find,
//! count, exists, pluck, distinct, aggregate, insert, update, delete, upsert — used by both the
//! data protocol ([`super::data`]) and `goop.orm` ([`lua`]).
//!
//! A [`Session`] is one caller on one pooled connection until a deadline:
//! - [`Actor::Remote`]: a peer over the data protocol, under the tables' access policies
//!   ([`super::policy`]): `own` rows through [`super::own`]'s views, and budgeted
//!   ([`super::budget`]: writes per minute per table, row size, quotas of rows and bytes);
//! - [`Actor::Unrestricted`]: the peer's owner, and a data function's script (like `goop.db`,
//!   a script is the owner's code): every row, no budget; inserts still stamp `_owner` with the
//!   caller the session serves (`goop.peer.id` for a script).
//!
//! Either way every statement runs under the authorizer's [`Rule::Table`](super::guard::Rule):
//! it reads only the target table (through the own-rows view where the caller may not read
//! every row), writes only as the operation says, and stops at the deadline. Table and column
//! names are checked against the live schema and quoted; values are bound; fragments (`where`,
//! an aggregate's select list, a `goop.expr`) are checked by [`query`] first.

pub mod describe;
pub mod lua;
pub mod query;
pub mod read;
pub mod write;

use std::time::Instant;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Statement, Transaction, TransactionBehavior};

use super::error::StoreError;
use super::own;
use super::policy::{Decision, Op, TablePolicy};
use super::request::short;
use super::schema::{self, Column, SYSTEM_COLUMNS};
use super::value;
use super::Store;
use query::Filter;

/// Who a session acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The peer's owner or one of its scripts: no policy, no budget.
    Unrestricted,
    /// Another peer: policies and budgets apply.
    Remote,
}

/// One caller's operations on one connection, until `deadline`.
pub struct Session<'a> {
    pub(crate) store: &'a Store,
    pub(crate) conn: &'a Connection,
    /// The peer ID stamped into `_owner` and matched by `own`.
    pub(crate) caller: &'a str,
    pub(crate) actor: Actor,
    pub(crate) deadline: Instant,
}

/// A user table the caller may use for an op.
pub struct Target {
    pub name: String,
    pub columns: Vec<Column>,
    /// `true`: only rows whose `_owner` is the caller.
    pub own_rows: bool,
    /// `true`: the caller may read every row (so a `where` may look at them all).
    pub reads_all: bool,
    pub policy: TablePolicy,
}

impl Target {
    /// The table's spelling of `name`, if it is one of its columns.
    pub fn column(&self, name: &str) -> Result<&str, StoreError> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.name.as_str())
            .ok_or_else(|| StoreError::Request(format!("no column {:?} in table {}", short(name), self.name)))
    }

    pub fn has_system_columns(&self) -> Result<(), StoreError> {
        for system in SYSTEM_COLUMNS {
            if !self.columns.iter().any(|c| c.name.eq_ignore_ascii_case(system)) {
                return Err(StoreError::Request(format!(
                    "table {} has no {system} column; writes need _id, _owner, _created_at and _updated_at",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

impl<'a> Session<'a> {
    pub(crate) fn unrestricted(&self) -> bool {
        self.actor == Actor::Unrestricted
    }

    /// The table `name` if it exists and the caller may `op` it.
    pub fn target(&self, name: &str, op: Op) -> Result<Target, StoreError> {
        let Some((name, columns)) = schema::table(self.conn, name)? else {
            return Err(StoreError::Request(format!("no table {:?}", short(name))));
        };
        let policies = self.store.policies();
        let unrestricted = self.unrestricted();
        let own_rows = match policies.decide(&name, op, unrestricted) {
            Decision::All => false,
            Decision::OwnRows => true,
            Decision::Refused(access) => {
                return Err(StoreError::Forbidden { op: op.name(), table: name, policy: access.name() })
            }
        };
        let reads_all = matches!(policies.decide(&name, Op::Read, unrestricted), Decision::All);
        let policy = policies.table(&name);
        let target = Target { name, columns, own_rows, reads_all, policy };
        if (own_rows || !reads_all) && op != Op::Insert {
            target.column("_owner")?;
        }
        Ok(target)
    }

    /// What a `where` reads from: the table, or the caller's own-rows view (named as the
    /// table) when they may not read every row; and the view the authorizer must see.
    pub(crate) fn source(&self, target: &Target) -> Result<(String, Option<String>), StoreError> {
        if !target.own_rows && target.reads_all {
            return Ok((quote(&target.name), None));
        }
        let columns: Vec<String> = target.columns.iter().map(|c| quote(&c.name)).collect();
        let view = own::view(self.conn, &target.name, &columns)?;
        Ok((format!("temp.{} AS {}", quote(&view), quote(&target.name)), Some(view)))
    }

    /// The WHERE clause and its parameters: the caller's fragment (in parentheses, on its own
    /// lines) and, with `own_rows`, `AND _owner = caller`.
    pub(crate) fn filter(&self, filter: Option<&Filter>, own_rows: bool) -> (String, Vec<Sql>) {
        let mut params = Vec::new();
        let mut sql = match filter {
            Some(f) => {
                params.extend(f.args.iter().cloned());
                format!("(\n{}\n)", f.sql)
            }
            None => "1".to_string(),
        };
        if own_rows {
            sql += &format!(" AND {} = ?", quote("_owner"));
            params.push(Sql::Text(self.caller.to_string()));
        }
        (sql, params)
    }

    /// A write transaction, taken at once (waiting for the write lock until the deadline), so
    /// the quota checked is the quota committed. Rolled back unless committed.
    pub(crate) fn begin(&self) -> Result<Transaction<'_>, StoreError> {
        self.conn.busy_timeout(self.deadline.saturating_duration_since(Instant::now()))?;
        Ok(Transaction::new_unchecked(self.conn, TransactionBehavior::Immediate)?)
    }
}

/// Prepares one of goop's statements and checks that every parameter is a plain `?`, so the
/// values line up with the placeholders goop wrote (a `?9` or `:name` in a `where` could
/// otherwise point at goop's own `_owner = ?`).
pub(crate) fn prepare<'c>(conn: &'c Connection, sql: &str) -> Result<Statement<'c>, StoreError> {
    let stmt = conn.prepare(sql).map_err(StoreError::Sql)?;
    if (1..=stmt.parameter_count()).any(|i| stmt.parameter_name(i).is_some()) {
        return Err(StoreError::Request("where may use only plain ? placeholders".into()));
    }
    Ok(stmt)
}

/// A checked identifier in double quotes.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// Whether `column` is one of goop's system columns.
pub(crate) fn is_system(column: &str) -> bool {
    SYSTEM_COLUMNS.iter().any(|s| s.eq_ignore_ascii_case(column)) || column.eq_ignore_ascii_case("_owner_email")
}

/// Bytes of a value, as [`value::size`] counts them.
pub(crate) fn size(values: &[Sql]) -> usize {
    values.iter().map(value::size).sum()
}
