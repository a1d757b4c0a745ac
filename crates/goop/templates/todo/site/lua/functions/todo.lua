--- The to-do list: list, add, toggle (your own items; the owner any), delete and reorder (owner)
local MAX_ITEMS = 500
-- Visitors share part of the list, each a few items: one visitor (or a crowd of made-up peer
-- IDs) cannot fill the owner's list.
local MAX_VISITOR_ITEMS = 400
local MAX_PER_VISITOR = 20
local MAX_TITLE = 200

local todos -- the table, opened in call()

-- The template's own table (site/schemas/NAME.json) with the access it declares. A table of
-- that name made another way (by schema.sql, before the template was applied) keeps its own
-- access, which could let every visitor read or write around this function: refuse to run.
local function own_table(name, read)
    local t, err = goop.orm(name)
    local a = t and t.access
    if not a or a.read ~= read or a.insert ~= "owner" or a.update ~= "owner" or a.delete ~= "owner" then
        error("table " .. name .. " is not the one site/schemas/" .. name .. ".json declares (see goop check)"
            .. (err and ": " .. err or ""))
    end
    return t
end

local function is_owner()
    return goop.peer.id == goop.self.id
end

local function item(id)
    local row = todos:get(tonumber(id) or -1)
    if not row then
        error("no such item")
    end
    return row
end

local function list()
    return { items = todos:find({ order = "position ASC, _id ASC", limit = MAX_ITEMS }), owner = is_owner() }
end

local function add(params)
    local title = type(params.title) == "string" and params.title:match("^%s*(.-)%s*$") or ""
    if title == "" or #title > MAX_TITLE then
        error("a title of 1 to " .. MAX_TITLE .. " characters, please")
    end
    if todos:count() >= MAX_ITEMS then
        error("the list is full (" .. MAX_ITEMS .. " items)")
    end
    if not is_owner() then
        local mine = todos:count({ where = "_owner = ?", args = { goop.peer.id } })
        if mine >= MAX_PER_VISITOR then
            error("you have " .. mine .. " items on this list already (at most " .. MAX_PER_VISITOR .. ")")
        end
        if todos:count({ where = "_owner <> ?", args = { goop.self.id } }) >= MAX_VISITOR_ITEMS then
            error("the list is full for visitors (" .. MAX_VISITOR_ITEMS .. " items)")
        end
    end
    local last = todos:aggregate("MAX(position) AS top")[1]
    local id, err = todos:insert({ title = title, done = 0, position = (last and last.top or 0) + 1 })
    if not id then
        error(err)
    end
    return list()
end

local function toggle(params)
    local row = item(params.id)
    if row._owner ~= goop.peer.id and not is_owner() then
        error("only whoever added an item (or the list's owner) can tick it off")
    end
    todos:update(row._id, { done = row.done == 1 and 0 or 1 })
    return list()
end

local function delete(params)
    todos:delete(item(params.id)._id)
    return list()
end

local function reorder(params)
    local ids = params.ids
    if type(ids) ~= "table" or #ids > MAX_ITEMS then
        error("ids: the items' ids in their new order")
    end
    for position, id in ipairs(ids) do
        todos:update(item(id)._id, { position = position })
    end
    return list()
end

local dispatch = goop.route({
    list = list,
    add = add,
    toggle = toggle,
    delete = goop.owner(delete),
    reorder = goop.owner(reorder),
})

function call(request)
    todos = own_table("todos", "open")
    return dispatch(request)
end
