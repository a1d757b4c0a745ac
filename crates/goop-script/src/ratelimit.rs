//! Rate limits: per caller per script (overridable by `@rate_limit`), and global, shared fairly.
//!
//! The global budget is divided among the callers of the last minute: once half of it is used,
//! a caller ahead of its share (the budget over the number of callers, itself included) is
//! refused before the global limiter is asked, so a few busy identities cannot use up what the
//! others need, and a quiet peer lets anyone call.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::error::Error;
use crate::keyed::{KeyedRates, Refused, MAX_TRACKED};

pub(crate) struct RateLimits {
    per_caller: u32,
    /// Per (caller, script).
    keyed: KeyedRates,
    global: Option<(u32, DefaultDirectRateLimiter)>,
    shares: Mutex<Shares>,
    hasher: RandomState,
}

impl RateLimits {
    /// `per_caller` and `global` are per minute; 0 means unlimited.
    pub fn new(per_caller: u32, global: u32) -> Self {
        RateLimits {
            per_caller,
            keyed: KeyedRates::default(),
            global: NonZeroU32::new(global).map(|n| (global, RateLimiter::direct(Quota::per_minute(n)))),
            shares: Mutex::new(Shares::default()),
            hasher: RandomState::new(),
        }
    }

    /// Counts one invocation of `script` by `caller`; `script_limit` is its `@rate_limit`.
    pub fn check(&self, caller: &str, script: &str, script_limit: Option<u32>) -> Result<(), Error> {
        if let Some(per_minute) = NonZeroU32::new(script_limit.unwrap_or(self.per_caller)) {
            self.keyed.check((caller, script), per_minute).map_err(|refused| match refused {
                Refused::TooManyKeys => Error::RateLimited("too many distinct callers, try again later".into()),
                Refused::Limited => Error::RateLimited(format!("at most {per_minute} calls per minute to {script}")),
            })?;
        }
        if let Some((per_minute, global)) = &self.global {
            let caller = self.hasher.hash_one(caller);
            let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
            shares.admit(caller, *per_minute)?;
            global.check().map_err(|_| Error::RateLimited("this peer is handling too many script calls".into()))?;
            shares.served();
        }
        Ok(())
    }

    /// Pairs currently tracked, across all quotas.
    pub fn tracked(&self) -> usize {
        self.keyed.tracked()
    }
}

/// How long a caller counts as calling after its last attempt.
const ACTIVE_FOR: Duration = Duration::from_secs(60);

/// Each caller's pace through the global budget: a GCRA whose rate is the caller's share (the
/// budget divided among the callers of the last minute, counted from their first attempt), with
/// a burst of a quarter of that share. A caller that saved nothing up cannot outrun the others.
#[derive(Default)]
struct Shares {
    callers: HashMap<u64, Pace>,
    last_sweep: Option<Instant>,
    served: Served,
}

/// Calls admitted in the last minute, estimated from the current and the previous minute.
#[derive(Default)]
struct Served {
    started: Option<Instant>,
    current: u32,
    previous: u32,
}

impl Served {
    fn recent(&mut self, now: Instant) -> f64 {
        let elapsed = self.roll(now);
        f64::from(self.previous) * (1.0 - elapsed.as_secs_f64() / ACTIVE_FOR.as_secs_f64()) + f64::from(self.current)
    }

    fn add(&mut self, now: Instant) {
        self.roll(now);
        self.current = self.current.saturating_add(1);
    }

    /// Moves to the minute `now` is in; returns how far into it `now` is.
    fn roll(&mut self, now: Instant) -> Duration {
        let started = *self.started.get_or_insert(now);
        let elapsed = now.duration_since(started);
        if elapsed < ACTIVE_FOR {
            return elapsed;
        }
        let next = started + ACTIVE_FOR;
        let (previous, start) = if elapsed < 2 * ACTIVE_FOR { (self.current, next) } else { (0, now) };
        (self.previous, self.current, self.started) = (previous, 0, Some(start));
        now.duration_since(start)
    }
}

struct Pace {
    /// When the caller's next call is due at its share's rate.
    due: Instant,
    last_seen: Instant,
}

impl Shares {
    /// Refuses `caller` when it is ahead of its share of `per_minute` while the budget is
    /// contended (half of it used in the last minute); until then it only keeps count.
    fn admit(&mut self, caller: u64, per_minute: u32) -> Result<(), Error> {
        let now = Instant::now();
        let contended = self.served.recent(now) >= f64::from(per_minute) / 2.0;
        self.sweep(now);
        let known = self.callers.contains_key(&caller);
        if !known && self.callers.len() >= MAX_TRACKED {
            return Err(Error::RateLimited("too many distinct callers, try again later".into()));
        }
        let callers = self.callers.len() + usize::from(!known);
        let share = (f64::from(per_minute) / callers as f64).max(1.0);
        let interval = Duration::from_secs_f64(60.0 / share);
        let burst = (share / 4.0).max(1.0);
        let pace = self.callers.entry(caller).or_insert(Pace { due: now, last_seen: now });
        pace.last_seen = now;
        let ahead = pace.due.saturating_duration_since(now);
        if contended && ahead > interval.mul_f64(burst - 1.0) {
            return Err(Error::RateLimited(format!(
                "your share of this peer's script calls is used up ({} of {per_minute} a minute, shared by {callers} callers)",
                share.floor()
            )));
        }
        pace.due = pace.due.max(now) + interval;
        Ok(())
    }

    /// Counts a call the global limiter let through.
    fn served(&mut self) {
        self.served.add(Instant::now());
    }

    /// Forgets callers idle for a minute, at most once a second.
    fn sweep(&mut self, now: Instant) {
        if self.last_sweep.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return;
        }
        self.last_sweep = Some(now);
        self.callers.retain(|_, p| now.duration_since(p.last_seen) < ACTIVE_FOR);
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

    #[test]
    fn callers_hammering_together_each_get_their_share() {
        let limits = RateLimits::new(0, 60);
        let mut admitted = [0; 5];
        for _ in 0..100 {
            for (i, n) in admitted.iter_mut().enumerate() {
                if limits.check(&format!("sybil{i}"), "s", None).is_ok() {
                    *n += 1;
                }
            }
        }
        // Until half of the 60 is used nobody is held back (6 rounds of 5); by then each of the
        // five is far ahead of its share (12 a minute, a burst of 3) and waits.
        assert_eq!(admitted, [6; 5]);
        let alone = RateLimits::new(0, 60);
        assert_eq!((0..100).filter(|_| alone.check("solo", "s", None).is_ok()).count(), 30, "alone: half at once");
    }
}
