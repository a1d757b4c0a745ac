//! The bounded pool of worker VMs: created lazily, checked out by the calling thread, and
//! shared fairly: one caller holds at most a fixed number of them at once.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::vm::{Vm, VmSetup};

struct State {
    idle: Vec<Vm>,
    /// VMs in existence: idle plus checked out.
    live: usize,
    /// Callers waiting for a VM; notifying costs a syscall, so only when someone waits.
    waiting: usize,
    /// VMs checked out per caller (by a hash of its ID; callers with none are not kept).
    running: HashMap<u64, usize>,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
    max: usize,
    /// Most VMs one caller may hold at once.
    per_caller: usize,
    /// VMs kept for callers that hold none, so a newcomer is served ahead of busy callers.
    reserve: usize,
    hasher: RandomState,
    wait: Duration,
    setup: VmSetup,
}

impl Pool {
    pub fn new(setup: VmSetup, max: usize, per_caller: usize, wait: Duration) -> Pool {
        Pool {
            state: Mutex::new(State { idle: Vec::new(), live: 0, waiting: 0, running: HashMap::new() }),
            returned: Condvar::new(),
            max: max.max(1),
            per_caller: per_caller.clamp(1, max.max(1)),
            reserve: max / 8,
            hasher: RandomState::new(),
            wait,
            setup,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the Vec and counter consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a VM for `caller` (`None`: the peer itself, never held back). The VM goes
    /// back to the pool unless the call left it unfit (a limit hit, a broken state).
    pub fn with_vm<T>(&self, caller: Option<&str>, f: impl FnOnce(&mut Vm) -> Result<T, Error>) -> Result<T, Error> {
        let caller = caller.map(|id| self.hasher.hash_one(id));
        let mut vm = self.checkout(caller)?;
        let result = f(&mut vm);
        let mut st = self.lock();
        if vm.reusable() {
            st.idle.push(vm);
        } else {
            st.live -= 1;
            drop(vm);
        }
        Self::uncount(&mut st, caller);
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            // Waiters may wait for different things (any VM, or one of their own to return).
            self.returned.notify_all();
        }
        result
    }

    /// Bytes held by the idle VMs.
    pub fn idle_memory(&self) -> usize {
        self.lock().idle.iter().map(Vm::used_memory).sum()
    }

    fn checkout(&self, caller: Option<u64>) -> Result<Vm, Error> {
        let give_up = Instant::now() + self.wait;
        let mut st = self.lock();
        loop {
            let held = caller.map_or(0, |id| st.running.get(&id).copied().unwrap_or(0));
            let free = st.idle.len() + (self.max - st.live);
            let kept = if held > 0 { self.reserve } else { 0 };
            if held < self.per_caller && free > kept {
                if let Some(vm) = st.idle.pop() {
                    Self::count(&mut st, caller);
                    return Ok(vm);
                }
                if st.live < self.max {
                    st.live += 1;
                    Self::count(&mut st, caller);
                    drop(st);
                    return Vm::new(&self.setup).map_err(|e| {
                        let mut st = self.lock();
                        st.live -= 1;
                        Self::uncount(&mut st, caller);
                        drop(st);
                        self.returned.notify_all();
                        Error::Setup(format!("cannot create a script VM: {e}"))
                    });
                }
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(if held >= self.per_caller {
                    Error::RateLimited(format!("at most {} of your calls run at once", self.per_caller))
                } else {
                    Error::Busy
                });
            }
            st.waiting += 1;
            st = self.returned.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
            st.waiting -= 1;
        }
    }

    fn count(st: &mut State, caller: Option<u64>) {
        if let Some(id) = caller {
            *st.running.entry(id).or_default() += 1;
        }
    }

    fn uncount(st: &mut State, caller: Option<u64>) {
        let Some(id) = caller else { return };
        if let Some(n) = st.running.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                st.running.remove(&id);
            }
        }
    }
}
