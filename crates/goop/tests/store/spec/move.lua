--- Make a move in a tic-tac-toe game
function call(request)
    local p = request.params
    local game_id = p.game_id
    local pos = tonumber(p.position)  -- 0-8

    if not game_id or not pos then error("game_id and position required") end
    if pos < 0 or pos > 8 then error("position must be 0-8") end

    -- Load the game
    local rows = goop.db.query(
        "SELECT _id, _owner, challenger, board, turn, status FROM games WHERE _id = ?",
        game_id)
    if not rows or #rows == 0 then error("game not found") end
    local game = rows[1]

    if game.status ~= "playing" then
        return { error = "game is not in progress", status = game.status }
    end

    -- Determine caller's symbol
    local symbol
    if goop.peer.id == game._owner then symbol = "X"
    elseif goop.peer.id == game.challenger then symbol = "O"
    else return { error = "you are not a player in this game" } end

    if game.turn ~= symbol then return { error = "not your turn" } end

    -- Check cell is empty and place move
    local idx = pos + 1  -- Lua is 1-indexed
    if string.sub(game.board, idx, idx) ~= "-" then
        return { error = "cell is already occupied" }
    end

    local new_board = string.sub(game.board, 1, idx - 1)
                   .. symbol
                   .. string.sub(game.board, idx + 1)

    -- Check for winner
    local winner = check_winner(new_board)
    local new_status = "playing"
    local new_turn = (symbol == "X") and "O" or "X"
    local winner_id = ""

    if winner then
        new_status = "won_" .. string.lower(winner)
        new_turn = ""
        winner_id = (winner == "X") and game._owner or game.challenger
    elseif not string.find(new_board, "-") then
        new_status = "draw"
        new_turn = ""
    end

    goop.db.exec(
        "UPDATE games SET board = ?, turn = ?, status = ?, winner = ?, _updated_at = CURRENT_TIMESTAMP WHERE _id = ?",
        new_board, new_turn, new_status, winner_id, game_id)

    return {
        board = new_board, turn = new_turn,
        status = new_status, winner = winner_id, your_symbol = symbol
    }
end

function check_winner(b)
    local lines = {
        {1,2,3}, {4,5,6}, {7,8,9},  -- rows
        {1,4,7}, {2,5,8}, {3,6,9},  -- cols
        {1,5,9}, {3,5,7}            -- diagonals
    }
    for _, line in ipairs(lines) do
        local a = string.sub(b, line[1], line[1])
        local b2 = string.sub(b, line[2], line[2])
        local c = string.sub(b, line[3], line[3])
        if a ~= "-" and a == b2 and b2 == c then return a end
    end
    return nil
end
