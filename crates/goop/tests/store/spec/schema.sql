CREATE TABLE games (
    _id          INTEGER PRIMARY KEY AUTOINCREMENT,
    _owner       TEXT NOT NULL,              -- host peer ID (always X)
    _owner_email TEXT DEFAULT '',
    _created_at  DATETIME DEFAULT CURRENT_TIMESTAMP,
    _updated_at  DATETIME DEFAULT CURRENT_TIMESTAMP,
    challenger   TEXT NOT NULL DEFAULT '',    -- visitor peer ID (always O)
    challenger_label TEXT DEFAULT '',
    board        TEXT NOT NULL DEFAULT '---------',  -- 9 chars: X, O, or -
    turn         TEXT NOT NULL DEFAULT 'X',
    status       TEXT NOT NULL DEFAULT 'waiting',
                 -- waiting | playing | won_x | won_o | draw
    winner       TEXT DEFAULT ''
);
