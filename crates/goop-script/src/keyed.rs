//! Rate limits per key with bounded memory: one governor keyed limiter per rate, idle keys swept,
//! and new keys refused while the table is full of active ones. The engine keys them by (caller,
//! script); a host may key its own limits (the peer: writes by (peer, table)).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Most keys tracked at once, per rate. Past it, idle keys are dropped; if all are active, new
/// keys are refused until some age out, so memory stays bounded under a flood of fresh IDs.
pub const MAX_TRACKED: usize = 100_000;

/// How many checks between sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

/// Why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The key used up its rate.
    Limited,
    /// [`MAX_TRACKED`] active keys already: a new one must wait.
    TooManyKeys,
}

/// Per-minute rate limits by key. Share it between threads; checks run in parallel.
#[derive(Debug)]
pub struct KeyedRates {
    /// One limiter per distinct per-minute rate, keyed by a hash of the key.
    limiters: Mutex<HashMap<u32, Arc<DefaultKeyedRateLimiter<u64>>>>,
    hasher: RandomState,
    checks: AtomicU64,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last out-of-turn sweep.
    last_sweep_ms: AtomicU64,
}

impl Default for KeyedRates {
    fn default() -> Self {
        KeyedRates {
            limiters: Mutex::default(),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
            epoch: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }
}

impl KeyedRates {
    /// Counts one event for `key`, allowed `per_minute`.
    pub fn check(&self, key: impl Hash, per_minute: NonZeroU32) -> Result<(), Refused> {
        let limiter = self.limiter(per_minute);
        let periodic = self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_EVERY);
        if periodic || (limiter.len() > MAX_TRACKED && self.sweep_due()) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if limiter.len() > MAX_TRACKED {
            return Err(Refused::TooManyKeys);
        }
        limiter.check_key(&self.hasher.hash_one(key)).map_err(|_| Refused::Limited)
    }

    /// Keys tracked now, across all rates.
    pub fn tracked(&self) -> usize {
        let limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        limiters.values().map(|l| l.len()).sum()
    }

    /// At most one out-of-turn sweep per second, so a flood cannot make every check O(n).
    fn sweep_due(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        now >= last + 1000
            && self.last_sweep_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn limiter(&self, per_minute: NonZeroU32) -> Arc<DefaultKeyedRateLimiter<u64>> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        limiters
            .entry(per_minute.get())
            .or_insert_with(|| Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))))
            .clone()
    }
}
