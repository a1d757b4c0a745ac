//! Making the database match the schema files: tables created as goop2 creates them, new
//! columns added, and a registry (`_goop_orm_schemas`) of which tables came from which file.
//!
//! A table is created with goop2's system columns first, then the declared ones:
//!
//! ```sql
//! CREATE TABLE "posts" (
//!   "_id" INTEGER PRIMARY KEY AUTOINCREMENT, "_owner" TEXT NOT NULL, "_owner_email" TEXT DEFAULT '',
//!   "_created_at" DATETIME DEFAULT CURRENT_TIMESTAMP, "_updated_at" DATETIME DEFAULT CURRENT_TIMESTAMP,
//!   "title" TEXT NOT NULL, "published" INTEGER DEFAULT 1)
//! ```
//!
//! (`required` and `key` are NOT NULL, `default` the DEFAULT, types as [`super::ColumnType::sql`]).
//! An existing table from a schema file gets the file's new columns (`ALTER TABLE … ADD
//! COLUMN`); nothing else about it changes: columns left out of the file stay with their data,
//! a column's type cannot change (an error), and a changed `required`/`default` of an existing
//! column changes the description (what the ORM checks and fills in), not the table.
//!
//! A table that exists but did not come from a schema file (`schema.sql` made it, or the owner
//! by hand) is never taken over: that is an error naming the file, and nothing is applied.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::format::{default_literal, ColumnSchema, TableSchema};
use crate::store::error::{SchemaError, StoreError};
use crate::store::schema;

/// The registry: every table made from a schema file, and that file's schema while it is in
/// the folder (`schema` NULL once the file is gone; the table and its rows stay).
pub const REGISTRY: &str = "
CREATE TABLE IF NOT EXISTS _goop_orm_schemas (
    name   TEXT PRIMARY KEY COLLATE NOCASE,
    file   TEXT,
    schema TEXT
);";

/// The system columns of a table from a schema file, as goop2 declares them.
const SYSTEM_COLUMNS_SQL: &str = "\"_id\" INTEGER PRIMARY KEY AUTOINCREMENT, \"_owner\" TEXT NOT NULL, \
    \"_owner_email\" TEXT DEFAULT '', \"_created_at\" DATETIME DEFAULT CURRENT_TIMESTAMP, \
    \"_updated_at\" DATETIME DEFAULT CURRENT_TIMESTAMP";

/// `CREATE TABLE` for `table`. Names are checked identifiers; defaults are literals.
pub fn create_sql(table: &TableSchema) -> String {
    let columns: Vec<String> = table.columns.iter().map(column_sql).collect();
    format!("CREATE TABLE \"{}\" ({SYSTEM_COLUMNS_SQL}, {})", table.name, columns.join(", "))
}

fn column_sql(column: &ColumnSchema) -> String {
    let mut sql = format!("\"{}\" {}", column.name, column.kind.sql());
    if column.required || column.key {
        sql += " NOT NULL";
    }
    if let Some(default) = column.default.as_ref().and_then(|d| default_literal(d).ok()) {
        sql += &format!(" DEFAULT {default}");
    }
    sql
}

/// The tables the registry holds a current schema for, with their files. A row that no
/// longer parses (written by another version) is skipped with a warning.
pub fn registered(conn: &Connection) -> Result<Vec<(String, TableSchema)>, StoreError> {
    conn.execute_batch(REGISTRY)?;
    let mut stmt = conn.prepare("SELECT file, schema FROM _goop_orm_schemas WHERE schema IS NOT NULL ORDER BY file")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (file, text) = row?;
        match serde_json::from_str::<TableSchema>(&text) {
            Ok(table) => out.push((file, table)),
            Err(e) => tracing::warn!("{file}: the stored schema does not parse ({e}); re-read from the file"),
        }
    }
    Ok(out)
}

/// Applies `tables` (file, schema) in one transaction: all of it, or (on an error) nothing.
pub fn apply(conn: &mut Connection, tables: &[(String, TableSchema)]) -> Result<(), StoreError> {
    conn.execute_batch(REGISTRY)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (file, table) in tables {
        let error = |message: String| StoreError::from(SchemaError::Table { file: file.clone(), message });
        let registered: Option<String> = tx
            .query_row("SELECT name FROM _goop_orm_schemas WHERE name = ?", [&table.name], |r| r.get(0))
            .optional()?;
        match schema::table(&tx, &table.name)? {
            None => {
                tx.execute_batch(&create_sql(table))?;
                tracing::info!("{file}: created table {}", table.name);
            }
            Some((name, _)) if registered.is_none() => {
                return Err(error(format!(
                    "name: table {name} already exists, made by {} or by hand; a table is defined in one \
                     place: remove it from one of them (or drop the table)",
                    schema::FILE
                )))
            }
            Some((name, existing)) => {
                for (i, column) in table.columns.iter().enumerate() {
                    match existing.iter().find(|c| c.name.eq_ignore_ascii_case(&column.name)) {
                        Some(have) if !have.decl_type.eq_ignore_ascii_case(column.kind.sql()) => {
                            return Err(error(format!(
                                "columns[{i}].type: column {} of table {name} is {} in the database; a column's \
                                 type cannot change (keep it, or add a column under a new name)",
                                column.name,
                                if have.decl_type.is_empty() { "untyped" } else { &have.decl_type }
                            )));
                        }
                        Some(_) => {}
                        None if (column.required || column.key) && column.default.is_none() => {
                            return Err(error(format!(
                                "columns[{i}].default: {} is added to table {name}, which has rows maybe; a \
                                 required column added later needs a default",
                                column.name
                            )));
                        }
                        None => {
                            tx.execute_batch(&format!("ALTER TABLE \"{name}\" ADD COLUMN {}", column_sql(column)))?;
                            tracing::info!("{file}: added column {} to table {name}", column.name);
                        }
                    }
                }
            }
        }
        let json = serde_json::to_string(table).map_err(|e| error(e.to_string()))?;
        tx.execute(
            "INSERT INTO _goop_orm_schemas (name, file, schema) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET file = ?2, schema = ?3",
            rusqlite::params![table.name, file, json],
        )?;
    }
    // Files gone: their tables stay, without a current schema. Tables gone: forgotten.
    let mut current = tx.prepare("SELECT name FROM _goop_orm_schemas")?;
    let names = current.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    drop(current);
    for name in names {
        if !tables.iter().any(|(_, t)| t.name.eq_ignore_ascii_case(&name)) {
            tx.execute("UPDATE _goop_orm_schemas SET schema = NULL WHERE name = ?", [&name])?;
        }
        if schema::table(&tx, &name)?.is_none() {
            tx.execute("DELETE FROM _goop_orm_schemas WHERE name = ?", [&name])?;
        }
    }
    schema::index_owners(&tx)?;
    tx.commit()?;
    Ok(())
}

/// Tables made from a schema file that is no longer in the folder.
pub fn orphans(conn: &Connection) -> Result<Vec<String>, StoreError> {
    conn.execute_batch(REGISTRY)?;
    let mut stmt = conn.prepare("SELECT name FROM _goop_orm_schemas WHERE schema IS NULL ORDER BY name")?;
    let names = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

/// The names of every table made from a schema file that still exists (its file present or
/// not), with the file: `schema.sql` may not create them.
pub fn made_from_files(conn: &Connection) -> Result<Vec<(String, Option<String>)>, StoreError> {
    conn.execute_batch(REGISTRY)?;
    let mut stmt = conn.prepare(
        "SELECT name, file FROM _goop_orm_schemas \
         WHERE name IN (SELECT name FROM sqlite_schema WHERE type = 'table')",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
