//! Host work done for a running invocation, charged to the same memory limit and deadline as
//! its Lua code.
//!
//! The VM's allocator counts what Lua allocates; a conversion the host makes for a script (a
//! result to JSON, a `goop.kv` value, an SQL parameter) happens outside it. A [`Budget`] taken
//! when such work starts holds what the invocation's memory limit has left at that moment and
//! its deadline; the work charges every byte it produces as it goes, so a table that shares its
//! sub-tables is paid for each time it is expanded, and the work stops at the first byte or
//! instant too many.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use goop_script::{Budget, Exceeded};
//!
//! let mut budget = Budget::new(1024, Instant::now() + Duration::from_secs(1));
//! assert!(budget.charge(1000).is_ok());
//! assert_eq!(budget.charge(100), Err(Exceeded::Memory));
//! ```

use std::time::Instant;

use mlua::Lua;

use crate::invocation::Invocation;

/// How many charges pass between two looks at the clock.
const CLOCK_EVERY: u32 = 256;

/// What ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    /// The invocation's memory limit.
    #[error("not enough memory")]
    Memory,
    /// The invocation's deadline.
    #[error("timeout: script ran past its deadline")]
    Time,
}

impl From<Exceeded> for mlua::Error {
    /// The same errors the VM raises itself, so the engine reports a memory or time limit.
    fn from(e: Exceeded) -> Self {
        match e {
            Exceeded::Memory => mlua::Error::MemoryError(e.to_string()),
            Exceeded::Time => mlua::Error::runtime(e.to_string()),
        }
    }
}

/// Bytes and time one piece of host work may still use.
#[derive(Debug, Clone)]
pub struct Budget {
    left: usize,
    deadline: Instant,
    charges: u32,
}

impl Budget {
    /// `bytes` of host memory until `deadline`.
    pub fn new(bytes: usize, deadline: Instant) -> Budget {
        Budget { left: bytes, deadline, charges: 0 }
    }

    /// What the invocation running in `lua` has left: its memory limit minus what its VM
    /// holds now, until its deadline. Outside an invocation nothing is left.
    pub fn of(lua: &Lua) -> Budget {
        match lua.try_app_data_ref::<Invocation>() {
            Ok(Some(inv)) => Budget::new(inv.memory_limit.saturating_sub(lua.used_memory()), inv.deadline),
            _ => Budget::new(0, Instant::now()),
        }
    }

    /// Counts `bytes`; looks at the clock every few charges.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Exceeded> {
        self.left = self.left.checked_sub(bytes).ok_or(Exceeded::Memory)?;
        self.charges += 1;
        if self.charges.is_multiple_of(CLOCK_EVERY) {
            self.check_time()?;
        }
        Ok(())
    }

    /// Fails once the deadline has passed.
    pub fn check_time(&self) -> Result<(), Exceeded> {
        if Instant::now() >= self.deadline {
            return Err(Exceeded::Time);
        }
        Ok(())
    }

    /// Bytes left.
    pub fn left(&self) -> usize {
        self.left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn charges_until_the_bytes_run_out() {
        let mut b = Budget::new(10, Instant::now() + Duration::from_secs(60));
        assert_eq!(b.charge(10), Ok(()));
        assert_eq!(b.left(), 0);
        assert_eq!(b.charge(1), Err(Exceeded::Memory));
    }

    #[test]
    fn a_passed_deadline_stops_the_work_within_a_few_charges() {
        let mut b = Budget::new(usize::MAX, Instant::now());
        let stopped = (0..CLOCK_EVERY * 2).position(|_| b.charge(1).is_err());
        assert_eq!(stopped, Some(CLOCK_EVERY as usize - 1));
    }
}
