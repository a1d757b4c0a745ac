--- Scores a quiz on the host: answers in, score out; the right answers never leave
--- @rate_limit 10
-- params.answers = { ["<question id>"] = <choice index>, ... }

function call(request)
    local answers = (request.params or {}).answers
    if type(answers) ~= "table" then error("answers required: { [question id] = choice index }") end

    local key = goop.db.query("SELECT question_id, answer FROM answer_key")
    local score, correct = 0, {}
    for _, row in ipairs(key) do
        local given = tonumber(answers[tostring(row.question_id)])
        if given ~= nil and given == row.answer then
            score = score + 1
            table.insert(correct, row.question_id)
        end
    end
    local total = #key

    goop.db.exec("INSERT INTO scores (_owner, label, score, total) VALUES (?, ?, ?, ?)",
        goop.peer.id, goop.peer.label, score, total)
    return { score = score, total = total, correct = correct }
end
