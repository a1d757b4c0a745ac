--- Runs one goop.db call
function call(r)
    local p = r.params
    local args = p.args or {}
    local ok, res = pcall(goop.db[p.fn], p.sql, unpack(args))
    if not ok then return { ok = false, error = tostring(res) } end
    if type(res) == "table" then return { ok = true, rows = #res, first = res[1] } end
    return { ok = true, value = res }
end
