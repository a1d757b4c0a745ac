//! `goop.config(table, defaults)`: settings kept in a table, goop2's helper over `goop.orm`.
//!
//! ```lua
//! local cfg = goop.config("settings", { theme = "light" })   -- nil, err when there is no such table
//! local theme = cfg.theme                                     -- the stored value, else the default
//! cfg:set("theme", "dark")                                    -- written at once; true, or nil, err
//! ```
//!
//! A table with `key` and `value` columns holds one setting per row (`set` upserts by `key`
//! and stores the value as text, as goop2 does); when a key has several rows, the oldest
//! (the one `set` updates) is its value. Any other table is one settings row, its
//! last: `set(key, value)` and `save({...})` update that row, or insert it when there is none.
//! It is plain Luau over the `goop.orm` handle, so it reaches no more than `goop.orm` does.
//! A table remote peers may insert into, update or delete from (`open` or `own`) is refused
//! (`nil, err`): a visitor's row would otherwise be the setting the scripts read.

use goop_script::mlua::{self, Lua, Table};
use goop_script::{HostModule, Scope};

use super::OrmModule;
use crate::store::Store;

const SOURCE: &str = r#"
local orm = ...
local type, pairs, ipairs, error, setmetatable, tostring = type, pairs, ipairs, error, setmetatable, tostring
local SYSTEM = { _id = true, _owner = true, _owner_email = true, _created_at = true, _updated_at = true }

local function config(_, name, defaults)
    if defaults ~= nil and type(defaults) ~= "table" then
        error("goop.config: defaults must be a table", 2)
    end
    local rows, err = orm(name)
    if not rows then
        return nil, err
    end
    -- Settings are the owner's: where visitors write rows, theirs would be the ones read.
    for _, op in ipairs({ "insert", "update", "delete" }) do
        local level = rows.access[op]
        if level == "open" or level == "own" then
            return nil, "goop.config: visitors may write table " .. rows.name .. " (" .. op .. ": " .. level
                .. "); settings need a table only the owner writes"
        end
    end
    local has_key, has_value = false, false
    for _, column in ipairs(rows.columns) do
        has_key = has_key or column.name == "key"
        has_value = has_value or column.name == "value"
    end
    local values = {}
    for k, v in pairs(defaults or {}) do
        if type(k) == "string" then
            values[k] = v
        end
    end
    local cfg = {}
    if has_key and has_value then
        -- Newest first, so the oldest row of a key is read last and wins: it is the row `set`
        -- updates (upsert's first match), and a later row for the key changes nothing.
        local stored, e = rows:find({ fields = { "key", "value" }, order = "_id DESC", limit = 1000 })
        if not stored then
            return nil, e
        end
        for _, row in ipairs(stored) do
            if type(row.key) == "string" and row.key ~= "" then
                values[row.key] = row.value
            end
        end
        function cfg:set(key, value)
            if type(key) ~= "string" or key == "" then
                error("goop.config: set(key, value) takes a key of text", 2)
            end
            local text = value == nil and "" or tostring(value)
            local ok, e2 = rows:upsert("key", { key = key, value = text })
            if not ok then
                return nil, e2
            end
            values[key] = text
            return true
        end
    else
        local last = rows:find_one({ order = "_id DESC" })
        for k, v in pairs(last or {}) do
            if not SYSTEM[k] then
                values[k] = v
            end
        end
        function cfg:save(data)
            if type(data) ~= "table" then
                error("goop.config: save takes a table of values", 2)
            end
            local row = rows:find_one({ order = "_id DESC", fields = { "_id" } })
            local ok, e2
            if row then
                ok, e2 = rows:update(row._id, data)
            else
                ok, e2 = rows:insert(data)
            end
            if not ok then
                return nil, e2
            end
            for k, v in pairs(data) do
                values[k] = v
            end
            return true
        end
        function cfg:set(key, value)
            if type(key) ~= "string" or key == "" then
                error("goop.config: set(key, value) takes a key of text", 2)
            end
            return cfg:save({ [key] = value })
        end
    end
    return setmetatable(cfg, { __index = values })
end

return setmetatable({}, { __call = config, __metatable = false })
"#;

/// The `goop.config` host module over a peer's store.
#[derive(Debug, Clone)]
pub struct ConfigModule {
    orm: OrmModule,
}

impl ConfigModule {
    pub fn new(store: Store) -> Self {
        ConfigModule { orm: OrmModule::new(store) }
    }
}

impl HostModule for ConfigModule {
    fn name(&self) -> &str {
        "config"
    }

    fn scope(&self) -> Scope {
        Scope::DataFunctions
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        let orm = self.orm.build(lua)?;
        lua.load(SOURCE).set_name("=goop.config").call(orm)
    }
}
