//! The peer's SQLite store: schema, system columns, access policies, the data protocol's table operations, goop.db.
//!
//! One database per peer folder, `DIR/data.db`, in WAL mode. At open, goop's internal tables
//! (`_goop_*`) are created, the tables of `site/schemas/*.json` made ([`schemas`], goop2's
//! format) and the site's `site/schema.sql` applied (idempotently, see [`schema`]);
//! `site/schema.json` gives the tables' access policies ([`policy`]), a schema file its own
//! table's.
//!
//! Four ways in, all blocking (call them off the async runtime's workers):
//! - [`Store::data_request`]: the data protocol's table ops (`tables`, `describe`, `query`,
//!   `insert`, `update`, `delete` and goop2's: `query-one`, `count`, `pluck`, `upsert` …) for
//!   a caller peer ID ([`data`] over the operations layer [`orm`]), `own` rows through [`own`]'s views,
//!   a remote caller's spending through [`budget`];
//! - [`DbModule`]: `goop.db` for data functions ([`db`], [`script`]);
//! - [`OrmModule`], [`ExprModule`], [`ConfigModule`]: `goop.orm`, `goop.expr` and `goop.config` for data functions, over the
//!   same operations as the data protocol ([`orm`]);
//! - [`Store::save_message`] / [`Store::inbox`]: chat messages that are not commands, at most
//!   [`MAX_PER_SENDER`] per sender.
//!
//! User tables carry the system columns `_id INTEGER PRIMARY KEY AUTOINCREMENT`, `_owner`,
//! `_created_at` and `_updated_at`, declared by the site's schema (as in the spec's). The data
//! protocol stamps them and refuses to write a table that lacks any of them; reading such a
//! table is allowed where its policy does not need `_owner`.
//!
//! `schema.sql`, `schema.json` and the schema folder are looked at again (one `stat` each, a
//! listing for the folder) before every request and `goop.db` statement: when one changed — an
//! installed template, the owner's edit — it is re-applied or re-read, without a restart.
//!
//! A broken `schema.sql` or schema file does not stop the peer: nothing of it is applied, the
//! tables stay as they were, and [`Store::schema_error`] says why (the dashboard and `goop
//! check` show it). It is logged when it changes, not on every request.

pub mod budget;
pub mod data;
pub mod db;
mod error;
mod functions;
pub mod guard;
pub mod orm;
pub mod own;
pub mod policy;
mod pool;
pub mod request;
pub mod schema;
pub mod schemas;
pub mod script;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

pub use db::DbModule;
pub use error::{SchemaError, StoreError};
pub use orm::lua::{ConfigModule, ExprModule, OrmModule};
pub use policy::{Access, Policies, TablePolicy, POLICY_FILE};
pub use schemas::{ColumnSchema, ColumnType, Level, Schemas, TableAccess, TableSchema};
pub use script::{Rows, Want};

use budget::Budgets;
use pool::Pool;
use schemas::folder;

/// The database file in a peer folder.
pub const DB_FILE: &str = "data.db";
/// Messages kept in the inbox; older ones are dropped as new ones arrive.
pub const MAX_INBOX: i64 = 10_000;
/// Messages kept per sender: past it, that sender's oldest go first, so a flood from one
/// peer never pushes out another's.
pub const MAX_PER_SENDER: i64 = 200;
/// Time an inbox operation may wait for a connection and the write lock.
const INBOX_TIME: Duration = Duration::from_secs(5);

/// A message kept in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    /// The sender's peer ID, as the transport authenticated it.
    pub from_peer: String,
    /// The sender's display label: text only, never identity.
    pub from_label: String,
    pub content: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub received_at: String,
}

/// How the log reads when `schema.sql` is not applied.
pub fn not_applied(error: &SchemaError) -> String {
    format!("{error} (schema not applied: the tables stay as they were until it is fixed)")
}

/// A peer's store. Cheap to clone; all clones share the connections.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    /// What remote peers may still spend on table operations.
    budgets: Budgets,
    /// The peer's own ID: the one caller no policy restricts.
    owner: String,
    /// `schema.json`'s policies, as last read.
    file_policies: RwLock<Arc<Policies>>,
    /// Those with the schema files' access: what requests are judged by.
    policies: RwLock<Arc<Policies>>,
    /// The schema files in force.
    schemas: RwLock<Arc<Schemas>>,
    path: PathBuf,
    /// The peer folder, where `site/schema.sql`, `site/schema.json` and `site/schemas/` live.
    dir: PathBuf,
    /// What those looked like when last applied, and how to look at the folder again.
    seen: Mutex<(Stamp, folder::Watch)>,
    errors: Mutex<Errors>,
}

/// Why the store's configuration is not (all) in force.
#[derive(Debug, Default)]
struct Errors {
    /// Why the last `schema.sql` was not applied.
    schema: Option<SchemaError>,
    /// Why the last version of the schema folder was not applied.
    tables: Option<SchemaError>,
    /// schema.json's access fields for schema files' tables, ignored.
    conflicts: Vec<SchemaError>,
}

fn read<T: ?Sized>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write<T: ?Sized>(lock: &RwLock<Arc<T>>) -> std::sync::RwLockWriteGuard<'_, Arc<T>> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Modification time and length of `schema.sql` and `schema.json` (`None`: missing), and
/// what the schema folder looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    schema: Option<(SystemTime, u64)>,
    policies: Option<(SystemTime, u64)>,
    tables: folder::Stamp,
}

fn stamp(dir: &Path, watch: &mut folder::Watch) -> Stamp {
    let of = |file: &str| {
        let meta = std::fs::metadata(dir.join(file)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Stamp { schema: of(schema::FILE), policies: of(POLICY_FILE), tables: watch.stamp(dir) }
}

/// How the log reads when the schema files are not applied.
fn tables_not_applied(error: &SchemaError) -> String {
    format!("{error} (schema files not applied: the tables and their access stay as they were until it is fixed)")
}

/// Makes the database match the schema folder; the schemas now in force, or why not.
fn apply_folder(conn: &mut rusqlite::Connection, dir: &Path) -> Result<Schemas, StoreError> {
    let tables = folder::load(dir)?;
    schemas::apply::apply(conn, &tables)?;
    Ok(Schemas::new(tables, schemas::apply::orphans(conn)?))
}

impl Store {
    /// Opens (or creates) `peer_dir/data.db`, creates the tables of `peer_dir/site/schemas/`,
    /// applies `peer_dir/site/schema.sql` and reads `peer_dir/site/schema.json`. `owner_id` is
    /// the peer's own ID. A broken schema file or `schema.sql` is not an error here: see
    /// [`Store::schema_error`].
    pub fn open(peer_dir: &Path, owner_id: &str) -> Result<Store, StoreError> {
        let path = peer_dir.join(DB_FILE);
        let mut watch = folder::Watch::default();
        let seen = stamp(peer_dir, &mut watch);
        let file_policies = Policies::load(&peer_dir.join(POLICY_FILE))?;
        let mut setup = pool::connect(&path)?;
        let mode: String = setup
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("{}: journal mode is {mode}, not WAL", path.display());
        }
        schema::internal_tables(&setup)?;
        // The last schemas that applied stay in force while the files are broken.
        let (schemas, tables_error) = match apply_folder(&mut setup, peer_dir) {
            Ok(schemas) => (schemas, None),
            Err(StoreError::Schema(e)) => {
                let last = Schemas::new(schemas::apply::registered(&setup)?, schemas::apply::orphans(&setup)?);
                (last, Some(e))
            }
            Err(e) => return Err(e),
        };
        let schema_error = match schema::setup(&mut setup, peer_dir, &schemas) {
            Ok(()) => None,
            Err(StoreError::Schema(e)) => Some(e),
            Err(e) => return Err(e),
        };
        drop(setup);
        let (policies, conflicts) = file_policies.with_schemas(&schemas);
        let pool = Pool::open(&path)?;
        let inner = Inner {
            pool,
            budgets: Budgets::default(),
            owner: owner_id.to_string(),
            file_policies: RwLock::new(Arc::new(file_policies)),
            policies: RwLock::new(Arc::new(policies)),
            schemas: RwLock::new(Arc::new(schemas)),
            path,
            dir: peer_dir.to_path_buf(),
            seen: Mutex::new((seen, watch)),
            errors: Mutex::new(Errors { schema: schema_error, tables: tables_error, conflicts }),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Re-applies the schema files and `schema.sql`, and re-reads `schema.json`, if any of them
    /// changed since last time, and logs the outcome: once per change. A broken `schema.json`
    /// leaves the previous policies in force; a broken schema file or `schema.sql` leaves the
    /// tables (and the schema files' access) as they were.
    pub fn refresh(&self) {
        let mut seen = self.inner.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (last, watch) = &mut *seen;
        let now = stamp(&self.inner.dir, watch);
        if *last == now {
            return;
        }
        let before = std::mem::replace(last, now.clone());
        let mut errors = self.inner.errors.lock().unwrap_or_else(|p| p.into_inner());
        let mut policies_changed = false;
        if before.policies != now.policies {
            match Policies::load(&self.inner.dir.join(POLICY_FILE)) {
                Ok(policies) => {
                    *write(&self.inner.file_policies) = Arc::new(policies);
                    policies_changed = true;
                    tracing::info!("{POLICY_FILE}: access policies reloaded");
                }
                Err(e) => tracing::warn!("{e}; the previous access policies stay in force"),
            }
        }
        let mut conn = match pool::connect(&self.inner.path) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("cannot apply the schema now: {e}");
                // Looked at again at the next request.
                *last = before;
                return;
            }
        };
        if before.tables != now.tables {
            match apply_folder(&mut conn, &self.inner.dir) {
                Ok(schemas) => {
                    tracing::info!("{}: applied", folder::DIR);
                    *write(&self.inner.schemas) = Arc::new(schemas);
                    errors.tables = None;
                    policies_changed = true;
                }
                Err(StoreError::Schema(e)) => {
                    tracing::warn!("{}", tables_not_applied(&e));
                    errors.tables = Some(e);
                }
                Err(e) => {
                    tracing::warn!("{}: cannot apply it now: {e}", folder::DIR);
                    last.tables = folder::Stamp::unknown();
                }
            }
        }
        if policies_changed {
            let (policies, conflicts) = read(&self.inner.file_policies).with_schemas(&read(&self.inner.schemas));
            for complaint in &conflicts {
                tracing::warn!("{complaint}");
            }
            *write(&self.inner.policies) = Arc::new(policies);
            errors.conflicts = conflicts;
        }
        // The schema files' tables are on its scratch run: look again when they changed too.
        if before.schema != now.schema || before.tables != now.tables {
            match schema::setup(&mut conn, &self.inner.dir, &read(&self.inner.schemas)) {
                Ok(()) => {
                    if errors.schema.take().is_some() || before.schema != now.schema {
                        tracing::info!("{}: applied", schema::FILE);
                    }
                }
                Err(StoreError::Schema(e)) => {
                    tracing::warn!("{}", not_applied(&e));
                    errors.schema = Some(e);
                }
                Err(e) => tracing::warn!("{}: cannot apply it now: {e}", schema::FILE),
            }
        }
    }

    /// Why `schema.sql` or the schema files are not applied (or schema.json's access fields
    /// for a schema file's table are ignored), as of now (after [`Store::refresh`]); `None`
    /// when all is applied.
    pub fn schema_error(&self) -> Option<SchemaError> {
        self.refresh();
        let errors = self.inner.errors.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<SchemaError> =
            errors.schema.iter().chain(errors.tables.iter()).chain(errors.conflicts.iter()).cloned().collect();
        match all.len() {
            0 => None,
            1 => all.pop(),
            _ => Some(SchemaError::Several(all)),
        }
    }

    /// The tables of `site/schemas/*.json` in force, as of now (after [`Store::refresh`]):
    /// their typed descriptions.
    pub fn schemas(&self) -> Arc<Schemas> {
        self.refresh();
        read(&self.inner.schemas)
    }

    /// [`Store::schemas`] as last read, for work that has just refreshed.
    pub(crate) fn schemas_as_read(&self) -> Arc<Schemas> {
        read(&self.inner.schemas)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The peer's own ID.
    pub fn owner_id(&self) -> &str {
        &self.inner.owner
    }

    /// The access policies from `schema.json` and the schema files, as last read.
    pub fn policies(&self) -> Arc<Policies> {
        read(&self.inner.policies)
    }

    /// Keeps a direct message that was not a command. The inbox keeps the last
    /// [`MAX_PER_SENDER`] of each sender and the last [`MAX_INBOX`] in all.
    pub fn save_message(&self, from: &str, label: &str, content: &str) -> Result<(), StoreError> {
        let conn = self.inner.pool.get(Instant::now() + INBOX_TIME)?;
        conn.busy_timeout(INBOX_TIME)?;
        let tx = rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO _goop_inbox (from_peer, from_label, content, received_at) \
             VALUES (?, ?, ?, strftime('%Y-%m-%d %H:%M:%S', 'now'))",
        )?
        .execute([from, label, content])?;
        // Both through indexes: (from_peer, id) and id.
        tx.prepare_cached(
            "DELETE FROM _goop_inbox WHERE from_peer = ?1 AND id <= \
             (SELECT id FROM _goop_inbox WHERE from_peer = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(rusqlite::params![from, MAX_PER_SENDER])?;
        tx.prepare_cached(
            "DELETE FROM _goop_inbox WHERE id <= (SELECT id FROM _goop_inbox ORDER BY id DESC LIMIT 1 OFFSET ?)",
        )?
        .execute([MAX_INBOX])?;
        tx.commit()?;
        Ok(())
    }

    /// The last `limit` messages, oldest first.
    pub fn inbox(&self, limit: usize) -> Result<Vec<Message>, StoreError> {
        let conn = self.inner.pool.get(Instant::now() + INBOX_TIME)?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, from_peer, from_label, content, received_at FROM \
             (SELECT * FROM _goop_inbox ORDER BY id DESC LIMIT ?) ORDER BY id",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let messages = stmt
            .query_map([limit], |r| {
                Ok(Message {
                    id: r.get(0)?,
                    from_peer: r.get(1)?,
                    from_label: r.get(2)?,
                    content: r.get(3)?,
                    received_at: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(messages)
    }
}
