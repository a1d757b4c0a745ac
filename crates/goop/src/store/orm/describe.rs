//! What a table looks like to `goop.orm` (`.columns`, `.access`), to the data protocol's
//! `orm-schema`, and to `validate`: goop2's table description.
//!
//! A table from `site/schemas/*.json` is described by its file (goop2's types, `required`,
//! `default`, `key`, `auto`, access levels); any other by SQLite (`PRAGMA table_info`: declared
//! type, `NOT NULL`, default, primary key) and `schema.json`'s policies. [`describe`] is the
//! one place either is read.

use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use super::{is_system, Actor};
use crate::store::error::StoreError;
use crate::store::policy::{Decision, Op, Policies};
use crate::store::schema;
use crate::store::schemas::{ColumnSchema, Schemas, TableSchema};

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
    /// A schema file's type (`text`, `integer`, `real`, `blob`, `guid`, `datetime`, `date`,
    /// `time`, `enum`); otherwise goop2's name for SQLite's affinity (`integer`, `real`, `text`,
    /// `blob`, `numeric`), empty when the column declares no type (it takes anything).
    #[serde(rename = "type")]
    pub kind: String,
    /// An insert must give it: `required` in a schema file; `NOT NULL` without a default in SQL.
    pub required: bool,
    /// The default: a schema file's value, or the declared SQL text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Part of the key.
    pub key: bool,
}

/// Who may do each operation: a schema file's levels (`open`, `owner`, `group`, `local`), or
/// `schema.json`'s policies (`open`, `own`, `owner`, `none`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Access {
    pub read: String,
    pub insert: String,
    pub update: String,
    pub delete: String,
}

/// The description of user table `name`, `None` if there is none.
pub fn describe(
    conn: &Connection,
    policies: &Policies,
    schemas: &Schemas,
    name: &str,
) -> Result<Option<Table>, StoreError> {
    let Some((name, all)) = schema::table(conn, name)? else { return Ok(None) };
    if let Some(file) = schemas.table(&name) {
        return Ok(Some(from_file(name, file)));
    }
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
                default: default.map(Value::String),
                key: r.get::<_, i64>(4)? > 0,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let system_key =
        crate::store::schema::SYSTEM_COLUMNS.iter().all(|s| all.iter().any(|c| c.name.eq_ignore_ascii_case(s)));
    let policy = policies.table(&name);
    let access = Access {
        read: policy.read.name().into(),
        insert: policy.insert.name().into(),
        update: policy.update.name().into(),
        delete: policy.delete.name().into(),
    };
    let columns = columns.into_iter().filter(|c| !is_system(&c.name)).collect();
    Ok(Some(Table { name, system_key, columns, access }))
}

/// A schema file's word for a type or a level (`"datetime"`, `"owner"`): its serde name.
fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A schema file's table, in the shape SQL-made tables are described in.
fn from_file(name: String, file: &TableSchema) -> Table {
    let column = |c: &ColumnSchema| Column {
        name: c.name.clone(),
        kind: word(&c.kind),
        // An `auto` column is filled in when an insert leaves it out.
        required: c.required && !c.auto,
        default: c.default.clone(),
        key: c.key,
    };
    let a = &file.access;
    Table {
        name,
        // Schema-file tables always have the system columns.
        system_key: true,
        columns: file.columns.iter().map(column).collect(),
        access: Access {
            read: word(&a.read),
            insert: word(&a.insert),
            update: word(&a.update),
            delete: word(&a.delete),
        },
    }
}

/// Every user table a caller may do anything with, described (the `orm-schema` answer).
pub fn all(conn: &Connection, policies: &Policies, schemas: &Schemas, actor: Actor) -> Result<Vec<Table>, StoreError> {
    let unrestricted = actor == Actor::Unrestricted;
    let mut out = Vec::new();
    for name in schema::user_tables(conn)? {
        let usable = [Op::Read, Op::Insert, Op::Update, Op::Delete]
            .iter()
            .any(|op| !matches!(policies.decide(&name, *op, unrestricted), Decision::Refused(_)));
        if usable {
            out.extend(describe(conn, policies, schemas, &name)?);
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
            None | Some(Sql::Null) if column.required && column.default.is_none() && !column.key => {
                return Err(format!("column {:?} is required", column.name))
            }
            None | Some(Sql::Null) => continue,
            Some(v) => v,
        };
        let fits = match (column.kind.as_str(), value) {
            ("integer" | "real" | "numeric", Sql::Integer(_) | Sql::Real(_)) => true,
            ("integer" | "real" | "numeric", _) => false,
            ("text" | "guid" | "datetime" | "date" | "time" | "enum", Sql::Text(_))
            | ("blob", Sql::Text(_) | Sql::Blob(_)) => true,
            ("text" | "guid" | "datetime" | "date" | "time" | "enum" | "blob", _) => false,
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
