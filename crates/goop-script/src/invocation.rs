//! What one running invocation knows about itself: caller, script, deadline, and host values.
//!
//! The engine stores an [`Invocation`] in the VM's app data for the length of a call, so host
//! functions read it with `lua.app_data_ref::<Invocation>()`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::script::Origin;

/// A peer as scripts see it: `goop.peer` (the caller) and `goop.self` (this peer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The peer ID, authenticated by the transport. The only thing to base decisions on.
    pub id: String,
    /// Display text chosen by that peer; never identity.
    pub label: String,
}

impl Peer {
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Self {
        Peer { id: id.into(), label: label.into() }
    }
}

/// Values a host attaches to one invocation, one per type (e.g. an HTTP request counter).
#[derive(Default)]
pub struct Extensions(HashMap<TypeId, Box<dyn Any + Send>>);

impl Extensions {
    pub fn insert<T: Any + Send>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(value));
    }
    pub fn get<T: Any + Send>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>()).and_then(|b| b.downcast_ref())
    }
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.0.get_mut(&TypeId::of::<T>()).and_then(|b| b.downcast_mut())
    }
    /// The value of type `T`, inserted with `T::default()` on first use.
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        let slot = self.0.entry(TypeId::of::<T>()).or_insert_with(|| Box::new(T::default()));
        // The entry is keyed by T's TypeId, so it always holds a T.
        slot.downcast_mut().expect("extension stored under its own TypeId")
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({} values)", self.0.len())
    }
}

/// The running invocation, readable by host functions.
#[derive(Debug)]
pub struct Invocation {
    pub(crate) caller: Peer,
    pub(crate) script: String,
    /// A command's or a data function's: the same name is two scripts.
    pub(crate) origin: Origin,
    pub(crate) deadline: Instant,
    /// The VM's allocator limit for this call, in bytes (what it held at the start plus the
    /// script's memory limit); host work is charged against what is left of it.
    pub(crate) memory_limit: usize,
    pub(crate) extensions: Extensions,
}

impl Invocation {
    /// Who called (`goop.peer`).
    pub fn caller(&self) -> &Peer {
        &self.caller
    }
    /// The script's name.
    pub fn script(&self) -> &str {
        &self.script
    }
    /// When the invocation's time runs out; host calls must stop by then.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
    /// Time left before the deadline (zero when past it).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }
}
