--- The quiz's best scores, one line per player

function call(request)
    local rows = goop.db.query(
        "SELECT _owner AS player, MAX(label) AS label, MAX(score) AS score, MAX(total) AS total "
            .. "FROM scores GROUP BY _owner ORDER BY score DESC, MIN(_id) LIMIT 10")
    return { entries = rows }
end
