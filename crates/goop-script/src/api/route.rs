//! `goop.route(handlers)` and `goop.owner(fn)`: the action dispatcher and the owner-only
//! wrapper that goop2's data functions are built from.
//!
//! ```lua
//! local dispatch = goop.route({
//!     list   = function(params) return { items = {} } end,       -- anyone
//!     delete = goop.owner(function(params) return true end),     -- the site owner only
//! })
//! function call(request) return dispatch(request) end
//! ```
//!
//! Both are plain Luau closures, compiled once per VM: the handlers they hold are ordinary Lua
//! references, collected with the call's garbage (a Rust closure holding them would root them
//! in the registry, and a handler that reaches its dispatcher would never be freed).

use mlua::{Lua, Table};

use crate::invocation::Invocation;

const SOURCE: &str = r#"
local caller_is_owner = ...
local type, error, rawget = type, error, rawget

local function route(handlers)
    if type(handlers) ~= "table" then
        error("goop.route expects a table of action handlers", 2)
    end
    return function(request)
        local params = type(request) == "table" and rawget(request, "params")
        if type(params) ~= "table" then
            error("request.params missing", 2)
        end
        local action = rawget(params, "action")
        if type(action) ~= "string" or action == "" then
            error("action parameter required", 2)
        end
        local handler = rawget(handlers, action)
        if handler == nil then
            error("unknown action: " .. action, 2)
        end
        if type(handler) ~= "function" then
            error("action " .. action .. " is not a function", 2)
        end
        return handler(params)
    end
end

local function owner(fn)
    if type(fn) ~= "function" then
        error("goop.owner expects a function", 2)
    end
    return function(...)
        if not caller_is_owner() then
            error("only the site owner can do this", 2)
        end
        return fn(...)
    end
end

return route, owner
"#;

/// Adds `route` and `owner` to `goop`; `self_id` is this peer's ID (`goop.self.id`).
pub fn install(lua: &Lua, goop: &Table, self_id: &str) -> mlua::Result<()> {
    let self_id = self_id.to_owned();
    let caller_is_owner = lua.create_function(move |lua, ()| {
        Ok(lua.app_data_ref::<Invocation>().is_some_and(|inv| inv.caller().id == self_id))
    })?;
    let (route, owner): (mlua::Function, mlua::Function) =
        lua.load(SOURCE).set_name("=goop.route").call(caller_is_owner)?;
    goop.raw_set("route", route)?;
    goop.raw_set("owner", owner)?;
    Ok(())
}
