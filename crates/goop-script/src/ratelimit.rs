//! Rate limits: per caller per script (overridable by `@rate_limit`), and global.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::Error;

/// Most (caller, script) pairs tracked at once. Past it, idle entries are dropped; if all are
/// active, new calls are refused until some age out, so memory stays bounded under a flood
/// of fresh peer IDs.
pub const MAX_TRACKED: usize = 100_000;

/// How many checks between sweeps of idle entries.
const SWEEP_EVERY: u64 = 4096;

pub(crate) struct RateLimits {
    per_caller: u32,
    keyed: Mutex<HashMap<u32, Arc<DefaultKeyedRateLimiter<u64>>>>,
    global: Option<DefaultDirectRateLimiter>,
    hasher: RandomState,
    checks: AtomicU64,
    epoch: Instant,
    last_sweep_ms: AtomicU64,
}

impl RateLimits {
    /// `per_caller` and `global` are per minute; 0 means unlimited.
    pub fn new(per_caller: u32, global: u32) -> Self {
        RateLimits {
            per_caller,
            keyed: Mutex::new(HashMap::new()),
            global: NonZeroU32::new(global).map(|n| RateLimiter::direct(Quota::per_minute(n))),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
            epoch: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }

    /// Counts one invocation of `script` by `caller`; `script_limit` is its `@rate_limit`.
    pub fn check(&self, caller: &str, script: &str, script_limit: Option<u32>) -> Result<(), Error> {
        if let Some(per_minute) = NonZeroU32::new(script_limit.unwrap_or(self.per_caller)) {
            let limiter = self.keyed_limiter(per_minute);
            let key = self.hasher.hash_one((caller, script));
            let periodic = self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == 0;
            if periodic || (limiter.len() > MAX_TRACKED && self.sweep_due()) {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            if limiter.len() > MAX_TRACKED {
                return Err(Error::RateLimited("too many distinct callers, try again later".into()));
            }
            limiter
                .check_key(&key)
                .map_err(|_| Error::RateLimited(format!("at most {per_minute} calls per minute to {script}")))?;
        }
        if let Some(global) = &self.global {
            global.check().map_err(|_| Error::RateLimited("this peer is handling too many script calls".into()))?;
        }
        Ok(())
    }

    /// At most one out-of-turn sweep per second, so a flood cannot make every call O(n).
    fn sweep_due(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        now >= last + 1000
            && self.last_sweep_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn keyed_limiter(&self, per_minute: NonZeroU32) -> Arc<DefaultKeyedRateLimiter<u64>> {
        let mut keyed = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
        keyed
            .entry(per_minute.get())
            .or_insert_with(|| Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))))
            .clone()
    }

    /// Pairs currently tracked, across all quotas.
    pub fn tracked(&self) -> usize {
        let keyed = self.keyed.lock().unwrap_or_else(|p| p.into_inner());
        keyed.values().map(|l| l.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_distinct_callers_stay_bounded() {
        let limits = RateLimits::new(30, 0);
        let mut refused = 0;
        for i in 0..1_000_000u32 {
            if limits.check(&format!("peer{i}"), "echo", None).is_err() {
                refused += 1;
            }
        }
        assert!(limits.tracked() <= MAX_TRACKED + 1, "tracked {}", limits.tracked());
        // Past the bound new callers are refused rather than remembered.
        assert!(refused >= 1_000_000 - MAX_TRACKED - 1, "refused {refused}");
    }
}
