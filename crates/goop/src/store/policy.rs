//! Who may read and write each table through the data protocol: `site/schema.json`.
//!
//! ```json
//! {"tables": {"games": {"read": "open", "insert": "none", "update": "none", "delete": "none"}}}
//! ```
//!
//! Each of `read`, `insert`, `update`, `delete` is one of:
//! - `open`: anyone, any row;
//! - `own`: a remote caller only their own rows (`_owner` = their peer ID); an insert is
//!   allowed and stamped with their ID;
//! - `owner`: only the peer's owner;
//! - `none`: nobody remote.
//!
//! Defaults, for tables or fields not named: read `open`, insert/update/delete `own`. The
//! peer's owner is never restricted. A missing file means all defaults.
//!
//! Budgets, per remote peer and table (the owner has none), beside the four rules:
//! - `rate_limit`: writes (insert, update, delete) per minute, default 60;
//! - `quota_rows`, `quota_bytes`: rows, and bytes of their non-system columns, that one peer's
//!   rows (`_owner`) may hold, defaults 1000 and 1048576 (1 MB); one update also writes at
//!   most `quota_bytes` in all (rows matched × bytes set), whoever's rows they are.
//!
//! 0 means no limit. `{"scores": {"insert": "own", "rate_limit": 10, "quota_rows": 50}}`

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::error::{SchemaError, StoreError};
use super::schemas::Schemas;

/// The policy file, in the peer folder.
pub const POLICY_FILE: &str = "site/schema.json";
/// Largest `schema.json` accepted.
pub const MAX_POLICY_BYTES: u64 = 256 * 1024;

/// One access rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Open,
    Own,
    Owner,
    None,
    /// goop2's `group`, from a schema file only: nobody remote (see [`super::schemas`]).
    #[serde(skip_deserializing)]
    Group,
    /// goop2's `local`, from a schema file only: nobody remote.
    #[serde(skip_deserializing)]
    Local,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Own => "own",
            Access::Owner => "owner",
            Access::None => "none",
            Access::Group => "group",
            Access::Local => "local",
        }
    }
}

/// Writes per minute per remote peer and table, unless `rate_limit` says otherwise.
pub const DEFAULT_RATE_LIMIT: u32 = 60;
/// Rows one remote peer may own in a table, unless `quota_rows` says otherwise.
pub const DEFAULT_QUOTA_ROWS: u32 = 1000;
/// Bytes one remote peer's rows may hold in a table, unless `quota_bytes` says otherwise.
pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024;

/// The four rules of one table and its per-peer budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePolicy {
    pub read: Access,
    pub insert: Access,
    pub update: Access,
    pub delete: Access,
    /// Writes per minute per remote peer; 0: no limit.
    pub rate_limit: u32,
    /// Rows per remote peer; 0: no limit.
    pub quota_rows: u32,
    /// Bytes of a remote peer's rows; 0: no limit.
    pub quota_bytes: u64,
}

impl Default for TablePolicy {
    fn default() -> Self {
        TablePolicy {
            read: Access::Open,
            insert: Access::Own,
            update: Access::Own,
            delete: Access::Own,
            rate_limit: DEFAULT_RATE_LIMIT,
            quota_rows: DEFAULT_QUOTA_ROWS,
            quota_bytes: DEFAULT_QUOTA_BYTES,
        }
    }
}

/// What an operation is, for choosing the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// The outcome for one caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Any row.
    All,
    /// Only rows whose `_owner` is the caller (for insert: stamped with the caller).
    OwnRows,
    Refused(Access),
}

/// The rules of all tables, from `schema.json`.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// Keyed by lower-case table name: SQLite names are case-insensitive.
    tables: HashMap<String, TablePolicy>,
    /// The access fields schema.json sets, per table (lower-case): a schema file's table may
    /// not have any.
    access_fields: HashMap<String, Vec<&'static str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tables: HashMap<String, Given>,
}

/// One table's entry as written: what it leaves out is the default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Given {
    read: Option<Access>,
    insert: Option<Access>,
    update: Option<Access>,
    delete: Option<Access>,
    rate_limit: Option<u32>,
    quota_rows: Option<u32>,
    quota_bytes: Option<u64>,
}

impl Given {
    /// The access fields it sets, by name.
    fn access_fields(&self) -> Vec<&'static str> {
        let fields = [("read", self.read), ("insert", self.insert), ("update", self.update), ("delete", self.delete)];
        fields.into_iter().filter(|(_, a)| a.is_some()).map(|(name, _)| name).collect()
    }

    fn policy(&self) -> TablePolicy {
        let d = TablePolicy::default();
        TablePolicy {
            read: self.read.unwrap_or(d.read),
            insert: self.insert.unwrap_or(d.insert),
            update: self.update.unwrap_or(d.update),
            delete: self.delete.unwrap_or(d.delete),
            rate_limit: self.rate_limit.unwrap_or(d.rate_limit),
            quota_rows: self.quota_rows.unwrap_or(d.quota_rows),
            quota_bytes: self.quota_bytes.unwrap_or(d.quota_bytes),
        }
    }
}

impl Policies {
    /// Reads `path`; all defaults if it does not exist. Errors name the file and the field.
    pub fn load(path: &Path) -> Result<Policies, StoreError> {
        let text = match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_POLICY_BYTES => {
                return Err(StoreError::FileTooLarge { path: path.into(), max: MAX_POLICY_BYTES })
            }
            Ok(_) => std::fs::read_to_string(path).map_err(|source| StoreError::Read { path: path.into(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Policies::default()),
            Err(source) => return Err(StoreError::Read { path: path.into(), source }),
        };
        Policies::parse(&text).map_err(|message| StoreError::Policy { path: path.into(), message })
    }

    /// Parses the JSON text; the error names the field, e.g. `tables.games.read: unknown variant …`.
    pub fn parse(text: &str) -> Result<Policies, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            }
        })?;
        let mut policies = Policies::default();
        for (name, given) in file.tables {
            let name = name.to_ascii_lowercase();
            policies.access_fields.insert(name.clone(), given.access_fields());
            policies.tables.insert(name, given.policy());
        }
        Ok(policies)
    }

    /// These policies with the access of the schema files' tables, and the complaints about
    /// access fields schema.json gives for those tables (ignored: the schema file's win).
    pub fn with_schemas(&self, schemas: &Schemas) -> (Policies, Vec<SchemaError>) {
        let mut merged = self.clone();
        let mut complaints = Vec::new();
        for (file, table) in schemas.files() {
            let key = table.name.to_ascii_lowercase();
            for field in merged.access_fields.remove(&key).unwrap_or_default() {
                let message = format!(
                    "tables.{}.{field}: ignored, the table's access is in {file}; schema.json may give it only \
                     rate_limit, quota_rows and quota_bytes",
                    table.name
                );
                complaints.push(SchemaError::Table { file: POLICY_FILE.to_string(), message });
            }
            let [read, insert, update, delete] = table.access.policies();
            let budgets = self.tables.get(&key).copied().unwrap_or_default();
            merged.tables.insert(key, TablePolicy { read, insert, update, delete, ..budgets });
        }
        for name in schemas.orphans() {
            let key = name.to_ascii_lowercase();
            let budgets = self.tables.get(&key).copied().unwrap_or_default();
            let local = Access::Local;
            merged
                .tables
                .insert(key, TablePolicy { read: local, insert: local, update: local, delete: local, ..budgets });
        }
        (merged, complaints)
    }

    /// The rules of `table`.
    pub fn table(&self, table: &str) -> TablePolicy {
        self.tables.get(&table.to_ascii_lowercase()).copied().unwrap_or_default()
    }

    /// What `op` on `table` may do for a caller; `is_owner` when the caller is the peer's owner.
    pub fn decide(&self, table: &str, op: Op, is_owner: bool) -> Decision {
        if is_owner {
            return Decision::All;
        }
        let rules = self.table(table);
        let access = match op {
            Op::Read => rules.read,
            Op::Insert => rules.insert,
            Op::Update => rules.update,
            Op::Delete => rules.delete,
        };
        match access {
            Access::Open => Decision::All,
            Access::Own => Decision::OwnRows,
            refused @ (Access::Owner | Access::None | Access::Group | Access::Local) => Decision::Refused(refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let p = Policies::parse(r#"{"tables":{"Games":{"insert":"none"}}}"#).unwrap();
        assert_eq!(p.decide("games", Op::Read, false), Decision::All);
        assert_eq!(p.decide("GAMES", Op::Insert, false), Decision::Refused(Access::None));
        assert_eq!(p.decide("games", Op::Update, false), Decision::OwnRows);
        assert_eq!(p.decide("games", Op::Insert, true), Decision::All);
        assert_eq!(p.decide("other", Op::Delete, false), Decision::OwnRows);
        assert_eq!(p.table("games").rate_limit, DEFAULT_RATE_LIMIT);
        let p = Policies::parse(r#"{"tables":{"s":{"rate_limit":5,"quota_rows":0,"quota_bytes":10}}}"#).unwrap();
        assert_eq!((p.table("s").rate_limit, p.table("s").quota_rows, p.table("s").quota_bytes), (5, 0, 10));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Policies::parse(r#"{"tables":{"games":{"read":"opne"}}}"#).unwrap_err();
        assert!(e.starts_with("tables.games.read: unknown variant `opne`"), "{e}");
        let e = Policies::parse(r#"{"tables":{"games":{"raed":"open"}}}"#).unwrap_err();
        assert!(e.contains("tables.games") && e.contains("unknown field `raed`"), "{e}");
        let e = Policies::parse(r#"{"table":{}}"#).unwrap_err();
        assert!(e.contains("unknown field `table`"), "{e}");
        assert!(Policies::parse("[").is_err());
        let e = Policies::parse(r#"{"tables":{"s":{"rate_limit":-1}}}"#).unwrap_err();
        assert!(e.starts_with("tables.s.rate_limit: invalid value"), "{e}");
    }

    #[test]
    fn schema_files_give_access_and_schema_json_only_budgets() {
        let file =
            Policies::parse(r#"{"tables": {"posts": {"read": "none", "quota_rows": 5}, "todos": {"rate_limit": 7}}}"#)
                .unwrap();
        let table = |name: &str, access: &str| {
            let text = format!(
                r#"{{"name": "{name}", "system_key": true, "columns": [{{"name": "a", "type": "text"}}], "access": {access}}}"#
            );
            (format!("site/schemas/{name}.json"), crate::store::schemas::format::parse(&text).unwrap())
        };
        let schemas = Schemas::new(
            vec![
                table("posts", r#"{"read": "open", "insert": "owner", "update": "group", "delete": "local"}"#),
                table("todos", r#"{"read": "owner", "insert": "open", "update": "open", "delete": "owner"}"#),
            ],
            vec!["gone".into()],
        );
        let (merged, complaints) = file.with_schemas(&schemas);
        assert_eq!(merged.decide("posts", Op::Read, false), Decision::All);
        assert_eq!(merged.decide("posts", Op::Insert, false), Decision::Refused(Access::Owner));
        assert_eq!(merged.decide("posts", Op::Update, false), Decision::Refused(Access::Group));
        assert_eq!(merged.decide("POSTS", Op::Delete, false), Decision::Refused(Access::Local));
        assert_eq!(merged.decide("posts", Op::Delete, true), Decision::All);
        assert_eq!(merged.decide("todos", Op::Read, false), Decision::OwnRows);
        assert_eq!(merged.decide("todos", Op::Insert, false), Decision::All);
        assert_eq!((merged.table("posts").quota_rows, merged.table("todos").rate_limit), (5, 7));
        // A table whose file was removed is nobody's but the owner's.
        assert_eq!(merged.decide("gone", Op::Read, false), Decision::Refused(Access::Local));
        let complaints: Vec<String> = complaints.iter().map(ToString::to_string).collect();
        assert_eq!(
            complaints,
            ["site/schema.json: tables.posts.read: ignored, the table's access is in site/schemas/posts.json; \
              schema.json may give it only rate_limit, quota_rows and quota_bytes"]
        );
        // group and local are a schema file's words, not schema.json's.
        assert!(Policies::parse(r#"{"tables": {"t": {"read": "group"}}}"#).is_err());
        assert!(Policies::parse(r#"{"tables": {"t": {"read": "local"}}}"#).is_err());
    }
}
