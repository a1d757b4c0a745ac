//! The limits checked at the VM's safepoints: a call's deadline and its step budget.
//!
//! Luau calls the interrupt callback at every call, return and loop back-edge, and at each
//! step of pattern matching (mlua passes on none of the collector's calls). A step is one such
//! call, so a step budget stops the same script with the same input at the same point on any
//! machine under any load, where the deadline stops it wherever the clock found it.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mlua::{Lua, VmState};

/// What stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Time,
    Steps,
}

const RUNNING: u8 = 0;
const STOPPED_BY_TIME: u8 = 1;
const STOPPED_BY_STEPS: u8 = 2;

/// The running call's limits, shared with the VM's interrupt callback.
///
/// Only the thread running the VM touches it (mlua holds the VM's lock), so plain loads and
/// stores suffice: a step costs no atomic read-modify-write.
pub(crate) struct Meter {
    epoch: Instant,
    /// Nanoseconds after `epoch`; `u64::MAX` when no call is running.
    deadline: AtomicU64,
    /// Steps the call may still take; `u64::MAX` when it has no budget.
    steps_left: AtomicU64,
    /// The first limit the call ran into: every later safepoint fails with it, so `pcall`
    /// cannot hold on, and the call reports the limit it really hit.
    stopped: AtomicU8,
}

impl Meter {
    /// A meter checked at every safepoint of `lua`, idle until [`Meter::start`].
    pub fn install(lua: &Lua) -> Arc<Meter> {
        let meter = Arc::new(Meter {
            epoch: Instant::now(),
            deadline: AtomicU64::new(u64::MAX),
            steps_left: AtomicU64::new(u64::MAX),
            stopped: AtomicU8::new(RUNNING),
        });
        let m = meter.clone();
        lua.set_interrupt(move |_| m.check());
        meter
    }

    /// Arms the meter for a call: it stops at `deadline` or after `max_steps` steps (0: no budget).
    pub fn start(&self, deadline: Instant, max_steps: u64) {
        let nanos = deadline.saturating_duration_since(self.epoch).as_nanos();
        self.deadline.store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.steps_left.store(if max_steps == 0 { u64::MAX } else { max_steps }, Ordering::Relaxed);
        self.stopped.store(RUNNING, Ordering::Relaxed);
    }

    /// Disarms the meter; returns the limit that stopped the call, if one did.
    pub fn finish(&self) -> Option<Stop> {
        self.deadline.store(u64::MAX, Ordering::Relaxed);
        self.steps_left.store(u64::MAX, Ordering::Relaxed);
        match self.stopped.load(Ordering::Relaxed) {
            STOPPED_BY_TIME => Some(Stop::Time),
            STOPPED_BY_STEPS => Some(Stop::Steps),
            _ => None,
        }
    }

    /// One safepoint: counts a step, then looks at the clock.
    fn check(&self) -> mlua::Result<VmState> {
        match self.stopped.load(Ordering::Relaxed) {
            RUNNING => {}
            STOPPED_BY_STEPS => return Err(steps_error()),
            _ => return Err(time_error()),
        }
        let left = self.steps_left.load(Ordering::Relaxed);
        if left == 0 {
            self.stopped.store(STOPPED_BY_STEPS, Ordering::Relaxed);
            return Err(steps_error());
        }
        self.steps_left.store(left - 1, Ordering::Relaxed);
        let now = self.epoch.elapsed().as_nanos() as u64;
        if now >= self.deadline.load(Ordering::Relaxed) {
            self.stopped.store(STOPPED_BY_TIME, Ordering::Relaxed);
            return Err(time_error());
        }
        Ok(VmState::Continue)
    }
}

fn time_error() -> mlua::Error {
    mlua::Error::runtime("timeout: script ran past its deadline")
}

fn steps_error() -> mlua::Error {
    mlua::Error::runtime("steps: script ran past its step budget")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_budget_of_n_steps_allows_n_safepoints() {
        let meter = Meter::install(&Lua::new());
        meter.start(Instant::now() + Duration::from_secs(60), 3);
        assert!((0..3).all(|_| meter.check().is_ok()));
        assert!(meter.check().is_err());
        assert!(meter.check().is_err(), "keeps failing once stopped");
        assert_eq!(meter.finish(), Some(Stop::Steps));
    }

    #[test]
    fn the_first_limit_hit_is_the_one_reported() {
        let meter = Meter::install(&Lua::new());
        meter.start(Instant::now(), 2);
        assert!(meter.check().is_err());
        assert!(meter.check().is_err());
        assert!(meter.check().is_err(), "past both limits now");
        assert_eq!(meter.finish(), Some(Stop::Time));
        meter.start(Instant::now() + Duration::from_secs(60), 0);
        assert!((0..10_000).all(|_| meter.check().is_ok()), "0 is no budget");
        assert_eq!(meter.finish(), None);
    }
}
