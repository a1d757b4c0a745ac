//! A call's own additions to the shared, frozen libraries: `function string.trim(s) … end`.
//!
//! goop2's scripts each get a Lua state of their own, so they add helpers to `string`,
//! `table`, `math` … and call them as `string.trim(s)` or `s:trim()`. Here one VM serves many
//! calls and its libraries are frozen, so each library gets a read-only metatable:
//! `__newindex` puts a name the library lacks into a table of this call's additions, which
//! `__index` then reaches. A name the library has stays read-only (replacing `string.format`
//! still fails). When the call ends the additions are unlinked, so no later call, other
//! script or host code sees them. A call that adds nothing pays nothing: lookups hit the
//! library table first, exactly as before, and `s:upper()` still finds `upper` there directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mlua::{Lua, Table, Value};

/// The libraries a call may add names to.
pub const EXTENSIBLE: &[&str] = &["string", "table", "math", "os", "utf8", "bit32", "coroutine"];

/// The libraries' metatables, and whether the running call added anything.
pub(crate) struct Additions {
    metatables: Vec<Table>,
    added: Arc<AtomicBool>,
}

impl Additions {
    /// Gives each of [`EXTENSIBLE`] in `globals` its metatable. Runs before the state is
    /// sandboxed, which freezes the libraries themselves.
    pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<Additions> {
        let added = Arc::new(AtomicBool::new(false));
        let mut metatables = Vec::with_capacity(EXTENSIBLE.len());
        for name in EXTENSIBLE {
            let library: Table = globals.raw_get(*name)?;
            let meta = lua.create_table()?;
            let (own, flag) = (meta.clone(), added.clone());
            let add = lua.create_function(move |lua, (_, key, value): (Table, Value, Value)| {
                // Set first, so whatever gets linked below is unlinked after the call.
                flag.store(true, Ordering::Relaxed);
                let additions = match own.raw_get::<Value>("__index")? {
                    Value::Table(additions) => additions,
                    _ => {
                        let additions = lua.create_table()?;
                        unlocked(&own, |meta| meta.raw_set("__index", &additions))?;
                        additions
                    }
                };
                additions.raw_set(key, value)
            })?;
            meta.raw_set("__newindex", add)?;
            // getmetatable(string) gives nothing away, and setmetatable(string, …) fails.
            meta.raw_set("__metatable", false)?;
            meta.set_readonly(true);
            library.set_metatable(Some(meta.clone()))?;
            metatables.push(meta);
        }
        Ok(Additions { metatables, added })
    }

    /// Unlinks what the call added; nothing to do when it added nothing.
    pub fn forget(&self) -> mlua::Result<()> {
        if !self.added.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        for meta in &self.metatables {
            unlocked(meta, |meta| meta.raw_set("__index", Value::Nil))?;
        }
        Ok(())
    }
}

/// Runs `change` on the read-only `meta` with the host's key, and locks it again.
fn unlocked(meta: &Table, change: impl FnOnce(&Table) -> mlua::Result<()>) -> mlua::Result<()> {
    meta.set_readonly(false);
    let changed = change(meta);
    meta.set_readonly(true);
    changed
}
