//! Tables from `site/schemas/*.json`, in goop2's format: the tables they create, the access
//! they give, and their typed description for the ORM and the data protocol.
//!
//! ```json
//! {"name": "posts", "system_key": true,
//!  "columns": [{"name": "title", "type": "text", "required": true},
//!              {"name": "published", "type": "integer", "default": 1}],
//!  "access": {"read": "open", "insert": "owner", "update": "owner", "delete": "owner"},
//!  "roles": {"coauthor": {"read": true, "insert": true}}}
//! ```
//!
//! The format is [`mod@format`]'s; the folder is read by [`folder`] (bounded: [`folder::MAX_FILES`]
//! files of at most [`folder::MAX_FILE_BYTES`], [`format::MAX_COLUMNS`] columns a table), and
//! [`apply`] creates the tables, with goop2's system columns `_id`, `_owner`, `_owner_email`,
//! `_created_at`, `_updated_at`.
//!
//! ## Access, mapped onto goop's policies ([`super::policy`])
//!
//! | goop2 | read | insert / update / delete |
//! | --- | --- | --- |
//! | `open` | `open`: any peer, every row | `open`: any peer (update/delete: any row) |
//! | `owner` | `own`: a remote peer reads only rows it owns (goop2 scopes `owner` reads so) | `owner`: only this peer's owner |
//! | `group` | refused to every remote peer | refused to every remote peer |
//! | `local` | refused to every remote peer | refused to every remote peer |
//!
//! goop's groups (`goop.group`) carry no roles, and anyone may join a group unless the host's
//! `on_group_join` refuses, so membership proves nothing a table could rely on: `group` is the
//! strictest reading, only this peer (its owner's commands, pages and scripts). `roles` are kept
//! in the description but grant nothing yet. The owner is never restricted, whatever the level.
//!
//! A table whose schema file is removed keeps its rows and is `local` for every operation until
//! the file is back (or the owner drops the table): removing a file never opens a table.
//!
//! The per-peer budgets (`rate_limit`, `quota_rows`, `quota_bytes`) of such a table are the
//! defaults unless `site/schema.json` names the table with only those fields; an access field
//! there for a table of a schema file is reported (see [`Store::schema_error`]) and ignored.
//!
//! [`Store::schema_error`]: super::Store::schema_error

pub mod apply;
pub mod folder;
pub mod format;

use std::collections::BTreeMap;

pub use format::{ColumnSchema, ColumnType, EnumValue, Level, RoleAccess, TableAccess, TableSchema};

use super::policy::Access;

/// The schemas in force: the last version of the folder that applied. Keyed by lower-case
/// table name (SQLite's names are case-insensitive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schemas {
    tables: BTreeMap<String, (String, TableSchema)>,
    /// Tables made from a schema file that is gone: nobody remote may use them.
    orphans: Vec<String>,
}

impl Schemas {
    /// From (file, schema) pairs, as [`folder::load`] or [`apply::registered`] give them, and
    /// the tables whose files are gone ([`apply::orphans`]).
    pub fn new(tables: Vec<(String, TableSchema)>, orphans: Vec<String>) -> Schemas {
        let tables = tables.into_iter().map(|(file, t)| (t.name.to_ascii_lowercase(), (file, t))).collect();
        Schemas { tables, orphans }
    }

    /// Tables made from a schema file that was removed: they keep their rows, and are refused
    /// to every remote peer (as `local`) until the file is back or the table is dropped.
    pub fn orphans(&self) -> &[String] {
        &self.orphans
    }

    /// The description of `table` (any case), if a schema file defines it.
    pub fn table(&self, table: &str) -> Option<&TableSchema> {
        self.tables.get(&table.to_ascii_lowercase()).map(|(_, t)| t)
    }

    /// The file that defines `table`, relative to the peer folder (`site/schemas/posts.json`).
    pub fn file_of(&self, table: &str) -> Option<&str> {
        self.tables.get(&table.to_ascii_lowercase()).map(|(file, _)| file.as_str())
    }

    /// Every table's description, in table-name order.
    pub fn tables(&self) -> impl Iterator<Item = &TableSchema> {
        self.tables.values().map(|(_, t)| t)
    }

    /// (file, schema) of every table, in table-name order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &TableSchema)> {
        self.tables.values().map(|(file, t)| (file.as_str(), t))
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

impl TableAccess {
    /// goop's rules for read, insert, update and delete (see the module docs).
    pub fn policies(&self) -> [Access; 4] {
        let read = match self.read {
            Level::Open => Access::Open,
            Level::Owner => Access::Own,
            Level::Group => Access::Group,
            Level::Local => Access::Local,
        };
        let write = |level| match level {
            Level::Open => Access::Open,
            Level::Owner => Access::Owner,
            Level::Group => Access::Group,
            Level::Local => Access::Local,
        };
        [read, write(self.insert), write(self.update), write(self.delete)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goop2_levels_map_onto_goops_policies() {
        let access =
            TableAccess { read: Level::Owner, insert: Level::Open, update: Level::Group, delete: Level::Local };
        assert_eq!(access.policies(), [Access::Own, Access::Open, Access::Group, Access::Local]);
        let access = TableAccess { read: Level::Open, insert: Level::Owner, update: Level::Open, delete: Level::Owner };
        assert_eq!(access.policies(), [Access::Open, Access::Owner, Access::Open, Access::Owner]);
        assert_eq!(
            TableAccess::goop2_default().policies(),
            [Access::Open, Access::Owner, Access::Owner, Access::Owner]
        );
    }
}
