//! `goop.group`: the host's scripts push to the pages of a group's members.
//!
//! ```lua
//! goop.group.send("ttt-" .. id, { type = "move", payload = board })          -- every member
//! goop.group.send("ttt-" .. id, { type = "turn" }, { to = { next_player } }) -- some of them
//! for _, m in ipairs(goop.group.members("lobby")) do print(m.id, m.label) end
//! ```
//!
//! A message is any JSON-able value of at most 64 KB; `send` returns how many members it was
//! queued for. Nothing waits for a page: a member that falls behind loses the oldest messages
//! and is told it missed some.

use std::sync::Arc;

use goop_script::api::json::{self, ConvertError};
use goop_script::mlua::{self, Lua, Table, Value};
use goop_script::{Budget, HostModule, Scope};

use super::{Groups, MAX_MESSAGE_BYTES};

/// Most peers a `to` list may name.
const MAX_RECIPIENTS: usize = 1024;

pub struct GroupModule {
    groups: Arc<Groups>,
}

impl GroupModule {
    pub fn new(groups: Arc<Groups>) -> GroupModule {
        GroupModule { groups }
    }
}

impl HostModule for GroupModule {
    fn name(&self) -> &str {
        "group"
    }

    fn scope(&self) -> Scope {
        Scope::All
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        let groups = self.groups.clone();
        t.set(
            "send",
            lua.create_function(move |lua, (name, message, options): (String, Value, Option<Table>)| {
                let text = json::to_json_text(&message, &mut Budget::of(lua)).map_err(|e| match e {
                    ConvertError::Invalid(m) => mlua::Error::runtime(format!("goop.group.send: {m}")),
                    stop => stop.into(),
                })?;
                if text.len() > MAX_MESSAGE_BYTES {
                    let kb = MAX_MESSAGE_BYTES / 1024;
                    return Err(mlua::Error::runtime(format!("goop.group.send: a message is at most {kb} KB of JSON")));
                }
                let to = match options.map(|o| o.get::<Option<Table>>("to")).transpose()?.flatten() {
                    Some(list) => Some(recipients(&list)?),
                    None => None,
                };
                let text = String::from_utf8(text).map_err(mlua::Error::external)?;
                let queued = groups.send(&name, &text, to.as_deref()).map_err(mlua::Error::runtime)?;
                Ok(queued)
            })?,
        )?;
        let groups = self.groups.clone();
        t.set(
            "members",
            lua.create_function(move |lua, name: String| {
                let members = groups.members(&name);
                Budget::of(lua).charge(members.iter().map(|m| m.id.len() + m.label.len() + 64).sum())?;
                let list = lua.create_table_with_capacity(members.len(), 0)?;
                for member in members {
                    let entry = lua.create_table_with_capacity(0, 2)?;
                    entry.raw_set("id", member.id)?;
                    entry.raw_set("label", member.label)?;
                    list.raw_push(entry)?;
                }
                Ok(list)
            })?,
        )?;
        Ok(t)
    }
}

/// The peer IDs of a `to` list.
fn recipients(list: &Table) -> mlua::Result<Vec<String>> {
    let len = list.raw_len();
    if len > MAX_RECIPIENTS {
        return Err(mlua::Error::runtime(format!("goop.group.send: `to` names at most {MAX_RECIPIENTS} peers")));
    }
    (1..=len).map(|i| list.raw_get::<String>(i)).collect()
}
