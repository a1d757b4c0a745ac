--- Tic-tac-toe game management
function call(request)
    local action = request.params.action
    if action == "new" then return new_game()
    elseif action == "state" then return game_state(request.params.game_id)
    elseif action == "lobby" then return lobby()
    elseif action == "cancel" then return cancel_game(request.params.game_id)
    else error("unknown action: " .. tostring(action)) end
end

function new_game()
    local existing = goop.db.query(
        "SELECT _id FROM games WHERE challenger = ? AND status IN ('waiting', 'playing')",
        goop.peer.id)
    if existing and #existing > 0 then
        return { error = "you already have an active game", game_id = existing[1]._id }
    end

    goop.db.exec(
        "INSERT INTO games (_owner, challenger, challenger_label, status) VALUES (?, ?, ?, 'waiting')",
        goop.self.id, goop.peer.id, goop.peer.label)

    local id = goop.db.scalar("SELECT MAX(_id) FROM games WHERE challenger = ?", goop.peer.id)
    return { game_id = id, your_symbol = "O", status = "waiting" }
end

function game_state(game_id)
    if not game_id then error("game_id required") end
    local rows = goop.db.query(
        "SELECT * FROM games WHERE _id = ?", game_id)
    if not rows or #rows == 0 then error("game not found") end
    local g = rows[1]

    local your_symbol = ""
    if goop.peer.id == g._owner then your_symbol = "X"
    elseif goop.peer.id == g.challenger then your_symbol = "O" end

    return {
        game_id = g._id, board = g.board, turn = g.turn,
        status = g.status, winner = g.winner, your_symbol = your_symbol,
        challenger_label = g.challenger_label, created_at = g._created_at
    }
end

function lobby()
    local games = goop.db.query(
        "SELECT _id, challenger, challenger_label, board, turn, status, winner, _created_at FROM games ORDER BY _id DESC LIMIT 20")
    return { games = games or {} }
end
