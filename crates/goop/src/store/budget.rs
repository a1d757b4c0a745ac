//! What one remote peer may spend on the data protocol's table operations: writes per minute
//! per table (governor, keyed, bounded memory under a flood of identities) and queries at once.
//! Row size and storage quotas are checked where the write happens ([`super::data`]).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use goop_script::{KeyedRates, Refused};

use super::error::StoreError;
/// Queries (of any op) one remote peer may have running at once, of the pool's connections.
pub const MAX_QUERIES_PER_PEER: usize = 2;

#[derive(Debug)]
pub struct Budgets {
    /// Writes per (peer, table), at most `goop_script::MAX_TRACKED` pairs per rate.
    writes: KeyedRates,
    /// Remote peers with queries running, and how many; a peer leaves at 0.
    running: Mutex<HashMap<String, usize>>,
    finished: Condvar,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets { writes: KeyedRates::default(), running: Mutex::default(), finished: Condvar::new() }
    }
}

impl Budgets {
    /// Counts one write by `peer` to `table`, allowed `per_minute` (0: no limit).
    pub fn write(&self, peer: &str, table: &str, per_minute: u32) -> Result<(), StoreError> {
        let Some(rate) = NonZeroU32::new(per_minute) else { return Ok(()) };
        self.writes.check((peer, table.to_ascii_lowercase()), rate).map_err(|refused| match refused {
            Refused::TooManyKeys => StoreError::TooManyWriters,
            Refused::Limited => StoreError::RateLimited { per_minute, table: table.to_string() },
        })
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
        let tracked = budgets.writes.tracked();
        assert!(tracked <= goop_script::MAX_TRACKED + 1, "tracked {tracked}");
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
