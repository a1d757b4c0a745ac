//! What a table looks like to `goop.orm` (`.columns`, `.access`), to the data protocol's
//! `orm-schema`, and to `validate`: goop2's table description, built from what the store knows.
//!
//! Today that is SQLite's own (`PRAGMA table_info`: declared type, `NOT NULL`, default,
//! primary key) and `schema.json`'s policies. [`describe`] is the one place it is read, so a
//! richer description (a `site/schemas/*.json` table's types, `required`, `auto`, roles) can
//! take its place without touching the operations.

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use super::{is_system, Actor};
use crate::store::error::StoreError;
use crate::store::policy::{Decision, Op, Policies};
use crate::store::schema;

/// A table as goop2 describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub name: String,
    /// It has goop's system columns (`_id`, `_owner`, `_created_at`, `_updated_at`).
    pub system_key: bool,
    /// Its columns, system columns left out.
    pub columns: Vec<Column>,
    pub access: Access,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    /// goop2's type names from SQLite's affinity: `integer`, `real`, `text`, `blob`,
    /// `numeric`; empty when the column declares no type (it takes anything).
    #[serde(rename = "type")]
    pub kind: String,
    /// `NOT NULL` without a default: an insert must give it.
    pub required: bool,
    /// The declared default, as SQL text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Part of the primary key.
    pub key: bool,
}

/// The table's policy per operation (`open`, `own`, `owner`, `none`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Access {
    pub read: &'static str,
    pub insert: &'static str,
    pub update: &'static str,
    pub delete: &'static str,
}

/// The description of user table `name`, `None` if there is none.
pub fn describe(conn: &Connection, policies: &Policies, name: &str) -> Result<Option<Table>, StoreError> {
    let Some((name, all)) = schema::table(conn, name)? else { return Ok(None) };
    let mut stmt =
        conn.prepare_cached("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid")?;
    let columns = stmt
        .query_map([&name], |r| {
            let kind: String = r.get(1)?;
            let not_null: bool = r.get(2)?;
            let default: Option<String> = r.get(3)?;
            Ok(Column {
                name: r.get(0)?,
                kind: affinity(&kind).to_string(),
                required: not_null && default.is_none(),
                default,
                key: r.get::<_, i64>(4)? > 0,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let system_key =
        crate::store::schema::SYSTEM_COLUMNS.iter().all(|s| all.iter().any(|c| c.name.eq_ignore_ascii_case(s)));
    let policy = policies.table(&name);
    let access = Access {
        read: policy.read.name(),
        insert: policy.insert.name(),
        update: policy.update.name(),
        delete: policy.delete.name(),
    };
    let columns = columns.into_iter().filter(|c| !is_system(&c.name)).collect();
    Ok(Some(Table { name, system_key, columns, access }))
}

/// Every user table a caller may do anything with, described (the `orm-schema` answer).
pub fn all(conn: &Connection, policies: &Policies, actor: Actor) -> Result<Vec<Table>, StoreError> {
    let unrestricted = actor == Actor::Unrestricted;
    let mut out = Vec::new();
    for name in schema::user_tables(conn)? {
        let usable = [Op::Read, Op::Insert, Op::Update, Op::Delete]
            .iter()
            .any(|op| !matches!(policies.decide(&name, *op, unrestricted), Decision::Refused(_)));
        if usable {
            out.extend(describe(conn, policies, &name)?);
        }
    }
    Ok(out)
}

/// What each operation means for a caller: `{"read":true,…}` (the `role` answer).
pub fn permissions(policies: &Policies, table: &str, actor: Actor) -> Value {
    let unrestricted = actor == Actor::Unrestricted;
    let may = |op| !matches!(policies.decide(table, op, unrestricted), Decision::Refused(_));
    serde_json::json!({
        "read": may(Op::Read), "insert": may(Op::Insert), "update": may(Op::Update), "delete": may(Op::Delete)
    })
}

/// SQLite's affinity rules (datatype3.html 3.1) on a declared type, in goop2's words.
fn affinity(declared: &str) -> &'static str {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        "integer"
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
        "text"
    } else if upper.contains("BLOB") {
        "blob"
    } else if upper.trim().is_empty() {
        ""
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
        "real"
    } else {
        "numeric"
    }
}

/// Checks `data` against `table` as an insert would need it: every column exists, required
/// ones are given (not null), values fit the column's type. The first problem, in words.
pub fn validate(table: &Table, data: &[(String, Sql)]) -> Result<(), String> {
    for (name, _) in data {
        if !is_system(name) && !table.columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
            return Err(format!("column {:?} does not exist in {}", name, table.name));
        }
    }
    for column in &table.columns {
        let given = data.iter().find(|(n, _)| n.eq_ignore_ascii_case(&column.name)).map(|(_, v)| v);
        let value = match given {
            None | Some(Sql::Null) if column.required && !column.key => {
                return Err(format!("column {:?} is required", column.name))
            }
            None | Some(Sql::Null) => continue,
            Some(v) => v,
        };
        let fits = match (column.kind.as_str(), value) {
            ("integer" | "real" | "numeric", Sql::Integer(_) | Sql::Real(_)) => true,
            ("integer" | "real" | "numeric", _) => false,
            ("text", Sql::Text(_)) | ("blob", Sql::Text(_) | Sql::Blob(_)) => true,
            ("text" | "blob", _) => false,
            _ => true,
        };
        if !fits {
            let got = match value {
                Sql::Integer(_) | Sql::Real(_) => "number",
                Sql::Text(_) => "string",
                Sql::Blob(_) => "bytes",
                Sql::Null => "null",
            };
            return Err(format!("column {:?} expects {}, got {got}", column.name, column.kind));
        }
    }
    Ok(())
}
