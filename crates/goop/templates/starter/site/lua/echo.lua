--- Repeats what you send
function handle(args)
    if args == "" then return "Usage: !echo <text>" end
    return "You said: " .. args
end
