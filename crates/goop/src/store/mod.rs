//! The peer's SQLite store: schema, system columns, access policies, the data protocol's table operations, goop.db.
//!
//! One database per peer folder, `DIR/data.db`, in WAL mode. At open, goop's internal tables
//! (`_goop_*`) are created and the site's `site/schema.sql` is applied (idempotently, see
//! [`schema`]); `site/schema.json` gives the tables' access policies ([`policy`]).
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
//! `schema.sql` and `schema.json` are looked at again (one `stat` each) before every request and
//! `goop.db` statement: when either changed — an installed template, the owner's edit — it is
//! re-applied or re-read, without a restart.
//!
//! A broken `schema.sql` does not stop the peer: nothing of it is applied, the tables stay as
//! they were, and [`Store::schema_error`] says why (the dashboard and `goop check` show it).
//! It is logged when it changes, not on every request.

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
pub mod script;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

pub use db::DbModule;
pub use error::{SchemaError, StoreError};
pub use orm::lua::{ConfigModule, ExprModule, OrmModule};
pub use policy::{Access, Policies, TablePolicy};
pub use script::{Rows, Want};

use budget::Budgets;
use pool::Pool;

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
    policies: RwLock<Arc<Policies>>,
    path: PathBuf,
    /// The peer folder, where `site/schema.sql` and `site/schema.json` live.
    dir: PathBuf,
    /// What those two files looked like when last applied.
    seen: Mutex<Stamp>,
    /// Why the last `schema.sql` was not applied.
    schema_error: Mutex<Option<SchemaError>>,
}

/// The policy file, in the peer folder.
const POLICY_FILE: &str = "site/schema.json";

/// Modification time and length of `schema.sql` and `schema.json` (`None`: missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    schema: Option<(SystemTime, u64)>,
    policies: Option<(SystemTime, u64)>,
}

fn stamp(dir: &Path) -> Stamp {
    let of = |file: &str| {
        let meta = std::fs::metadata(dir.join(file)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Stamp { schema: of(schema::FILE), policies: of(POLICY_FILE) }
}

impl Store {
    /// Opens (or creates) `peer_dir/data.db`, applies `peer_dir/site/schema.sql` and reads
    /// `peer_dir/site/schema.json`. `owner_id` is the peer's own ID. A broken `schema.sql` is
    /// not an error here: see [`Store::schema_error`].
    pub fn open(peer_dir: &Path, owner_id: &str) -> Result<Store, StoreError> {
        let path = peer_dir.join(DB_FILE);
        let seen = stamp(peer_dir);
        let policies = Policies::load(&peer_dir.join(POLICY_FILE))?;
        let schema_error = {
            let mut setup = pool::connect(&path)?;
            let mode: String = setup
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|source| StoreError::Open { path: path.clone(), source })?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!("{}: journal mode is {mode}, not WAL", path.display());
            }
            match schema::setup(&mut setup, peer_dir) {
                Ok(()) => None,
                Err(StoreError::Schema(e)) => Some(e),
                Err(e) => return Err(e),
            }
        };
        let pool = Pool::open(&path)?;
        let policies = RwLock::new(Arc::new(policies));
        let inner = Inner {
            pool,
            budgets: Budgets::default(),
            owner: owner_id.to_string(),
            policies,
            path,
            dir: peer_dir.to_path_buf(),
            seen: Mutex::new(seen),
            schema_error: Mutex::new(schema_error),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Re-applies `schema.sql` and re-reads `schema.json` if either changed since last time,
    /// and logs the outcome: once per change. A broken `schema.json` leaves the previous
    /// policies in force; a broken `schema.sql` leaves the tables as they were.
    pub fn refresh(&self) {
        let now = stamp(&self.inner.dir);
        let mut seen = self.inner.seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = std::mem::replace(&mut *seen, now);
        if before.policies != now.policies {
            match Policies::load(&self.inner.dir.join(POLICY_FILE)) {
                Ok(policies) => {
                    *self.inner.policies.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policies);
                    tracing::info!("{POLICY_FILE}: access policies reloaded");
                }
                Err(e) => tracing::warn!("{e}; the previous access policies stay in force"),
            }
        }
        if before.schema != now.schema {
            let applied =
                pool::connect(&self.inner.path).and_then(|mut conn| schema::setup(&mut conn, &self.inner.dir));
            let error = match applied {
                Ok(()) => {
                    tracing::info!("{}: applied", schema::FILE);
                    None
                }
                Err(StoreError::Schema(e)) => {
                    tracing::warn!("{}", not_applied(&e));
                    Some(e)
                }
                Err(e) => {
                    tracing::warn!("{}: cannot apply it now: {e}", schema::FILE);
                    return;
                }
            };
            *self.inner.schema_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
        }
    }

    /// Why `schema.sql` is not applied, as of now (after [`Store::refresh`]); `None` when it
    /// is, or there is none.
    pub fn schema_error(&self) -> Option<SchemaError> {
        self.refresh();
        self.inner.schema_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The peer's own ID.
    pub fn owner_id(&self) -> &str {
        &self.inner.owner
    }

    /// The access policies from `schema.json`, as last read.
    pub fn policies(&self) -> Arc<Policies> {
        self.inner.policies.read().unwrap_or_else(|p| p.into_inner()).clone()
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
