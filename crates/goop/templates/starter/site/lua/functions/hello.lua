--- Greets the caller
-- Call it from a page: goopData.call("hello", { name = "Bo" })
function call(request)
    local name = request.params.name
    if type(name) ~= "string" or name == "" then
        name = goop.peer.label ~= "" and goop.peer.label or "stranger"
    end
    return { message = "Hello, " .. name .. "!", caller = goop.peer.id }
end
