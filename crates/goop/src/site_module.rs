//! `goop.site`: a script reads files of its own site, under the same rules as the site
//! protocol (never `lua/`, `schemas/`, `schema.sql` or `schema.json`, never outside `site/`).
//!
//! ```lua
//! local text, err = goop.site.read("config.json")   -- the file's bytes, or nil and why not
//! ```
//!
//! A file is at most 4 MB (the site protocol's limit) and its bytes are charged to the
//! invocation's memory limit before it is read.

use goop_script::mlua::{self, Lua, Table, Value};
use goop_script::{Budget, HostModule, Scope};

use crate::protocol::site::{Site, SiteAnswer};

/// The `goop.site` host module over a peer's `site/` folder.
#[derive(Debug, Clone)]
pub struct SiteModule {
    site: Site,
}

impl SiteModule {
    pub fn new(site: Site) -> Self {
        SiteModule { site }
    }
}

impl HostModule for SiteModule {
    fn name(&self) -> &str {
        "site"
    }

    fn scope(&self) -> Scope {
        Scope::All
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        let site = self.site.clone();
        t.set(
            "read",
            lua.create_function(move |lua, path: mlua::LuaString| {
                let path = path.to_str()?.to_owned();
                let found = match site.find_path(&path) {
                    Ok(found) => found,
                    Err(reason) => return Ok((Value::Nil, Some(reason))),
                };
                Budget::of(lua).charge(found.size())?;
                match found.read() {
                    SiteAnswer::File { bytes, .. } => Ok((Value::String(lua.create_string(bytes)?), None)),
                    SiteAnswer::Refused(reason) => Ok((Value::Nil, Some(reason))),
                }
            })?,
        )?;
        Ok(t)
    }
}
