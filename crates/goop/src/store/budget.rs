//! What one remote peer may spend on the data protocol's table operations: writes per minute
//! per table (governor, keyed, bounded memory under a flood of identities) and queries at once.
//! Row size and storage quotas are checked where the write happens ([`super::data`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::StoreError;

/// Most (peer, table) pairs tracked at once. Past it idle ones are dropped; if all are active,
/// writes from new pairs are refused until some age out, so memory stays bounded.
pub const MAX_TRACKED: usize = 100_000;
/// Queries (of any op) one remote peer may have running at once, of the pool's connections.
pub const MAX_QUERIES_PER_PEER: usize = 2;
/// How many checks between sweeps of idle pairs.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug)]
pub struct Budgets {
    /// One keyed limiter per distinct per-minute rate, keyed by a hash of (peer, table).
    writes: Mutex<HashMap<u32, Arc<DefaultKeyedRateLimiter<u64>>>>,
    hasher: RandomState,
    checks: AtomicU64,
    /// Milliseconds since `epoch` of the last out-of-turn sweep.
    last_sweep_ms: AtomicU64,
    epoch: Instant,
    /// Remote peers with queries running, and how many; a peer leaves at 0.
    running: Mutex<HashMap<String, usize>>,
    finished: Condvar,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            writes: Mutex::default(),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
            last_sweep_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            running: Mutex::default(),
            finished: Condvar::new(),
        }
    }
}

impl Budgets {
    /// Counts one write by `peer` to `table`, allowed `per_minute` (0: no limit).
    pub fn write(&self, peer: &str, table: &str, per_minute: u32) -> Result<(), StoreError> {
        let Some(rate) = NonZeroU32::new(per_minute) else { return Ok(()) };
        let limiter = {
            let mut writes = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                writes.entry(per_minute).or_insert_with(|| Arc::new(RateLimiter::keyed(Quota::per_minute(rate)))),
            )
        };
        let periodic = self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY);
        if periodic || (limiter.len() > MAX_TRACKED && self.sweep_due()) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if limiter.len() > MAX_TRACKED {
            return Err(StoreError::TooManyWriters);
        }
        let key = self.hasher.hash_one((peer, table.to_ascii_lowercase()));
        limiter.check_key(&key).map_err(|_| StoreError::RateLimited { per_minute, table: table.to_string() })
    }

    /// A slot for one of `peer`'s queries, waiting for one of theirs to finish until `deadline`.
    pub fn query(&self, peer: &str, deadline: Instant) -> Result<Running<'_>, StoreError> {
        let mut running = self.running();
        loop {
            let count = running.entry(peer.to_string()).or_insert(0);
            if *count < MAX_QUERIES_PER_PEER {
                *count += 1;
                return Ok(Running { budgets: self, peer: peer.to_string() });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::PeerBusy(MAX_QUERIES_PER_PEER));
            }
            running = self.finished.wait_timeout(running, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// At most one out-of-turn sweep per second, so a flood cannot make every write O(n).
    fn sweep_due(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        now >= last + 1000
            && self.last_sweep_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One query of a peer's; its slot is freed when dropped.
pub struct Running<'b> {
    budgets: &'b Budgets,
    peer: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.budgets.running();
        if let Some(count) = running.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.peer);
            }
        }
        drop(running);
        self.budgets.finished.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 1,000,000 fresh identities writing once each: at most 100,000 pairs remembered.
    #[test]
    fn a_million_writers_stay_bounded() {
        let budgets = Budgets::default();
        let refused = (0..1_000_000u32).filter(|i| budgets.write(&format!("peer{i}"), "t", 60).is_err()).count();
        let tracked: usize = budgets.writes.lock().unwrap().values().map(|l| l.len()).sum();
        assert!(tracked <= MAX_TRACKED + 1, "tracked {tracked}");
        // Past the bound, new writers are refused until old pairs go idle (1 s at 60/min).
        assert!(refused >= 500_000, "refused {refused}");
    }

    #[test]
    fn two_queries_per_peer_at_once() {
        let budgets = Budgets::default();
        let soon = Instant::now() + Duration::from_millis(50);
        let (a, _b) = (budgets.query("p", soon).unwrap(), budgets.query("p", soon).unwrap());
        assert_eq!(
            budgets.query("p", soon).err().map(|e| e.to_string()).as_deref(),
            Some("busy: at most 2 queries of yours at once")
        );
        assert!(budgets.query("q", soon).is_ok());
        drop(a);
        assert!(budgets.query("p", soon).is_ok());
        assert!(budgets.running().len() <= 2);
    }
}
