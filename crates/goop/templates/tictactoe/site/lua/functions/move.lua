--- Make a move in a tic-tac-toe game
-- The referee: checks the caller plays in this game, that it is their turn and the cell is
-- free, then writes the new board only if nobody changed it meanwhile, and pushes it to the
-- game's group (see ttt.lua's on_group_join).

local LINES = {
    {1, 2, 3}, {4, 5, 6}, {7, 8, 9}, -- rows
    {1, 4, 7}, {2, 5, 8}, {3, 6, 9}, -- columns
    {1, 5, 9}, {3, 5, 7},            -- diagonals
}

local function check_winner(b)
    for _, line in ipairs(LINES) do
        local a = string.sub(b, line[1], line[1])
        if a ~= "-" and a == string.sub(b, line[2], line[2]) and a == string.sub(b, line[3], line[3]) then
            return a
        end
    end
    return nil
end

local function whole_number(value)
    local n = tonumber(value)
    if n and n == math.floor(n) then return n end
    return nil
end

function call(request)
    local p = request.params or {}
    local game_id = whole_number(p.game_id)
    local pos = whole_number(p.position) -- 0-8
    if not game_id or not pos then error("game_id and position required") end
    if pos < 0 or pos > 8 then error("position must be 0-8") end

    local rows = goop.db.query(
        "SELECT _id, _owner, challenger, board, turn, status FROM games WHERE _id = ?", game_id)
    if #rows == 0 then error("game not found") end
    local game = rows[1]

    if game.status ~= "playing" then
        return { error = "game is not in progress", status = game.status }
    end

    local symbol
    if goop.peer.id == game._owner then symbol = "X"
    elseif goop.peer.id == game.challenger then symbol = "O"
    else return { error = "you are not a player in this game" } end

    if game.turn ~= symbol then return { error = "not your turn" } end

    local idx = pos + 1 -- Lua strings are 1-indexed
    if string.sub(game.board, idx, idx) ~= "-" then
        return { error = "cell is already occupied" }
    end
    local new_board = string.sub(game.board, 1, idx - 1) .. symbol .. string.sub(game.board, idx + 1)

    local winner = check_winner(new_board)
    local new_status, new_turn, winner_id = "playing", (symbol == "X") and "O" or "X", ""
    if winner then
        new_status = "won_" .. string.lower(winner)
        new_turn = ""
        winner_id = (winner == "X") and game._owner or game.challenger
    elseif not string.find(new_board, "-", 1, true) then
        new_status = "draw"
        new_turn = ""
    end

    -- Compare-and-set: a second tab's move in between makes this one fail, not overwrite it.
    local changed = goop.db.exec(
        "UPDATE games SET board = ?, turn = ?, status = ?, winner = ?, _updated_at = CURRENT_TIMESTAMP "
            .. "WHERE _id = ? AND board = ? AND turn = ? AND status = 'playing'",
        new_board, new_turn, new_status, winner_id, game_id, game.board, game.turn)
    if changed ~= 1 then return { error = "the board changed meanwhile; try again" } end

    -- Both players' pages re-render from this; the lobby only needs to know a game ended.
    goop.group.send("ttt-" .. game_id, { type = "game", game = {
        game_id = game_id, board = new_board, turn = new_turn, status = new_status, winner = winner_id,
    } })
    if new_status ~= "playing" then goop.group.send("ttt-lobby", { type = "lobby" }) end

    return {
        board = new_board, turn = new_turn,
        status = new_status, winner = winner_id, your_symbol = symbol,
    }
end
