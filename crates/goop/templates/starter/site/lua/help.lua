--- Lists the chat commands this peer answers
function handle(args)
    local commands = goop.commands()
    local lines = {"Available commands:"}
    for _, cmd in ipairs(commands) do
        table.insert(lines, "  !" .. cmd)
    end
    return table.concat(lines, "\n")
end
