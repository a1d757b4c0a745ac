//! The peer's SQLite store: schema, system columns, access policies, the data protocol's table operations, goop.db.
