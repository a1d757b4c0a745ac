//! A few SQLite connections shared by the data protocol, the inbox and `goop.db`.
//!
//! WAL lets readers run beside the one writer, so several connections keep a slow query from
//! stalling everyone. Waiting for a connection is bounded by the caller's deadline.

use std::ops::Deref;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::limits::Limit;
use rusqlite::Connection;

use super::error::StoreError;

/// Connections per store.
pub const CONNECTIONS: usize = 8;
/// Largest string or blob a statement may build or return: bounds `zeroblob`, `printf` and
/// `group_concat` bombs; answers are capped at 1 MB anyway.
pub const MAX_VALUE_BYTES: i32 = 4 * 1024 * 1024;
/// Longest SQL text of one statement.
pub const MAX_SQL_BYTES: i32 = 256 * 1024;
/// Longest LIKE or GLOB pattern: matching costs up to its length at every position.
pub const MAX_LIKE_PATTERN_BYTES: i32 = 1024;
/// SQLite's heap in this process, every connection together. A statement that would need more
/// fails with "out of memory": no query can take the host's memory (a 4 KB `where` of 250
/// `randomblob(4e6)` arguments asked for 1 GB).
pub const MAX_SQLITE_HEAP_BYTES: i64 = 128 * 1024 * 1024;

static HEAP_LIMIT: Once = Once::new();

#[derive(Debug)]
pub struct Pool {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Pool {
    /// Opens `CONNECTIONS` connections to `path`, which must already be set up (WAL, schema).
    pub fn open(path: &Path) -> Result<Pool, StoreError> {
        let mut idle = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            idle.push(connect(path)?);
        }
        Ok(Pool { idle: Mutex::new(idle), returned: Condvar::new() })
    }

    /// A connection for the caller alone, waiting at most until `deadline`.
    pub fn get(&self, deadline: Instant) -> Result<Pooled<'_>, StoreError> {
        let mut idle = self.lock();
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(Pooled { pool: self, conn: Some(conn) });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            idle = self.returned.wait_timeout(idle, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The list stays consistent even if a holder panicked: it only pushes and pops.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Opens one connection with goop's settings.
pub fn connect(path: &Path) -> Result<Connection, StoreError> {
    let open = |source| StoreError::Open { path: path.to_path_buf(), source };
    // SAFETY: sets a process-wide limit; SQLite allows it at any time, from any thread.
    HEAP_LIMIT.call_once(|| unsafe {
        rusqlite::ffi::sqlite3_hard_heap_limit64(MAX_SQLITE_HEAP_BYTES);
    });
    let conn = Connection::open(path).map_err(open)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(open)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(open)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES).map_err(open)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES).map_err(open)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_LIKE_PATTERN_BYTES).map_err(open)?;
    // No other database files, whatever a statement says.
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(open)?;
    super::own::register(&conn).map_err(open)?;
    super::functions::register(&conn).map_err(open)?;
    Ok(conn)
}

/// A checked-out connection; goes back to the pool when dropped.
pub struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
}

impl Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // `conn` is only taken in `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("pooled connection used after drop"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // Never hand on a connection in the middle of a transaction.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        self.pool.lock().push(conn);
        self.pool.returned.notify_one();
    }
}
