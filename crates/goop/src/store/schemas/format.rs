//! goop2's table schema format, one `site/schemas/*.json` file: the typed description of a
//! table (its columns, access and roles), parsed strictly and checked before anything touches
//! the database.

use std::collections::BTreeMap;
use std::ops::Not;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::schema::{is_identifier, is_internal, MAX_NAME_LEN};

/// Most columns one table schema may declare (the system columns not counted).
pub const MAX_COLUMNS: usize = 64;
/// Most roles one table schema may name.
pub const MAX_ROLES: usize = 16;
/// Most values an `enum` column may list.
pub const MAX_ENUM_VALUES: usize = 256;
/// Longest text `default`, and longest enum key or label, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// One table, as its schema file describes it. Serializes back to goop2's JSON shape (what
/// `orm-schema` answers and `goop.orm(t).columns` / `.access` show).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    pub name: String,
    /// `true`: `_id` is the row's key, so no column needs `key`. The system columns are there
    /// either way.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub system_key: bool,
    pub columns: Vec<ColumnSchema>,
    /// Absent: goop2's default, read `open`, writes `owner`.
    #[serde(default = "TableAccess::goop2_default")]
    pub access: TableAccess,
    /// What a group member of each role may do (see the module docs for how goop applies it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleAccess>,
    /// goop2's federation flag: kept and shown, not used by goop.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub context: bool,
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Part of the table's key: NOT NULL in the table (as in goop2, `_id` stays the primary
    /// key); upserts look rows up by it.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub key: bool,
    /// NOT NULL in the table; an insert without it and without a default is refused.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub required: bool,
    /// Filled in by inserts that leave it out: `integer` the largest value + 1, `guid` a UUID v4,
    /// `datetime`/`date`/`time` the current UTC time.
    #[serde(default, skip_serializing_if = "Not::not")]
    pub auto: bool,
    /// The table's DEFAULT: a string, number or boolean (true/false are 1/0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The allowed values of an `enum` column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<EnumValue>,
}

/// goop2's column types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Integer,
    Real,
    Blob,
    Guid,
    Datetime,
    Date,
    Time,
    Enum,
}

impl ColumnType {
    /// The declared SQLite type, as goop2 maps it.
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Text | ColumnType::Guid | ColumnType::Enum => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
            ColumnType::Blob => "BLOB",
            ColumnType::Datetime => "DATETIME",
            ColumnType::Date => "DATE",
            ColumnType::Time => "TIME",
        }
    }
}

/// A key and label of an `enum` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumValue {
    pub key: String,
    pub label: String,
}

/// Who may do each operation, in goop2's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableAccess {
    /// A field left out of a given `access` is `owner`: what goop2 does with it.
    #[serde(default = "Level::owner")]
    pub read: Level,
    #[serde(default = "Level::owner")]
    pub insert: Level,
    #[serde(default = "Level::owner")]
    pub update: Level,
    #[serde(default = "Level::owner")]
    pub delete: Level,
}

impl TableAccess {
    /// goop2's default when a schema gives no `access`.
    pub fn goop2_default() -> TableAccess {
        TableAccess { read: Level::Open, insert: Level::Owner, update: Level::Owner, delete: Level::Owner }
    }
}

/// One access level of goop2's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Any peer.
    Open,
    /// The site's owner (for `read`: a remote peer sees only the rows it owns).
    Owner,
    /// Members of the site's group, by role.
    Group,
    /// Only this peer itself.
    Local,
}

impl Level {
    fn owner() -> Level {
        Level::Owner
    }
}

/// What one role may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleAccess {
    #[serde(skip_serializing_if = "Not::not")]
    pub read: bool,
    #[serde(skip_serializing_if = "Not::not")]
    pub insert: bool,
    #[serde(skip_serializing_if = "Not::not")]
    pub update: bool,
    #[serde(skip_serializing_if = "Not::not")]
    pub delete: bool,
}

/// Parses one schema file's text and checks it. The error starts with the field's path
/// (`columns[2].type: unknown variant …`) when one field is at fault.
pub fn parse(text: &str) -> Result<TableSchema, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let table: TableSchema = serde_path_to_error::deserialize(de).map_err(|e| match e.path().to_string() {
        path if path == "." => e.inner().to_string(),
        path => format!("{path}: {}", e.inner()),
    })?;
    table.check()?;
    Ok(table)
}

impl TableSchema {
    /// goop2's checks, and goop's on names and sizes.
    fn check(&self) -> Result<(), String> {
        check_name(&self.name).map_err(|e| format!("name: {e}"))?;
        if self.columns.is_empty() {
            return Err("columns: a table needs at least one column".into());
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(format!("columns: at most {MAX_COLUMNS} columns, not {}", self.columns.len()));
        }
        for (i, column) in self.columns.iter().enumerate() {
            column.check().map_err(|e| format!("columns[{i}].{e}"))?;
            if self.columns[..i].iter().any(|c| c.name.eq_ignore_ascii_case(&column.name)) {
                return Err(format!("columns[{i}].name: column {} is declared twice", column.name));
            }
        }
        if !self.system_key && !self.columns.iter().any(|c| c.key) {
            return Err("system_key: the table has no key column; mark one with \"key\": true, \
                        or set \"system_key\": true to key rows by _id"
                .into());
        }
        if self.roles.len() > MAX_ROLES {
            return Err(format!("roles: at most {MAX_ROLES} roles"));
        }
        for role in self.roles.keys() {
            let fits = !role.is_empty() && role.len() <= MAX_NAME_LEN;
            if !fits || !role.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                return Err(format!("roles: a role name is 1 to {MAX_NAME_LEN} letters, digits, - and _"));
            }
        }
        Ok(())
    }
}

impl ColumnSchema {
    /// The error starts with the field (`type: …`).
    fn check(&self) -> Result<(), String> {
        check_name(&self.name).map_err(|e| format!("name: {e}"))?;
        let autos = [ColumnType::Integer, ColumnType::Guid, ColumnType::Datetime, ColumnType::Date, ColumnType::Time];
        if self.auto && !autos.contains(&self.kind) {
            return Err("auto: only integer, guid, datetime, date and time columns can be auto".into());
        }
        match (self.kind, self.values.len()) {
            (ColumnType::Enum, 0) => return Err("values: an enum column lists its values".into()),
            (ColumnType::Enum, n) if n > MAX_ENUM_VALUES => {
                return Err(format!("values: at most {MAX_ENUM_VALUES} values"))
            }
            (ColumnType::Enum, _) => {}
            (_, 0) => {}
            (_, _) => return Err("values: only an enum column has values".into()),
        }
        for (i, value) in self.values.iter().enumerate() {
            if value.key.len() > MAX_TEXT_BYTES || value.label.len() > MAX_TEXT_BYTES {
                return Err(format!("values[{i}]: at most {MAX_TEXT_BYTES} bytes per key and label"));
            }
        }
        if let Some(default) = &self.default {
            default_literal(default).map_err(|e| format!("default: {e}"))?;
        }
        Ok(())
    }
}

/// A table or column name: a plain identifier that is not the system's (`_…`, `sqlite_…`,
/// `pragma_…`).
fn check_name(name: &str) -> Result<(), String> {
    if !is_identifier(name) {
        return Err(format!(
            "{:?} is not a name: 1 to {MAX_NAME_LEN} letters, digits and _, not starting with a digit",
            crate::store::request::short(name)
        ));
    }
    if name.starts_with('_') || is_internal(name) {
        return Err(format!("{name} is reserved: names starting with _, sqlite_ or pragma_ are the system's"));
    }
    Ok(())
}

/// A default as a SQL literal: text quoted (quotes doubled), numbers as they are, booleans as
/// 1/0. Anything else is refused.
pub fn default_literal(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) if s.len() > MAX_TEXT_BYTES => Err(format!("at most {MAX_TEXT_BYTES} bytes")),
        Value::String(s) if s.contains('\0') => Err("a NUL character cannot be a default".into()),
        Value::String(s) => Ok(format!("'{}'", s.replace('\'', "''"))),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        Value::Null => Ok("NULL".to_string()),
        Value::Array(_) | Value::Object(_) => Err("a default is a string, a number or a boolean".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text).err().unwrap_or_else(|| panic!("{text} parsed"))
    }

    #[test]
    fn goop2s_format_parses_with_its_defaults() {
        let table = parse(
            r#"{"name": "posts", "system_key": true,
                "columns": [{"name": "title", "type": "text", "required": true},
                            {"name": "published", "type": "integer", "default": 1},
                            {"name": "uid", "type": "guid", "auto": true, "key": true},
                            {"name": "mood", "type": "enum", "values": [{"key": "ok", "label": "OK"}]}],
                "access": {"read": "open", "insert": "group"},
                "roles": {"coauthor": {"read": true, "insert": true}}}"#,
        )
        .unwrap();
        assert_eq!(table.columns[1].default, Some(serde_json::json!(1)));
        assert_eq!(table.columns[2].kind.sql(), "TEXT");
        // A field left out of a given access is owner; no access at all is goop2's default.
        assert_eq!(
            table.access,
            TableAccess { read: Level::Open, insert: Level::Group, update: Level::Owner, delete: Level::Owner }
        );
        assert_eq!(table.roles["coauthor"], RoleAccess { read: true, insert: true, ..Default::default() });
        let bare = parse(r#"{"name": "t", "system_key": true, "columns": [{"name": "a", "type": "real"}]}"#).unwrap();
        assert_eq!(bare.access, TableAccess::goop2_default());
        // It serializes back to goop2's shape, leaving out what is unset.
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({"name": "t", "system_key": true, "columns": [{"name": "a", "type": "real"}],
                               "access": {"read": "open", "insert": "owner", "update": "owner", "delete": "owner"}})
        );
    }

    #[test]
    fn errors_name_the_field() {
        let base = |columns: &str| format!(r#"{{"name": "t", "system_key": true, "columns": [{columns}]}}"#);
        assert!(
            error(&base(r#"{"name": "a", "type": "strng"}"#)).starts_with("columns[0].type: unknown variant `strng`")
        );
        let typo = error(&base(r#"{"name": "a", "type": "text", "requried": true}"#));
        assert!(typo.starts_with("columns[0]") && typo.contains("unknown field `requried`"), "{typo}");
        assert!(error(r#"{"name": "t", "columns": [{"name": "a", "type": "text"}], "access": {"read": "public"}}"#)
            .starts_with("access.read: unknown variant `public`"));
        assert!(error(r#"{"name": "t", "columns": [{"name": "a", "type": "text"}]}"#).starts_with("system_key: "));
        assert!(error(&base("")).starts_with("columns: a table needs at least one column"));
        let twice = error(&base(r#"{"name": "a", "type": "text"}, {"name": "A", "type": "text"}"#));
        assert_eq!(twice, "columns[1].name: column A is declared twice");
        assert!(error(&base(r#"{"name": "a", "type": "enum"}"#)).starts_with("columns[0].values: "));
        assert!(error(&base(r#"{"name": "a", "type": "text", "auto": true}"#)).starts_with("columns[0].auto: "));
        assert!(error(&base(r#"{"name": "a", "type": "text", "default": [1]}"#)).starts_with("columns[0].default: "));
    }

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "posts\"; DROP TABLE x; --",
            "a b",
            "posts(x)",
            "_goop_schema",
            "_id",
            "_owner_email",
            "sqlite_master",
            "pragma_table_info",
            "1abc",
            "",
            &"a".repeat(65),
        ] {
            let table =
                serde_json::json!({"name": name, "system_key": true, "columns": [{"name": "a", "type": "text"}]});
            assert!(error(&table.to_string()).starts_with("name: "), "table {name:?}");
            let column =
                serde_json::json!({"name": "t", "system_key": true, "columns": [{"name": name, "type": "text"}]});
            assert!(error(&column.to_string()).starts_with("columns[0].name: "), "column {name:?}");
        }
        let roles = r#"{"name": "t", "system_key": true, "columns": [{"name": "a", "type": "text"}],
                        "roles": {"x') --": {"read": true}}}"#;
        assert!(error(roles).starts_with("roles: "));
    }

    #[test]
    fn defaults_are_literals() {
        let quote = serde_json::json!("it's'); DROP TABLE posts; --");
        assert_eq!(default_literal(&quote).unwrap(), "'it''s''); DROP TABLE posts; --'");
        assert_eq!(default_literal(&serde_json::json!(-1.5)).unwrap(), "-1.5");
        assert_eq!(default_literal(&serde_json::json!(true)).unwrap(), "1");
        assert!(default_literal(&serde_json::json!("a\0b")).is_err());
        assert!(default_literal(&serde_json::json!("x".repeat(MAX_TEXT_BYTES + 1))).is_err());
    }

    #[test]
    fn bounds_of_one_file() {
        let columns: Vec<_> =
            (0..=MAX_COLUMNS).map(|i| serde_json::json!({"name": format!("c{i}"), "type": "text"})).collect();
        let table = serde_json::json!({"name": "t", "system_key": true, "columns": columns});
        assert_eq!(error(&table.to_string()), "columns: at most 64 columns, not 65");
        let roles: serde_json::Map<_, _> = (0..=MAX_ROLES).map(|i| (format!("r{i}"), serde_json::json!({}))).collect();
        let table = serde_json::json!({"name": "t", "system_key": true, "columns": [{"name": "a", "type": "text"}], "roles": roles});
        assert_eq!(error(&table.to_string()), "roles: at most 16 roles");
    }
}
