--- Chat room: the room's state for a page, and bans (the host only)
-- The host's moderator. Pages join the group "chat" and send {text = "..."}; every message
-- passes on_group_message below, which refuses with a reason (shown to the sender, and to
-- nobody else) or stores it and pushes {type = "message", ...} to every member. Each hook runs
-- in a fresh environment, so what must last (history, rates, bans) lives in goop.db.

local ROOM = "chat"
local MAX_MEMBERS = 50
local MAX_CHARS = 500
local PER_MINUTE = 12
local HISTORY = 200 -- messages kept
local SHOWN = 50 -- messages a page gets when it (re)connects
-- Whole words refused, lower case. Make the list yours.
local BLOCKED = { "spam", "scam", "idiot", "stupid" }

local function is_banned(id)
    return goop.db.scalar("SELECT COUNT(*) FROM banned WHERE peer = ?", id) > 0
end

local function person(peer)
    return { id = peer.id, label = peer.label or "" }
end

-- The first blocked word in `text`, if any.
local function blocked_word(text)
    local lower = string.lower(text)
    for _, word in ipairs(BLOCKED) do
        if string.find(lower, "%f[%w]" .. word .. "%f[%W]") then return word end
    end
    return nil
end

-- Counts one more message of `id` in this minute; true while within the rate.
local function within_rate(id)
    local minute = math.floor(os.time() / 60)
    goop.db.exec("DELETE FROM chat_rates WHERE minute < ?", minute)
    goop.db.exec(
        "INSERT INTO chat_rates (peer, minute, count) VALUES (?, ?, 1) "
            .. "ON CONFLICT (peer) DO UPDATE SET count = count + 1",
        id, minute)
    return goop.db.scalar("SELECT count FROM chat_rates WHERE peer = ?", id) <= PER_MINUTE
end

function on_group_join(name, peer)
    if name ~= ROOM then return end
    if is_banned(peer.id) then return false, "you are banned from this room" end
    if #goop.group.members(ROOM) >= MAX_MEMBERS then
        return false, "the room is full (" .. MAX_MEMBERS .. " members)"
    end
    goop.group.send(ROOM, { type = "join", member = person(peer) })
end

function on_group_leave(name, peer)
    if name ~= ROOM then return end
    goop.group.send(ROOM, { type = "leave", member = person(peer) })
end

function on_group_message(name, message)
    if name ~= ROOM then return end
    local text = type(message) == "table" and message.text
    if type(text) ~= "string" then return false, "send {text = \"...\"}" end
    text = string.match(text, "^%s*(.-)%s*$")
    if text == "" then return false, "say something" end
    local chars = utf8.len(text)
    if not chars then return false, "the text is not valid UTF-8" end
    if chars > MAX_CHARS then return false, "a message is at most " .. MAX_CHARS .. " characters" end
    if is_banned(goop.peer.id) then return false, "you are banned from this room" end
    -- Counted before the word filter: tries at a blocked word use up the rate too.
    if not within_rate(goop.peer.id) then
        return false, "slow down: at most " .. PER_MINUTE .. " messages a minute"
    end
    local word = blocked_word(text)
    if word then return false, "\"" .. word .. "\" is not allowed here" end

    goop.db.exec("INSERT INTO messages (_owner, label, text) VALUES (?, ?, ?)", goop.peer.id, goop.peer.label, text)
    local id = goop.db.scalar("SELECT MAX(_id) FROM messages WHERE _owner = ?", goop.peer.id)
    goop.db.exec("DELETE FROM messages WHERE _id <= ?", id - HISTORY)
    goop.group.send(ROOM, {
        type = "message", id = id, from = goop.peer.id, label = goop.peer.label, text = text, at = os.time(),
    })
end

local function state()
    local rows = goop.db.query(
        "SELECT _id, _owner, label, text, CAST(strftime('%s', _created_at) AS INTEGER) AS at "
            .. "FROM messages ORDER BY _id DESC LIMIT ?", SHOWN)
    local messages = {}
    for i = #rows, 1, -1 do
        local r = rows[i]
        table.insert(messages, { id = r._id, from = r._owner, label = r.label, text = r.text, at = r.at })
    end
    local answer = {
        room = ROOM, host = goop.self.id, members = goop.group.members(ROOM), messages = messages,
        limits = { chars = MAX_CHARS, per_minute = PER_MINUTE },
    }
    if goop.peer.id == goop.self.id then
        answer.banned = goop.db.query("SELECT peer AS id, label FROM banned ORDER BY label")
    end
    return answer
end

-- Bans or lets back `peer` (an ID); the host only. A banned member's messages are refused
-- at once and it cannot join again.
local function ban(peer, label, banned)
    if goop.peer.id ~= goop.self.id then error("only the host bans") end
    if type(peer) ~= "string" or peer == "" then error("peer required") end
    if peer == goop.self.id then error("the host cannot ban itself") end
    if banned then
        goop.db.exec("INSERT OR IGNORE INTO banned (peer, label) VALUES (?, ?)", peer, tostring(label or ""))
    else
        goop.db.exec("DELETE FROM banned WHERE peer = ?", peer)
    end
    goop.group.send(ROOM, { type = banned and "banned" or "unbanned", member = { id = peer, label = label or "" } })
    return state()
end

function call(request)
    local p = request.params or {}
    if p.action == "state" then return state()
    elseif p.action == "ban" then return ban(p.peer, p.label, true)
    elseif p.action == "unban" then return ban(p.peer, p.label, false)
    else error("unknown action: " .. tostring(p.action)) end
end
