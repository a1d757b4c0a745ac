//! Writes: insert (stamped with the caller), update and delete by a checked `where` (an `_id`
//! is one), upsert by a key column — each in one transaction, with a remote caller's budget
//! (writes per minute, row size, quotas) checked inside it.

use rusqlite::types::Value as Sql;

use super::query::Filter;
use super::{is_system, prepare, quote, size, Session, Target};
use crate::store::error::StoreError;
use crate::store::guard::{self, Rule, Write};
use crate::store::policy::Op;
use crate::store::schema::SYSTEM_COLUMNS;
use crate::store::schemas::ColumnType;

/// Most bytes of data one remote insert or update may write.
pub const MAX_ROW_BYTES: usize = 64 * 1024;
/// Most rows one remote update or delete that goes through the own-rows view may change.
pub const MAX_WRITE_ROWS: usize = 10_000;

/// A value to write: bound, or (from a script's `goop.expr`, in an update only) a checked SQL
/// expression over the row's own columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Value(Sql),
    Expr(String),
}

/// Column names (unchecked) and what to write in each.
pub type Row = Vec<(String, Input)>;

/// A random version-4 UUID in SQL (`xxxxxxxx-xxxx-4xxx-Yxxx-xxxxxxxxxxxx`), for a schema file's
/// `auto` `guid` column.
const UUID_V4: &str = "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
    substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || \
    substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))";

impl Session<'_> {
    /// Inserts `row` stamped with the caller (`_owner`), its times set; the new `_id`. An
    /// `_owner` in `row` is ignored: the row is the caller's.
    pub fn insert(&self, table: &str, row: &Row) -> Result<i64, StoreError> {
        let target = self.target(table, Op::Insert)?;
        target.has_system_columns()?;
        let (columns, values) = self.columns(&target, row, Op::Insert)?;
        self.charge(&target, &values)?;
        let tx = self.begin()?;
        let id = self.insert_in(&target, columns, values)?;
        tx.commit()?;
        Ok(id)
    }

    /// Sets `row`'s columns (and `_updated_at`) on the rows `filter` matches among those the
    /// caller may change; how many changed.
    pub fn update(&self, table: &str, row: &Row, filter: &Filter) -> Result<usize, StoreError> {
        let target = self.target(table, Op::Update)?;
        target.has_system_columns()?;
        let (sets, values) = self.columns(&target, row, Op::Update)?;
        self.charge(&target, &values)?;
        let tx = self.begin()?;
        let affected = self.update_in(&target, sets, values, filter)?;
        tx.commit()?;
        Ok(affected)
    }

    /// Deletes the rows `filter` matches among those the caller may delete; how many.
    pub fn delete(&self, table: &str, filter: &Filter) -> Result<usize, StoreError> {
        let target = self.target(table, Op::Delete)?;
        target.has_system_columns()?;
        self.charge(&target, &[])?;
        let tx = self.begin()?;
        let head = format!("DELETE FROM {}", quote(&target.name));
        let affected = self.write(&target, Write::Delete, &head, vec![], filter)?;
        tx.commit()?;
        Ok(affected)
    }

    /// Updates the first row (lowest `_id`) whose `key` column equals `row`'s, among the rows
    /// the caller may update, or inserts `row` if there is none; the row's `_id`. Needs both
    /// insert and update rights: under `own` a caller's upsert never touches another's row.
    pub fn upsert(&self, table: &str, key: &str, row: &Row) -> Result<i64, StoreError> {
        let inserting = self.target(table, Op::Insert)?;
        let updating = self.target(table, Op::Update)?;
        updating.has_system_columns()?;
        let key = updating.column(key)?.to_string();
        if is_system(&key) {
            return Err(StoreError::Request(format!("key_col {key} is a system column")));
        }
        let key_value = row.iter().find(|(c, _)| c.eq_ignore_ascii_case(&key)).map(|(_, v)| v);
        let Some(Input::Value(key_value)) = key_value else {
            return Err(StoreError::Request(format!("upsert: data must contain the key column {key:?}")));
        };
        let (columns, values) = self.columns(&inserting, row, Op::Insert)?;
        self.charge(&inserting, &values)?;
        let tx = self.begin()?;
        let (from, through) = self.source(&updating)?;
        let (own, mut params) = self.filter(None, updating.own_rows);
        params.insert(0, key_value.clone());
        let find = format!(
            "SELECT {id} FROM {from} WHERE {} = ? AND {own} ORDER BY {id} LIMIT 1",
            quote(&key),
            id = quote("_id")
        );
        let rule = Rule::Table { table: updating.name.clone(), write: None, through };
        let existing: Option<Sql> = guard::run(self.conn, rule, self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &find)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(&params)).map_err(StoreError::Sql)?;
            rows.next().map_err(StoreError::Sql)?.map(|r| r.get::<_, Sql>(0)).transpose().map_err(StoreError::Sql)
        })?;
        let id = match existing {
            Some(id) => {
                let (sets, values) = self.columns(&updating, row, Op::Update)?;
                let Sql::Integer(n) = id else {
                    return Err(StoreError::Request("upsert: the row has no integer _id".into()));
                };
                let filter = Filter { sql: format!("{} = ?", quote("_id")), args: vec![Sql::Integer(n)] };
                self.update_in(&updating, sets, values, &filter)?;
                n
            }
            None => self.insert_in(&inserting, columns, values)?,
        };
        tx.commit()?;
        Ok(id)
    }

    /// `(columns, values)` of `row` for `op`: for an insert, quoted names with values bound
    /// (`_owner` dropped: goop stamps it); for an update, `"c" = ?` / `"c" = (expr)`. Other
    /// system columns are refused, and so is an expression in an insert.
    /// SQL for the `auto` columns of the table's schema file that an insert leaves out, as
    /// goop2 fills them: `integer` the largest so far + 1, `guid` a random UUID (v4),
    /// `datetime`/`date`/`time` the current UTC time. Part of the insert itself, so its
    /// deadline covers the scan for the largest value.
    fn auto_columns(&self, target: &Target, given: &[String]) -> Vec<(String, String)> {
        let schemas = self.store.schemas_as_read();
        let Some(file) = schemas.table(&target.name) else { return Vec::new() };
        let mut out = Vec::new();
        for column in file.columns.iter().filter(|c| c.auto) {
            let name = quote(&column.name);
            if given.iter().any(|g| g.eq_ignore_ascii_case(&name)) {
                continue;
            }
            let sql = match column.kind {
                ColumnType::Integer => format!("(SELECT COALESCE(MAX({name}), 0) + 1 FROM {})", quote(&target.name)),
                ColumnType::Guid => UUID_V4.into(),
                ColumnType::Datetime => "CURRENT_TIMESTAMP".into(),
                ColumnType::Date => "CURRENT_DATE".into(),
                ColumnType::Time => "CURRENT_TIME".into(),
                _ => continue,
            };
            out.push((name, sql));
        }
        out
    }

    fn columns(&self, target: &Target, row: &Row, op: Op) -> Result<(Vec<String>, Vec<Sql>), StoreError> {
        let mut columns = Vec::with_capacity(row.len());
        let mut values = Vec::with_capacity(row.len());
        for (name, input) in row {
            if op == Op::Insert && name.eq_ignore_ascii_case("_owner") {
                continue;
            }
            let column = target.column(name)?;
            if is_system(column) {
                return Err(StoreError::Request(format!("column {column} is set by the system")));
            }
            if columns.iter().any(|c: &String| c.starts_with(&quote(column))) {
                return Err(StoreError::Request(format!("column {column} is given twice")));
            }
            match (input, op) {
                (Input::Value(v), Op::Insert) => {
                    columns.push(quote(column));
                    values.push(v.clone());
                }
                (Input::Value(v), _) => {
                    columns.push(format!("{} = ?", quote(column)));
                    values.push(v.clone());
                }
                (Input::Expr(e), Op::Update) => columns.push(format!("{} = ({e})", quote(column))),
                (Input::Expr(_), _) => {
                    return Err(StoreError::Request(format!("column {column}: goop.expr is only for updates")))
                }
            }
        }
        Ok((columns, values))
    }

    /// The insert itself, inside the caller's transaction, with the quota check after it.
    fn insert_in(&self, target: &Target, mut columns: Vec<String>, mut values: Vec<Sql>) -> Result<i64, StoreError> {
        let mut placeholders = vec!["?".to_string(); columns.len()];
        for (column, sql) in self.auto_columns(target, &columns) {
            columns.push(column);
            placeholders.push(sql);
        }
        columns.push(quote("_owner"));
        values.push(Sql::Text(self.caller.to_string()));
        placeholders.push("?".into());
        for stamp in ["_created_at", "_updated_at"] {
            columns.push(quote(stamp));
            placeholders.push("CURRENT_TIMESTAMP".into());
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&target.name),
            columns.join(", "),
            placeholders.join(", ")
        );
        let rule = Rule::Table { table: target.name.clone(), write: Some(Write::Insert), through: None };
        let id = guard::run(self.conn, rule, self.deadline, |conn, _| {
            prepare(conn, &sql)?.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)?;
            Ok(conn.last_insert_rowid())
        })?;
        if !self.unrestricted() {
            let (rows, bytes) = self.usage(target)?;
            let policy = &target.policy;
            if policy.quota_rows > 0 && rows > u64::from(policy.quota_rows) {
                return Err(StoreError::QuotaRows { max: policy.quota_rows, table: target.name.clone() });
            }
            if policy.quota_bytes > 0 && bytes > policy.quota_bytes {
                return Err(StoreError::QuotaBytes { max: policy.quota_bytes, table: target.name.clone() });
            }
        }
        Ok(id)
    }

    /// The update itself, inside the caller's transaction, with the byte quota around it.
    fn update_in(
        &self,
        target: &Target,
        mut sets: Vec<String>,
        values: Vec<Sql>,
        filter: &Filter,
    ) -> Result<usize, StoreError> {
        sets.push(format!("{} = CURRENT_TIMESTAMP", quote("_updated_at")));
        let head = format!("UPDATE {} SET {}", quote(&target.name), sets.join(", "));
        let quota = if self.unrestricted() { 0 } else { target.policy.quota_bytes };
        let written_per_row = size(&values) as u64;
        let before = if quota > 0 { self.usage(target)?.1 } else { 0 };
        let affected = self.write(target, Write::Update, &head, values, filter)?;
        if quota > 0 {
            let after = self.usage(target)?.1;
            if after > quota && after > before {
                return Err(StoreError::QuotaBytes { max: quota, table: target.name.clone() });
            }
            // Under `update: open` the rows may be others': one request still writes no more
            // than the caller could store.
            if (affected as u64).saturating_mul(written_per_row) > quota {
                return Err(StoreError::UpdateTooLarge { max: quota, rows: affected });
            }
        }
        Ok(affected)
    }

    /// Runs `head` (`UPDATE t SET …` with `values`, or `DELETE FROM t`) on the rows `filter`
    /// matches among those the caller may see; the number of rows changed.
    fn write(
        &self,
        target: &Target,
        write: Write,
        head: &str,
        mut values: Vec<Sql>,
        filter: &Filter,
    ) -> Result<usize, StoreError> {
        let rule = |through| Rule::Table { table: target.name.clone(), write: Some(write), through };
        let (from, through) = self.source(target)?;
        let Some(view) = through else {
            // Every row is readable: one statement, limited to the caller's rows if `own`.
            let (where_sql, where_params) = self.filter(Some(filter), target.own_rows);
            values.extend(where_params);
            let sql = format!("{head} WHERE {where_sql}");
            return guard::run(self.conn, rule(None), self.deadline, |conn, _| {
                prepare(conn, &sql)?.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)
            });
        };
        // Find the rows through the view, then change exactly those: the caller's `where`
        // never runs on a row they cannot see, and the count says nothing about others.
        let (where_sql, where_params) = self.filter(Some(filter), false);
        let find = format!("SELECT {} FROM {from} WHERE {where_sql} LIMIT {}", quote("_id"), MAX_WRITE_ROWS + 1);
        let read = Rule::Table { table: target.name.clone(), write: None, through: Some(view) };
        let ids: Vec<Sql> = guard::run(self.conn, read, self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &find)?;
            let ids = stmt.query_map(rusqlite::params_from_iter(&where_params), |r| r.get::<_, Sql>(0));
            ids.and_then(|rows| rows.collect()).map_err(StoreError::Sql)
        })?;
        if ids.len() > MAX_WRITE_ROWS {
            return Err(StoreError::TooManyMatches(MAX_WRITE_ROWS));
        }
        let sql = format!("{head} WHERE {} = ? AND {} = goop_caller()", quote("_id"), quote("_owner"));
        guard::run(self.conn, rule(None), self.deadline, |conn, _| {
            let mut stmt = prepare(conn, &sql)?;
            let mut changed = 0;
            for id in ids {
                values.push(id);
                changed += stmt.execute(rusqlite::params_from_iter(&values)).map_err(StoreError::Sql)?;
                values.pop();
            }
            Ok(changed)
        })
    }

    /// Charges a remote caller's write: the table's writes per minute and the row size.
    fn charge(&self, target: &Target, values: &[Sql]) -> Result<(), StoreError> {
        if self.unrestricted() {
            return Ok(());
        }
        self.store.inner.budgets.write(self.caller, &target.name, target.policy.rate_limit)?;
        if size(values) > MAX_ROW_BYTES {
            return Err(StoreError::RowTooLarge(MAX_ROW_BYTES));
        }
        Ok(())
    }

    /// The caller's rows in the table and the bytes of their non-system columns, counting at
    /// most one row past the row quota (the index on `_owner` keeps this to their rows).
    fn usage(&self, target: &Target) -> Result<(u64, u64), StoreError> {
        let sizes: Vec<String> = target
            .columns
            .iter()
            .filter(|c| !SYSTEM_COLUMNS.iter().any(|s| s.eq_ignore_ascii_case(&c.name)))
            .map(|c| format!("coalesce(octet_length({}), 0)", quote(&c.name)))
            .collect();
        let size = if sizes.is_empty() { "0".to_string() } else { sizes.join(" + ") };
        let limit = match target.policy.quota_rows {
            0 => -1,
            n => i64::from(n) + 1,
        };
        let sql = format!(
            "SELECT count(*), coalesce(sum(size), 0) FROM (SELECT {size} AS size FROM main.{} WHERE {} = ? LIMIT ?)",
            quote(&target.name),
            quote("_owner")
        );
        let (rows, bytes): (i64, i64) = self
            .conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params![self.caller, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((rows.max(0) as u64, bytes.max(0) as u64))
    }
}
