--- Tells this peer's current time in UTC
function handle(args)
    return os.date("!%Y-%m-%d %H:%M:%S UTC")
end
