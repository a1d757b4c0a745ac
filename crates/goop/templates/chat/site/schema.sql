-- Chat room: only the host's Lua (functions/chat.lua) reads and writes these (see manifest.json).
CREATE TABLE IF NOT EXISTS messages (
    _id         INTEGER PRIMARY KEY AUTOINCREMENT,
    _owner      TEXT NOT NULL,               -- the sender's peer ID
    _created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    label       TEXT NOT NULL DEFAULT '',    -- the sender's label when it spoke
    text        TEXT NOT NULL
);

-- Messages per member in the current minute (the moderator's rate limit).
CREATE TABLE IF NOT EXISTS chat_rates (
    peer   TEXT PRIMARY KEY,
    minute INTEGER NOT NULL,
    count  INTEGER NOT NULL
);

-- Peers the host shut out of the room.
CREATE TABLE IF NOT EXISTS banned (
    peer  TEXT PRIMARY KEY,
    label TEXT NOT NULL DEFAULT ''
);
