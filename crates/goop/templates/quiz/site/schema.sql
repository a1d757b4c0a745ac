-- Quiz: questions anyone may read, the answer key only the host's scripts read (manifest.json
-- policies), and scores only score-quiz.lua writes. This file is never served to visitors.
CREATE TABLE IF NOT EXISTS questions (
    _id         INTEGER PRIMARY KEY AUTOINCREMENT,
    _owner      TEXT NOT NULL,
    _created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    question    TEXT NOT NULL,
    choices     TEXT NOT NULL            -- JSON array of strings
);
CREATE TABLE IF NOT EXISTS answer_key (
    _id         INTEGER PRIMARY KEY AUTOINCREMENT,
    _owner      TEXT NOT NULL,
    _created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    question_id INTEGER NOT NULL UNIQUE,
    answer      INTEGER NOT NULL         -- index into the question's choices, from 0
);
CREATE TABLE IF NOT EXISTS scores (
    _id         INTEGER PRIMARY KEY AUTOINCREMENT,
    _owner      TEXT NOT NULL,           -- the player's peer ID
    _created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    label       TEXT DEFAULT '',
    score       INTEGER NOT NULL,
    total       INTEGER NOT NULL
);
INSERT OR IGNORE INTO questions (_id, _owner, question, choices) VALUES
    (1, 'template', 'Which protocol carries a goop site''s files between peers?',
        '["HTTP", "/goop/site/1.0.0", "FTP"]'),
    (2, 'template', 'Where do a peer''s data functions live?',
        '["site/lua/functions/", "site/js/", "/etc/goop"]'),
    (3, 'template', 'Who scores this quiz?', '["Your browser", "Nobody", "The host''s Lua script"]');
INSERT OR IGNORE INTO answer_key (_id, _owner, question_id, answer) VALUES
    (1, 'template', 1, 1), (2, 'template', 2, 0), (3, 'template', 3, 2);
