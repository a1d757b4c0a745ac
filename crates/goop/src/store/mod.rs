//! The peer's SQLite store: schema, system columns, access policies, the data protocol's table operations, goop.db.
//!
//! One database per peer folder, `DIR/data.db`, in WAL mode. At open, goop's internal tables
//! (`_goop_*`) are created and the site's `site/schema.sql` is applied (idempotently, see
//! [`schema`]); `site/schema.json` gives the tables' access policies ([`policy`]).
//!
//! Three ways in, all blocking (call them off the async runtime's workers):
//! - [`Store::data_request`]: the data protocol's `tables`/`describe`/`query`/`insert`/
//!   `update`/`delete` for a caller peer ID ([`data`]), `own` rows through [`own`]'s views,
//!   a remote caller's spending through [`budget`];
//! - [`DbModule`]: `goop.db` for data functions ([`db`], [`script`]);
//! - [`Store::save_message`] / [`Store::inbox`]: chat messages that are not commands, at most
//!   [`MAX_PER_SENDER`] per sender.
//!
//! User tables carry the system columns `_id INTEGER PRIMARY KEY AUTOINCREMENT`, `_owner`,
//! `_created_at` and `_updated_at`, declared by the site's schema (as in the spec's). The data
//! protocol stamps them and refuses to write a table that lacks any of them; reading such a
//! table is allowed where its policy does not need `_owner`.
//!
//! `schema.sql` and `schema.json` are looked at again (one `stat` each) before every request
//! and `goop.db` statement: when either changed — an installed template, the owner's edit —
//! the schema is re-applied and the policies re-read, without a restart.

pub mod budget;
pub mod data;
pub mod db;
mod error;
mod functions;
pub mod guard;
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
pub use error::StoreError;
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
    /// `DIR/site`, where `schema.sql` and `schema.json` live.
    site: PathBuf,
    /// What those two files looked like when last applied.
    seen: Mutex<Stamp>,
}

/// Modification time and length of `schema.sql` and `schema.json` (`None`: missing).
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(site: &Path) -> Stamp {
    ["schema.sql", "schema.json"].map(|f| {
        let meta = std::fs::metadata(site.join(f)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    })
}

impl Store {
    /// Opens (or creates) `peer_dir/data.db`, applies `peer_dir/site/schema.sql` and reads
    /// `peer_dir/site/schema.json`. `owner_id` is the peer's own ID.
    pub fn open(peer_dir: &Path, owner_id: &str) -> Result<Store, StoreError> {
        let path = peer_dir.join(DB_FILE);
        let site = peer_dir.join("site");
        let seen = stamp(&site);
        let policies = Policies::load(&site.join("schema.json"))?;
        {
            let mut setup = pool::connect(&path)?;
            let mode: String = setup
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|source| StoreError::Open { path: path.clone(), source })?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!("{}: journal mode is {mode}, not WAL", path.display());
            }
            schema::setup(&mut setup, &site.join("schema.sql"))?;
        }
        let pool = Pool::open(&path)?;
        let policies = RwLock::new(Arc::new(policies));
        let inner = Inner {
            pool,
            budgets: Budgets::default(),
            owner: owner_id.to_string(),
            policies,
            path,
            site,
            seen: Mutex::new(seen),
        };
        Ok(Store { inner: Arc::new(inner) })
    }

    /// Re-applies `schema.sql` and re-reads `schema.json` if either changed since last time.
    /// A broken file is logged and the previous policies stay in force.
    pub fn refresh(&self) {
        let now = stamp(&self.inner.site);
        let mut seen = self.inner.seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return;
        }
        *seen = now;
        let site = &self.inner.site;
        let applied = Policies::load(&site.join("schema.json")).and_then(|policies| {
            schema::setup(&mut pool::connect(&self.inner.path)?, &site.join("schema.sql"))?;
            Ok(policies)
        });
        match applied {
            Ok(policies) => {
                *self.inner.policies.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policies);
                tracing::info!("{}: schema and access policies reloaded", site.display());
            }
            Err(e) => {
                tracing::warn!("{}: cannot reload the schema, keeping the previous policies: {e}", site.display())
            }
        }
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
