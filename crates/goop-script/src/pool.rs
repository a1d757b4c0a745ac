//! The bounded pool of worker VMs: created lazily, checked out by the calling thread.

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
}

pub(crate) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
    max: usize,
    wait: Duration,
    setup: VmSetup,
}

impl Pool {
    pub fn new(setup: VmSetup, max: usize, wait: Duration) -> Pool {
        Pool {
            state: Mutex::new(State { idle: Vec::new(), live: 0, waiting: 0 }),
            returned: Condvar::new(),
            max: max.max(1),
            wait,
            setup,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the Vec and counter consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on a VM. The VM goes back to the pool when `f` succeeds and is dropped when it
    /// fails, since a failed call may have left it out of memory or interrupted mid-way.
    pub fn with_vm<T>(&self, f: impl FnOnce(&mut Vm) -> Result<T, Error>) -> Result<T, Error> {
        let mut vm = self.checkout()?;
        let result = f(&mut vm);
        let mut st = self.lock();
        if result.is_ok() {
            st.idle.push(vm);
        } else {
            st.live -= 1;
            drop(vm);
        }
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            self.returned.notify_one();
        }
        result
    }

    fn checkout(&self) -> Result<Vm, Error> {
        let give_up = Instant::now() + self.wait;
        let mut st = self.lock();
        loop {
            if let Some(vm) = st.idle.pop() {
                return Ok(vm);
            }
            if st.live < self.max {
                st.live += 1;
                drop(st);
                return Vm::new(&self.setup).map_err(|e| {
                    self.lock().live -= 1;
                    self.returned.notify_one();
                    Error::Setup(format!("cannot create a script VM: {e}"))
                });
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Busy);
            }
            st.waiting += 1;
            st = self.returned.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0;
            st.waiting -= 1;
        }
    }
}
