--- Tic-tac-toe game management: new, accept, state, lobby, cancel
-- The host (this peer) is always X; a visitor who starts a game is O. A new game waits
-- until the host accepts it; a waiting game can be cancelled by either player.
-- Pages follow the game live: group "ttt-lobby" (anyone) hears that the lobby changed,
-- group "ttt-<id>" (only the game's two players) gets the game's new state.

local function whole_number(value)
    local n = tonumber(value)
    if n and n == math.floor(n) then return n end
    return nil
end

local function load_game(game_id)
    local id = whole_number(game_id)
    if not id then error("game_id required") end
    local rows = goop.db.query("SELECT * FROM games WHERE _id = ?", id)
    if #rows == 0 then error("game not found") end
    return rows[1]
end

local function symbol_of(g)
    if goop.peer.id == g._owner then return "X" end
    if goop.peer.id == g.challenger then return "O" end
    return ""
end

local function game_state(game_id)
    local g = load_game(game_id)
    return {
        game_id = g._id, board = g.board, turn = g.turn,
        status = g.status, winner = g.winner, your_symbol = symbol_of(g),
        challenger_label = g.challenger_label, created_at = g._created_at,
    }
end

-- Tells the pages in the lobby, and the game's players if `game_id` is given, what changed.
-- (Without `your_symbol`: each page knows its own.)
local function announce(game_id)
    goop.group.send("ttt-lobby", { type = "lobby" })
    if game_id then
        local state = game_state(game_id)
        state.your_symbol = nil
        goop.group.send("ttt-" .. game_id, { type = "game", game = state })
    end
end

local function new_game()
    if goop.peer.id == goop.self.id then
        return { error = "you host this game: wait for a visitor to challenge you" }
    end
    local existing = goop.db.query(
        "SELECT _id FROM games WHERE challenger = ? AND status IN ('waiting', 'playing')", goop.peer.id)
    if #existing > 0 then
        return { error = "you already have an active game", game_id = existing[1]._id }
    end
    goop.db.exec(
        "INSERT INTO games (_owner, challenger, challenger_label, status) VALUES (?, ?, ?, 'waiting')",
        goop.self.id, goop.peer.id, goop.peer.label)
    local id = goop.db.scalar("SELECT MAX(_id) FROM games WHERE challenger = ?", goop.peer.id)
    announce(nil)
    return { game_id = id, your_symbol = "O", status = "waiting" }
end

local function accept_game(game_id)
    local g = load_game(game_id)
    if goop.peer.id ~= g._owner then return { error = "only the host can accept a challenge" } end
    if g.status ~= "waiting" then return { error = "game is not waiting", status = g.status } end
    goop.db.exec(
        "UPDATE games SET status = 'playing', turn = 'X', _updated_at = CURRENT_TIMESTAMP "
            .. "WHERE _id = ? AND status = 'waiting'", g._id)
    announce(g._id)
    return game_state(g._id)
end

local function cancel_game(game_id)
    local g = load_game(game_id)
    if symbol_of(g) == "" then return { error = "you are not a player in this game" } end
    if g.status ~= "waiting" then return { error = "only a waiting game can be cancelled", status = g.status } end
    goop.db.exec(
        "UPDATE games SET status = 'cancelled', turn = '', _updated_at = CURRENT_TIMESTAMP "
            .. "WHERE _id = ? AND status = 'waiting'", g._id)
    announce(g._id)
    return game_state(g._id)
end

local function lobby()
    local games = goop.db.query(
        "SELECT _id, challenger, challenger_label, board, turn, status, winner, _created_at "
            .. "FROM games ORDER BY _id DESC LIMIT 20")
    return { games = games }
end

function call(request)
    local p = request.params or {}
    local action = p.action
    if action == "new" then return new_game()
    elseif action == "accept" then return accept_game(p.game_id)
    elseif action == "state" then return game_state(p.game_id)
    elseif action == "lobby" then return lobby()
    elseif action == "cancel" then return cancel_game(p.game_id)
    else error("unknown action: " .. tostring(action)) end
end

-- Anyone may follow the lobby; only a game's two players may follow the game.
function on_group_join(name, peer)
    if name == "ttt-lobby" or string.sub(name, 1, 4) ~= "ttt-" then return end
    local id = whole_number(string.sub(name, 5))
    local rows = id and goop.db.query("SELECT _owner, challenger FROM games WHERE _id = ?", id) or {}
    if #rows == 0 then return false, "no such game" end
    if peer.id ~= rows[1]._owner and peer.id ~= rows[1].challenger then
        return false, "only the game's two players follow it live"
    end
end
