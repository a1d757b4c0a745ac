//! `goop.template`: the manifest of the template installed in the peer folder
//! (`DIR/template.json`, written by `goop init --template` and `goop templates apply`), as a
//! read-only table; empty when none was installed.
//!
//! ```lua
//! if goop.template.name == "blog" then … end
//! ```
//!
//! Read when the peer starts: a template applied to a running peer shows after its restart.

use std::path::Path;

use goop_script::api::json::from_json;
use goop_script::mlua::{self, Lua, Table, Value};
use goop_script::{HostModule, Scope};

use crate::templates::INSTALLED;

/// Largest `template.json` read; a larger one counts as none.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// The `goop.template` host module.
#[derive(Debug, Clone)]
pub struct TemplateModule {
    manifest: serde_json::Value,
}

impl TemplateModule {
    /// Reads the installed template's manifest of the peer folder `dir`.
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(INSTALLED);
        let manifest = match std::fs::metadata(&path) {
            Ok(m) if m.len() <= MAX_MANIFEST_BYTES => std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .filter(serde_json::Value::is_object),
            Ok(_) => None,
            Err(_) => Some(serde_json::json!({})),
        };
        let manifest = manifest.unwrap_or_else(|| {
            tracing::warn!("{} is not a JSON object of at most 64 KB; goop.template is empty", path.display());
            serde_json::json!({})
        });
        TemplateModule { manifest }
    }
}

impl HostModule for TemplateModule {
    fn name(&self) -> &str {
        "template"
    }

    fn scope(&self) -> Scope {
        Scope::All
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        match from_json(lua, &self.manifest)? {
            Value::Table(t) => {
                freeze(&t)?;
                Ok(t)
            }
            _ => lua.create_table(),
        }
    }
}

/// Makes `t` and every table in it read-only: the VM keeps it between calls, so one call's
/// change would be the next call's manifest.
fn freeze(t: &Table) -> mlua::Result<()> {
    for pair in t.pairs::<Value, Value>() {
        if let (_, Value::Table(inner)) = pair? {
            freeze(&inner)?;
        }
    }
    t.set_readonly(true);
    Ok(())
}
