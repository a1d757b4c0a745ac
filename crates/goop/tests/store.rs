//! Store tests: the spec's tic-tac-toe schema and scripts through a real engine, data-protocol
//! access policies from a visitor's side, hostile requests, and the walls of `goop.db`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goop::store::{DbModule, Store};
use goop_script::{Config, Engine, Peer};
use serde_json::{json, Value};
use tempfile::TempDir;

const HOST: &str = "12D3KooWHost";
const VISITOR: &str = "12D3KooWVisitor";
const OTHER: &str = "12D3KooWOther";

/// The spec's tic-tac-toe schema, verbatim.
const TTT_SCHEMA: &str = r#"CREATE TABLE games (
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
);"#;

/// Tables for the policy tests: `notes` with default policies, `secrets` read `own`,
/// `diary` read `owner`, `plain` without system columns, and a seed row.
const EXTRA_SCHEMA: &str = "
CREATE TABLE notes (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    text TEXT NOT NULL DEFAULT ''
);
CREATE TABLE secrets (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME, _updated_at DATETIME, value TEXT
);
CREATE TABLE diary (
    _id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL,
    _created_at DATETIME, _updated_at DATETIME, entry TEXT
);
CREATE TABLE plain (name TEXT);
INSERT INTO notes (_owner, text) VALUES ('seed', 'hello');
";

const POLICIES: &str = r#"{"tables": {
    "games": {"read": "open", "insert": "none", "update": "none", "delete": "none"},
    "secrets": {"read": "own"},
    "diary": {"read": "owner", "insert": "owner"}
}}"#;

/// The spec's `move.lua`, verbatim.
const MOVE_LUA: &str = r#"--- Make a move in a tic-tac-toe game
function call(request)
    local p = request.params
    local game_id = p.game_id
    local pos = tonumber(p.position)  -- 0-8

    if not game_id or not pos then error("game_id and position required") end
    if pos < 0 or pos > 8 then error("position must be 0-8") end

    -- Load the game
    local rows = goop.db.query(
        "SELECT _id, _owner, challenger, board, turn, status FROM games WHERE _id = ?",
        game_id)
    if not rows or #rows == 0 then error("game not found") end
    local game = rows[1]

    if game.status ~= "playing" then
        return { error = "game is not in progress", status = game.status }
    end

    -- Determine caller's symbol
    local symbol
    if goop.peer.id == game._owner then symbol = "X"
    elseif goop.peer.id == game.challenger then symbol = "O"
    else return { error = "you are not a player in this game" } end

    if game.turn ~= symbol then return { error = "not your turn" } end

    -- Check cell is empty and place move
    local idx = pos + 1  -- Lua is 1-indexed
    if string.sub(game.board, idx, idx) ~= "-" then
        return { error = "cell is already occupied" }
    end

    local new_board = string.sub(game.board, 1, idx - 1)
                   .. symbol
                   .. string.sub(game.board, idx + 1)

    -- Check for winner
    local winner = check_winner(new_board)
    local new_status = "playing"
    local new_turn = (symbol == "X") and "O" or "X"
    local winner_id = ""

    if winner then
        new_status = "won_" .. string.lower(winner)
        new_turn = ""
        winner_id = (winner == "X") and game._owner or game.challenger
    elseif not string.find(new_board, "-") then
        new_status = "draw"
        new_turn = ""
    end

    goop.db.exec(
        "UPDATE games SET board = ?, turn = ?, status = ?, winner = ?, _updated_at = CURRENT_TIMESTAMP WHERE _id = ?",
        new_board, new_turn, new_status, winner_id, game_id)

    return {
        board = new_board, turn = new_turn,
        status = new_status, winner = winner_id, your_symbol = symbol
    }
end

function check_winner(b)
    local lines = {
        {1,2,3}, {4,5,6}, {7,8,9},  -- rows
        {1,4,7}, {2,5,8}, {3,6,9},  -- cols
        {1,5,9}, {3,5,7}            -- diagonals
    }
    for _, line in ipairs(lines) do
        local a = string.sub(b, line[1], line[1])
        local b2 = string.sub(b, line[2], line[2])
        local c = string.sub(b, line[3], line[3])
        if a ~= "-" and a == b2 and b2 == c then return a end
    end
    return nil
end"#;

/// The spec's `ttt.lua`, verbatim.
const TTT_LUA: &str = r#"--- Tic-tac-toe game management
function call(request)
    local action = request.params.action
    if action == "new" then return new_game()
    elseif action == "state" then return game_state(request.params.game_id)
    elseif action == "lobby" then return lobby()
    elseif action == "cancel" then return cancel_game(request.params.game_id)
    else error("unknown action: " .. tostring(action)) end
end

function new_game()
    local existing = goop.db.query(
        "SELECT _id FROM games WHERE challenger = ? AND status IN ('waiting', 'playing')",
        goop.peer.id)
    if existing and #existing > 0 then
        return { error = "you already have an active game", game_id = existing[1]._id }
    end

    goop.db.exec(
        "INSERT INTO games (_owner, challenger, challenger_label, status) VALUES (?, ?, ?, 'waiting')",
        goop.self.id, goop.peer.id, goop.peer.label)

    local id = goop.db.scalar("SELECT MAX(_id) FROM games WHERE challenger = ?", goop.peer.id)
    return { game_id = id, your_symbol = "O", status = "waiting" }
end

function game_state(game_id)
    if not game_id then error("game_id required") end
    local rows = goop.db.query(
        "SELECT * FROM games WHERE _id = ?", game_id)
    if not rows or #rows == 0 then error("game not found") end
    local g = rows[1]

    local your_symbol = ""
    if goop.peer.id == g._owner then your_symbol = "X"
    elseif goop.peer.id == g.challenger then your_symbol = "O" end

    return {
        game_id = g._id, board = g.board, turn = g.turn,
        status = g.status, winner = g.winner, your_symbol = your_symbol,
        challenger_label = g.challenger_label, created_at = g._created_at
    }
end

function lobby()
    local games = goop.db.query(
        "SELECT _id, challenger, challenger_label, board, turn, status, winner, _created_at FROM games ORDER BY _id DESC LIMIT 20")
    return { games = games or {} }
end"#;

/// Runs `goop.db.<fn>(sql, args...)` and reports `{ok, rows | value | error}`.
const SQL_LUA: &str = r#"--- Runs one goop.db call
function call(r)
    local p = r.params
    local args = p.args or {}
    local ok, res = pcall(goop.db[p.fn], p.sql, unpack(args))
    if not ok then return { ok = false, error = tostring(res) } end
    if type(res) == "table" then return { ok = true, rows = #res, first = res[1] } end
    return { ok = true, value = res }
end
"#;

/// A peer folder with the tic-tac-toe site, the extra tables and the policies.
fn peer_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("lua/functions")).unwrap();
    std::fs::write(site.join("schema.sql"), format!("{TTT_SCHEMA}\n{EXTRA_SCHEMA}")).unwrap();
    std::fs::write(site.join("schema.json"), POLICIES).unwrap();
    std::fs::write(site.join("lua/functions/ttt.lua"), TTT_LUA).unwrap();
    std::fs::write(site.join("lua/functions/move.lua"), MOVE_LUA).unwrap();
    std::fs::write(site.join("lua/functions/sql.lua"), SQL_LUA).unwrap();
    dir
}

fn engine(dir: &Path, store: &Store, timeout: Duration) -> Engine {
    let mut config = Config::new(dir.join("site/lua"));
    config.hot_reload = false;
    config.rate_limit_per_peer = 0;
    config.rate_limit_global = 0;
    config.timeout = timeout;
    config.local = Peer::new(HOST, "Host");
    Engine::with_modules(config, vec![Arc::new(DbModule::new(store.clone()))]).unwrap()
}

fn data(store: &Store, caller: &str, request: Value) -> Value {
    store.data_request(caller, &request)
}

/// The error text of a data answer that must have failed.
fn refused(store: &Store, caller: &str, request: Value) -> String {
    let answer = data(store, caller, request.clone());
    assert_eq!(answer["ok"], json!(false), "{request} should fail, got {answer}");
    answer["error"].as_str().unwrap_or_default().to_string()
}

// ---- schema -------------------------------------------------------------------------------

#[test]
fn schema_applies_once_and_reopens() {
    let dir = peer_dir();
    for _ in 0..3 {
        let store = Store::open(dir.path(), HOST).unwrap();
        let tables = data(&store, HOST, json!({"op": "tables"}));
        assert_eq!(tables, json!({"ok": true, "tables": ["diary", "games", "notes", "plain", "secrets"]}));
    }
    let store = Store::open(dir.path(), HOST).unwrap();
    let seeds = data(&store, HOST, json!({"op": "query", "table": "notes", "where": "_owner = 'seed'"}));
    assert_eq!(seeds["rows"].as_array().unwrap().len(), 1, "the seed INSERT ran once: {seeds}");
    drop(store);

    // Appending an ALTER TABLE migrates; the edited file still opens on the next start.
    let schema = dir.path().join("site/schema.sql");
    let mut text = std::fs::read_to_string(&schema).unwrap();
    text.push_str("\nALTER TABLE notes ADD COLUMN mood TEXT DEFAULT 'ok';\n");
    std::fs::write(&schema, &text).unwrap();
    for _ in 0..2 {
        let store = Store::open(dir.path(), HOST).unwrap();
        let cols = data(&store, HOST, json!({"op": "describe", "table": "notes"}));
        assert!(cols["columns"].as_array().unwrap().iter().any(|c| c["name"] == "mood"), "{cols}");
    }

    // A broken statement stops the start and names itself; nothing of it stays.
    text.push_str("CREATE TABLE extra (a TEXT);\nINSERT INTO nowhere VALUES (1);\n");
    std::fs::write(&schema, &text).unwrap();
    let err = Store::open(dir.path(), HOST).unwrap_err().to_string();
    assert!(err.contains("nowhere"), "{err}");
    std::fs::write(&schema, text.replace("INSERT INTO nowhere VALUES (1);", "")).unwrap();
    let store = Store::open(dir.path(), HOST).unwrap();
    assert!(data(&store, HOST, json!({"op": "tables"}))["tables"].as_array().unwrap().contains(&json!("extra")));
}

#[test]
fn simultaneous_opens_apply_the_schema_once() {
    let dir = peer_dir();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || Store::open(&path, HOST).map(|_| ()).map_err(|e| e.to_string()))
        })
        .collect();
    for open in opens {
        assert_eq!(open.join().unwrap(), Ok(()));
    }
    let store = Store::open(dir.path(), HOST).unwrap();
    let seeds = data(&store, HOST, json!({"op": "query", "table": "notes"}));
    assert_eq!(seeds["rows"].as_array().unwrap().len(), 1, "{seeds}");
}

#[test]
fn concurrent_writers_and_readers() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let who = format!("peer{t}");
                for i in 0..25 {
                    let insert = json!({"op": "insert", "table": "notes", "data": {"text": format!("{t}-{i}")}});
                    assert_eq!(store.data_request(&who, &insert)["ok"], json!(true));
                    let mine = json!({"op": "query", "table": "notes", "where": "_owner = ?", "args": [who]});
                    assert_eq!(store.data_request(&who, &mine)["rows"].as_array().map(Vec::len), Some(i + 1));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let all = data(&store, HOST, json!({"op": "query", "table": "notes", "limit": 1000}));
    assert_eq!(all["rows"].as_array().unwrap().len(), 1 + 8 * 25);
}

#[test]
fn database_is_wal_in_the_peer_folder() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    assert_eq!(store.path(), dir.path().join("data.db"));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn bad_policy_file_names_the_field() {
    let dir = peer_dir();
    std::fs::write(dir.path().join("site/schema.json"), r#"{"tables":{"games":{"read":"everyone"}}}"#).unwrap();
    let err = Store::open(dir.path(), HOST).unwrap_err().to_string();
    assert!(err.contains("schema.json") && err.contains("tables.games.read"), "{err}");
}

#[test]
fn inbox_keeps_messages_in_order() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    for text in ["one", "two", "three"] {
        store.save_message(VISITOR, "Ann", text).unwrap();
    }
    let last: Vec<String> = store.inbox(2).unwrap().into_iter().map(|m| m.content).collect();
    assert_eq!(last, ["two", "three"]);
    let m = &store.inbox(1).unwrap()[0];
    assert_eq!((m.from_peer.as_str(), m.from_label.as_str()), (VISITOR, "Ann"));
    assert_eq!(m.received_at.len(), "2026-01-01 00:00:00".len());
}

// ---- data protocol: policies --------------------------------------------------------------

#[test]
fn visitor_insert_is_stamped_and_own_rows_only() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();

    let id = data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": "mine"}}));
    assert_eq!(id["ok"], json!(true), "{id}");
    data(&store, OTHER, json!({"op": "insert", "table": "notes", "data": {"text": "theirs"}}));
    let rows = data(&store, VISITOR, json!({"op": "query", "table": "notes", "where": "_id = ?", "args": [id["id"]]}));
    let row = &rows["rows"][0];
    assert_eq!((row["_owner"].as_str(), row["text"].as_str()), (Some(VISITOR), Some("mine")));
    assert!(row["_created_at"].is_string() && row["_updated_at"].is_string(), "{row}");

    // System columns are the system's.
    let e = refused(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"_owner": HOST}}));
    assert_eq!(e, "column _owner is set by the system");
    let e = refused(&store, VISITOR, json!({"op": "update", "table": "notes", "data": {"_id": 1}, "where": "1"}));
    assert_eq!(e, "column _id is set by the system");

    // `own` update/delete touch only the caller's rows, whatever the where says.
    let all = json!({"op": "update", "table": "notes", "data": {"text": "defaced"}, "where": "1 OR 1"});
    assert_eq!(data(&store, VISITOR, all), json!({"ok": true, "affected": 1}));
    let theirs = json!({"op": "query", "table": "notes", "where": "_owner = ?", "args": [OTHER]});
    assert_eq!(data(&store, VISITOR, theirs.clone())["rows"][0]["text"], "theirs");
    let seed = json!({"op": "delete", "table": "notes", "where": "_owner = 'seed'"});
    assert_eq!(data(&store, VISITOR, seed.clone()), json!({"ok": true, "affected": 0}));
    assert_eq!(data(&store, VISITOR, json!({"op": "delete", "table": "notes", "where": "1"}))["affected"], 1);
    assert_eq!(data(&store, VISITOR, theirs)["rows"].as_array().unwrap().len(), 1);

    // The owner is unrestricted.
    assert_eq!(data(&store, HOST, seed), json!({"ok": true, "affected": 1}));
}

#[test]
fn policies_refuse_and_filter() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();

    // games: read open, writes none for visitors, anything for the owner.
    let e = refused(&store, VISITOR, json!({"op": "insert", "table": "games", "data": {"challenger": VISITOR}}));
    assert_eq!(e, "not allowed: insert on table games (policy: none)");
    let game = data(&store, HOST, json!({"op": "insert", "table": "games", "data": {"challenger": VISITOR}}));
    assert_eq!(game, json!({"ok": true, "id": 1}));
    let e = refused(
        &store,
        VISITOR,
        json!({"op": "update", "table": "games", "data": {"board": "XXX------"}, "where": "1"}),
    );
    assert!(e.contains("update on table games (policy: none)"), "{e}");
    assert!(refused(&store, VISITOR, json!({"op": "delete", "table": "games", "where": "1"})).contains("policy: none"));
    assert_eq!(data(&store, VISITOR, json!({"op": "query", "table": "games"}))["rows"][0]["_owner"], HOST);

    // secrets: read own.
    for (who, value) in [(VISITOR, "v"), (OTHER, "o")] {
        data(&store, who, json!({"op": "insert", "table": "secrets", "data": {"value": value}}));
    }
    let mine = data(&store, VISITOR, json!({"op": "query", "table": "secrets", "columns": ["value"]}));
    assert_eq!(mine, json!({"ok": true, "rows": [{"value": "v"}]}));
    let all =
        data(&store, HOST, json!({"op": "query", "table": "secrets", "columns": ["value"], "order": "value desc"}));
    assert_eq!(all, json!({"ok": true, "rows": [{"value": "v"}, {"value": "o"}]}));

    // diary: owner only, and hidden from a visitor's table list.
    assert_eq!(
        refused(&store, VISITOR, json!({"op": "query", "table": "diary"})),
        "not allowed: read on table diary (policy: owner)"
    );
    assert!(refused(&store, VISITOR, json!({"op": "describe", "table": "diary"})).contains("policy: owner"));
    let tables = data(&store, VISITOR, json!({"op": "tables"}));
    assert_eq!(tables, json!({"ok": true, "tables": ["games", "notes", "plain", "secrets"]}));

    // plain: no system columns, so no remote writes.
    let e = refused(&store, VISITOR, json!({"op": "insert", "table": "plain", "data": {"name": "x"}}));
    assert!(e.contains("has no _id column"), "{e}");
    assert_eq!(data(&store, VISITOR, json!({"op": "query", "table": "plain"})), json!({"ok": true, "rows": []}));
}

#[test]
fn describe_and_query_options() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let cols = data(&store, VISITOR, json!({"op": "describe", "table": "GAMES"}));
    assert_eq!(cols["columns"][0], json!({"name": "_id", "type": "INTEGER"}));
    assert_eq!(cols["columns"][3], json!({"name": "_created_at", "type": "DATETIME"}));
    for i in 0..5 {
        data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": format!("n{i}")}}));
    }
    let page = json!({"op": "query", "table": "notes", "columns": ["text"], "where": "text LIKE ?",
        "args": ["n%"], "order": "_id DESC", "limit": 2, "offset": 1});
    assert_eq!(data(&store, VISITOR, page), json!({"ok": true, "rows": [{"text": "n3"}, {"text": "n2"}]}));
}

#[test]
fn big_answers_are_truncated_with_a_flag() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let big = "x".repeat(400 * 1024);
    for _ in 0..3 {
        data(&store, HOST, json!({"op": "insert", "table": "notes", "data": {"text": big}}));
    }
    let answer = data(&store, VISITOR, json!({"op": "query", "table": "notes", "where": "length(text) > 10"}));
    assert_eq!(answer["truncated"], json!(true));
    assert_eq!(answer["rows"].as_array().unwrap().len(), 2);
    assert!(answer.to_string().len() < 1024 * 1024 + 1024);
}

// ---- data protocol: hostile requests ------------------------------------------------------

#[test]
fn hostile_requests_get_clear_errors() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    store.save_message(OTHER, "Bo", "private").unwrap();
    data(&store, VISITOR, json!({"op": "insert", "table": "notes", "data": {"text": "mine"}}));

    let q = |w: &str| json!({"op": "query", "table": "notes", "where": w});
    let cases: Vec<(Value, &str)> = vec![
        (json!(null), "must be a JSON object"),
        (json!("tables"), "must be a JSON object"),
        (json!([{"op": "tables"}]), "must be a JSON object"),
        (json!({}), "needs an \"op\""),
        (json!({"op": null}), "op must be a string"),
        (json!({"op": "drop"}), "unknown op: drop"),
        (json!({"op": "lua-call"}), "unknown op: lua-call"),
        (json!({"op": "query", "table": "_goop_inbox"}), "no table"),
        (json!({"op": "query", "table": "sqlite_master"}), "no table"),
        (json!({"op": "query", "table": "sqlite_sequence"}), "no table"),
        (json!({"op": "query", "table": "games; DROP TABLE games"}), "no table"),
        (json!({"op": "query", "table": "\"games\""}), "no table"),
        (json!({"op": "query", "table": "x".repeat(100_000)}), "no table"),
        (json!({"op": "query", "table": "notes", "columns": ["text FROM _goop_inbox --"]}), "no column"),
        (json!({"op": "query", "table": "notes", "columns": ["*"]}), "no column"),
        (json!({"op": "query", "table": "notes", "order": "(SELECT 1)"}), "order must be"),
        (json!({"op": "query", "table": "notes", "order": "nope"}), "no column"),
        (json!({"op": "query", "table": "notes", "limit": "10"}), "limit: invalid type"),
        (json!({"op": "query", "table": "notes", "limit": 5000}), "limit must be between 1 and 1000"),
        (json!({"op": "query", "table": "notes", "where": 1}), "where: invalid type"),
        (json!({"op": "query", "table": "notes", "where": "_id = ?", "args": [[1]]}), "args[0] must be"),
        (json!({"op": "insert", "table": "notes", "data": {"text": {"a": 1}}}), "data.text must be"),
        (json!({"op": "insert", "table": "notes", "data": {"nope": 1}}), "no column"),
        (q("_id IN (SELECT id FROM _goop_inbox)"), "must not contain subqueries"),
        (q("(SELECT count(*) FROM sqlite_master) > 0"), "subqueries"),
        (q("EXISTS (SELECT 1 FROM notes WHERE _owner = 'x')"), "subqueries"),
        (q("text IN (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)"), "subqueries"),
        (q("load_extension('/tmp/evil.so')"), "not allowed: function load_extension"),
        (q("1; DROP TABLE games"), "\";\""),
        (q("1) OR (1"), ") without its ("),
        (q("1 -- comment"), "comments"),
        (q("_owner = ?1"), "plain ? placeholders"),
        (q("_owner = :me"), "plain ? placeholders"),
        (q("nope = 1"), "no such column"),
        (q("_id = ?"), "parameter"),
        (json!({"op": "delete", "table": "notes", "where": "_id IN (SELECT _id FROM notes)"}), "subqueries"),
        (json!({"op": "update", "table": "notes", "data": {"text": "x"}, "where": "1) OR (1"}), "without"),
    ];
    for (request, expected) in cases {
        let e = refused(&store, VISITOR, request.clone());
        assert!(e.contains(expected), "{request}: expected {expected:?} in {e:?}");
        assert!(e.len() < 400, "error too long for {request}: {e}");
    }

    // Nothing was dropped or leaked.
    assert_eq!(store.inbox(10).unwrap().len(), 1);
    let tables = data(&store, HOST, json!({"op": "tables"}));
    assert!(tables["tables"].as_array().unwrap().contains(&json!("games")));
    assert_eq!(data(&store, VISITOR, q("text = 'mine'"))["rows"].as_array().unwrap().len(), 1);
    // Ordinary SQL functions and string literals with `;` inside still work.
    assert_eq!(data(&store, VISITOR, q("upper(text) = 'MINE' AND 'a;b' <> ''"))["ok"], json!(true));
}

#[test]
fn odd_shapes_never_panic() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(""),
        json!("x".repeat(5000)),
        json!("_goop_inbox"),
        json!("notes"),
        json!("\u{0}"),
        json!([]),
        json!([null, {"a": []}]),
        json!({}),
        json!({"text": "x"}),
    ];
    let fields = ["table", "columns", "where", "args", "order", "limit", "offset", "data"];
    for op in ["tables", "describe", "query", "insert", "update", "delete", "nope"] {
        for field in fields {
            for value in &odd {
                let request = json!({"op": op, "table": "notes", field: value});
                let answer = store.data_request(VISITOR, &request);
                assert!(answer["ok"].is_boolean(), "{request} -> {answer}");
                if answer["ok"] == json!(false) {
                    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty() && e.len() < 400), "{answer}");
                }
            }
        }
    }
    // The seed row is still there (no `where` in a delete means no delete).
    assert_eq!(
        data(&store, HOST, json!({"op": "query", "table": "notes", "where": "_owner = 'seed'"}))["rows"][0]["text"],
        "hello"
    );
}

// ---- goop.db through the engine ----------------------------------------------------------

fn call(engine: &Engine, who: &Peer, function: &str, params: Value) -> Value {
    engine.call(who, function, &params).unwrap_or_else(|e| panic!("{function} {params}: {e}"))
}

#[test]
fn tic_tac_toe_from_the_spec() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));
    let (host, visitor, stranger) = (Peer::new(HOST, "Host"), Peer::new(VISITOR, "Ann"), Peer::new(OTHER, "Bo"));

    let game = call(&engine, &visitor, "ttt", json!({"action": "new"}));
    assert_eq!(game, json!({"game_id": 1, "status": "waiting", "your_symbol": "O"}));
    let again = call(&engine, &visitor, "ttt", json!({"action": "new"}));
    assert_eq!(again["error"], "you already have an active game");

    // The host accepts the challenge through the data protocol (the owner is unrestricted).
    let accept =
        json!({"op": "update", "table": "games", "data": {"status": "playing"}, "where": "_id = ?", "args": [1]});
    assert_eq!(data(&store, HOST, accept), json!({"ok": true, "affected": 1}));

    let play = |who: &Peer, pos: i64| call(&engine, who, "move", json!({"game_id": 1, "position": pos}));
    assert_eq!(play(&visitor, 4)["error"], "not your turn");
    assert_eq!(play(&stranger, 4)["error"], "you are not a player in this game");
    assert_eq!(play(&host, 0)["board"], "X--------");
    assert_eq!(play(&host, 1)["error"], "not your turn");
    assert_eq!(play(&visitor, 0)["error"], "cell is already occupied");
    play(&visitor, 3);
    play(&host, 1);
    play(&visitor, 4);
    let win = play(&host, 2);
    assert_eq!(win, json!({"board": "XXXOO----", "status": "won_x", "turn": "", "winner": HOST, "your_symbol": "X"}));
    assert_eq!(play(&visitor, 5)["error"], "game is not in progress");

    let state = call(&engine, &visitor, "ttt", json!({"action": "state", "game_id": 1}));
    assert_eq!(state["board"], "XXXOO----");
    assert_eq!((state["status"].as_str(), state["your_symbol"].as_str()), (Some("won_x"), Some("O")));
    assert_eq!(state["challenger_label"], "Ann");
    assert!(state["created_at"].is_string(), "{state}");
    let lobby = call(&engine, &stranger, "ttt", json!({"action": "lobby"}));
    assert_eq!(lobby["games"][0]["winner"], HOST);

    // A finished game lets the visitor start a new one.
    assert_eq!(call(&engine, &visitor, "ttt", json!({"action": "new"}))["game_id"], 2);
    // goop.db is for data functions only: a chat command does not see it.
    std::fs::write(dir.path().join("site/lua/peek.lua"), "function handle() return tostring(goop.db) end").unwrap();
    let engine = self::engine(dir.path(), &store, Duration::from_secs(5));
    assert_eq!(engine.handle_chat(&visitor, "!peek"), goop_script::ChatReply::Text("nil".into()));
}

/// `goop.db.<function>(sql, args...)` run by the visitor through `sql.lua`.
fn db(engine: &Engine, function: &str, sql: &str, args: Value) -> Value {
    call(engine, &Peer::new(VISITOR, "Ann"), "sql", json!({"fn": function, "sql": sql, "args": args}))
}

fn db_error(engine: &Engine, function: &str, sql: &str) -> String {
    let answer = db(engine, function, sql, json!([]));
    assert_eq!(answer["ok"], json!(false), "goop.db.{function}({sql:?}) should fail, got {answer}");
    answer["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn db_binds_converts_and_counts() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));

    let hostile = "x'); DROP TABLE games; --";
    let row = db(
        &engine,
        "query",
        "SELECT ? AS a, ? AS b, ? AS c, 7 AS d, 2.5 AS e, NULL AS f, x'6869' AS g",
        json!([hostile, 3, true]),
    );
    assert_eq!(row["first"], json!({"a": hostile, "b": 3, "c": 1, "d": 7, "e": 2.5, "g": "hi"}));
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM games", json!([])), json!({"ok": true, "value": 0}));
    assert_eq!(db(&engine, "scalar", "SELECT text FROM notes WHERE 0", json!([])), json!({"ok": true}));

    // A script may set _owner itself; exec answers the rows changed.
    let insert = "INSERT INTO notes (_owner, text) VALUES (?, ?), (?, ?)";
    assert_eq!(db(&engine, "exec", insert, json!([OTHER, "a", OTHER, "b"])), json!({"ok": true, "value": 2}));
    assert_eq!(db(&engine, "exec", "UPDATE notes SET text = upper(text)", json!([])), json!({"ok": true, "value": 3}));
    let upsert = "INSERT INTO notes (_id, _owner, text) VALUES (1, 'x', 'y') ON CONFLICT(_id) DO UPDATE SET text = 'z'";
    assert_eq!(db(&engine, "exec", upsert, json!([]))["value"], 1);
    assert_eq!(
        db(&engine, "exec", "REPLACE INTO notes (_id, _owner, text) VALUES (1, 'x', 'r')", json!([]))["value"],
        1
    );
    assert_eq!(db(&engine, "exec", "DELETE FROM notes WHERE _owner = ? RETURNING _id", json!([OTHER]))["value"], 2);

    // 1000 rows are fine; 1001 and over 1 MB are errors.
    let count = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ?) SELECT x FROM c";
    assert_eq!(db(&engine, "query", count, json!([1000]))["rows"], 1000);
    let e = db(&engine, "query", count, json!([1001]));
    assert!(e["error"].as_str().unwrap().contains("more than 1000 rows"), "{e}");
    let big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) SELECT printf('%.*c', 500000, 'x') AS s FROM c";
    let e = db(&engine, "query", big, json!([]));
    assert!(e["error"].as_str().unwrap().contains("larger than 1048576 bytes"), "{e}");
    let e = db(&engine, "query", "SELECT zeroblob(100000000)", json!([]));
    assert!(e["error"].as_str().unwrap().contains("too big"), "{e}");
}

#[test]
fn db_walls_hold() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    store.save_message(OTHER, "Bo", "private").unwrap();
    let engine = engine(dir.path(), &store, Duration::from_secs(5));

    let cases: &[(&str, &str, &str)] = &[
        // query and scalar cannot write
        ("query", "DELETE FROM notes", "not allowed: deleting from table notes"),
        ("query", "WITH x AS (SELECT 1) DELETE FROM notes", "not allowed"),
        ("scalar", "INSERT INTO notes (_owner) VALUES ('x')", "not allowed"),
        ("query", "UPDATE notes SET text = 'x' RETURNING _id", "not allowed"),
        ("query", "VACUUM", "use exec"),
        // ... nor read internal tables or the schema
        ("query", "SELECT * FROM _goop_inbox", "not allowed: reading internal table _goop_inbox"),
        ("query", "SELECT name FROM sqlite_master", "not allowed: reading internal table sqlite_master"),
        ("query", "SELECT * FROM notes WHERE text IN (SELECT content FROM _goop_inbox)", "not allowed"),
        ("scalar", "SELECT count(*) FROM sqlite_sequence", "not allowed"),
        ("query", "PRAGMA table_info(notes)", "not allowed: PRAGMA table_info"),
        ("query", "SELECT * FROM pragma_table_info('_goop_inbox')", "not allowed"),
        ("query", "SELECT load_extension('/tmp/evil.so')", "not allowed: function load_extension"),
        ("query", "SELECT 1; SELECT 2", "only one statement"),
        ("query", "SELECT 1; DELETE FROM notes", "not allowed"),
        // exec writes rows of user tables, nothing else
        ("exec", "DROP TABLE games", "not allowed: changing the schema"),
        ("exec", "CREATE TABLE t2 (a)", "not allowed: changing the schema"),
        ("exec", "CREATE TEMP TABLE t3 (a)", "not allowed: database temp"),
        ("exec", "CREATE INDEX i ON games (board)", "changing the schema"),
        ("exec", "CREATE TRIGGER tr AFTER INSERT ON notes BEGIN DELETE FROM games; END", "changing the schema"),
        ("exec", "ALTER TABLE games ADD COLUMN z TEXT", "not allowed"),
        ("exec", "PRAGMA journal_mode = DELETE", "not allowed: PRAGMA journal_mode"),
        ("exec", "PRAGMA writable_schema = 1", "not allowed"),
        ("exec", "ATTACH DATABASE ':memory:' AS other", "not allowed: ATTACH"),
        ("exec", "DETACH DATABASE main", "not allowed"),
        ("exec", "BEGIN", "not allowed: transactions"),
        ("exec", "SAVEPOINT s", "not allowed: transactions"),
        ("exec", "VACUUM", "exec runs only INSERT, UPDATE, DELETE or REPLACE"),
        ("exec", "VACUUM INTO '/tmp/goop-leak.db'", "exec runs only INSERT"),
        ("exec", "ANALYZE", "not allowed"),
        ("exec", "SELECT 1", "exec runs only INSERT, UPDATE, DELETE or REPLACE"),
        ("exec", "", "empty SQL"),
        (
            "exec",
            "INSERT INTO _goop_inbox (from_peer, from_label, content) VALUES ('x', 'x', 'x')",
            "not allowed: inserting into internal table _goop_inbox",
        ),
        ("exec", "DELETE FROM _goop_inbox", "not allowed"),
        ("exec", "UPDATE _goop_schema SET statement = ''", "not allowed"),
        ("exec", "DELETE FROM sqlite_sequence", "not allowed"),
        ("exec", "INSERT INTO notes (_owner, text) SELECT from_peer, content FROM _goop_inbox", "not allowed"),
        ("exec", "UPDATE notes SET text = 'x'; DROP TABLE games", "not allowed"),
        ("exec", "UPDATE notes SET text = 'x'; UPDATE notes SET text = 'y'", "only one statement"),
    ];
    for (function, sql, expected) in cases {
        let e = db_error(&engine, function, sql);
        assert!(e.contains(expected), "goop.db.{function}({sql:?}): expected {expected:?} in {e:?}");
    }
    let e =
        call(&engine, &Peer::new(VISITOR, ""), "sql", json!({"fn": "query", "sql": "SELECT ?", "args": [{"a": 1}]}));
    assert!(e["error"].as_str().unwrap().contains("parameter 1 is a table"), "{e}");

    // Nothing changed.
    assert!(!Path::new("/tmp/goop-leak.db").exists());
    assert_eq!(store.inbox(10).unwrap()[0].content, "private");
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM notes", json!([]))["value"], 1);
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM games", json!([]))["value"], 0);
}

#[test]
fn endless_query_stops_at_the_deadline() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    let engine = engine(dir.path(), &store, Duration::from_millis(300));
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    // More times than there are connections: each one comes back healthy.
    for _ in 0..10 {
        let started = Instant::now();
        let outcome = engine.call(&Peer::new(VISITOR, ""), "sql", &json!({"fn": "scalar", "sql": forever}));
        let elapsed = started.elapsed();
        let text = match outcome {
            Ok(v) => v["error"].as_str().unwrap_or_default().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(text.contains("timeout") || text.contains("timed out"), "{text}");
        assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    }
    assert_eq!(db(&engine, "scalar", "SELECT count(*) FROM notes", json!([]))["value"], 1);
    assert_eq!(data(&store, VISITOR, json!({"op": "query", "table": "notes"}))["ok"], json!(true));
}
