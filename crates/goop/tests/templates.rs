//! The embedded templates through the binary: listing, installing, and the tic-tac-toe and quiz
//! rules as a host and its visitors meet them.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ANN: &str = "12D3KooWBmAwcd4PJNJvfV89HwE48nwkRmAgo8Vy3uQEyNNHBox2";
const BO: &str = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";

fn template_folder(template: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = goop(&["init", dir.path().to_str().unwrap(), "--template", template]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// `goop call` on the folder as `caller` (None: the owner); the data protocol's answer.
fn call(dir: &Path, caller: Option<(&str, &str)>, function: &str, params: Value) -> Value {
    let d = dir.to_str().unwrap();
    let params = params.to_string();
    let mut args = vec!["call", "--dir", d];
    if let Some((id, label)) = caller {
        args.extend(["--as", id, "--label", label]);
    }
    args.extend([function, params.as_str()]);
    let out = goop(&args);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// The result of a call that must succeed at the protocol level.
fn result(dir: &Path, caller: Option<(&str, &str)>, function: &str, params: Value) -> Value {
    let answer = call(dir, caller, function, params);
    assert_eq!(answer["ok"], true, "{answer}");
    answer["result"].clone()
}

#[test]
fn templates_are_listed_and_unknown_ones_named() {
    let out = stdout(&goop(&["templates"]));
    for name in ["blog", "chat", "quiz", "starter", "survey", "tictactoe", "todo"] {
        assert!(out.lines().any(|l| l.starts_with(name) && l.contains("full-stack")), "{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = goop(&["init", dir.path().to_str().unwrap(), "--template", "chess"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("blog, chat, quiz, starter, survey, tictactoe, todo"));
    assert!(!dir.path().join("goop.json").exists(), "nothing written for an unknown template");
}

#[test]
fn every_templates_scripts_and_schema_load_as_installed() {
    let listed = stdout(&goop(&["templates"]));
    for name in listed.lines().filter_map(|l| l.split_whitespace().next()) {
        let folder = template_folder(name);
        let out = goop(&["check", "--dir", folder.path().to_str().unwrap()]);
        let said = stdout(&out);
        assert!(out.status.success(), "{name}: {said}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!said.is_empty() && said.lines().all(|l| l.starts_with("ok ")), "{name}: {said}");
    }
}

#[test]
fn tictactoe_plays_to_a_win_and_refuses_every_cheat() {
    let folder = template_folder("tictactoe");
    let dir = folder.path();
    let ann = Some((ANN, "Ann"));
    let bo = Some((BO, "Bo"));
    let state = |game: &Value| result(dir, ann, "ttt", json!({"action": "state", "game_id": game}));

    assert!(
        result(dir, None, "ttt", json!({"action": "new"}))["error"].is_string(),
        "the host cannot challenge itself"
    );
    let new = result(dir, ann, "ttt", json!({"action": "new"}));
    assert_eq!((new["your_symbol"].as_str(), new["status"].as_str()), (Some("O"), Some("waiting")), "{new}");
    let game = new["game_id"].clone();
    let again = result(dir, ann, "ttt", json!({"action": "new"}));
    assert_eq!(again["error"], "you already have an active game");
    assert_eq!(again["game_id"], game);

    // Nobody moves before the host accepts; only the host accepts.
    assert_eq!(result(dir, ann, "move", json!({"game_id": game, "position": 0}))["error"], "game is not in progress");
    assert!(result(dir, ann, "ttt", json!({"action": "accept", "game_id": game}))["error"].is_string());
    assert_eq!(result(dir, None, "ttt", json!({"action": "accept", "game_id": game}))["status"], "playing");
    assert!(result(dir, ann, "ttt", json!({"action": "cancel", "game_id": game}))["error"].is_string(), "started");

    // X (the host) first; refusals leave the board as it was.
    assert_eq!(result(dir, ann, "move", json!({"game_id": game, "position": 4}))["error"], "not your turn");
    assert_eq!(result(dir, None, "move", json!({"game_id": game, "position": 0}))["board"], "X--------");
    assert_eq!(result(dir, None, "move", json!({"game_id": game, "position": 1}))["error"], "not your turn");
    assert_eq!(result(dir, ann, "move", json!({"game_id": game, "position": 0}))["error"], "cell is already occupied");
    assert_eq!(
        result(dir, bo, "move", json!({"game_id": game, "position": 4}))["error"],
        "you are not a player in this game"
    );
    for bad in
        [json!({"game_id": game, "position": 9}), json!({"game_id": game, "position": 1.5}), json!({"position": 1})]
    {
        assert_eq!(call(dir, ann, "move", bad.clone())["ok"], false, "{bad}");
    }
    assert_eq!(state(&game)["board"], "X--------");

    for (caller, pos) in [(ann, 3), (None, 1), (ann, 4)] {
        assert!(result(dir, caller, "move", json!({"game_id": game, "position": pos}))["error"].is_null());
    }
    let win = result(dir, None, "move", json!({"game_id": game, "position": 2}));
    assert_eq!((win["board"].as_str(), win["status"].as_str()), (Some("XXXOO----"), Some("won_x")), "{win}");
    assert_eq!(win["winner"].as_str(), Some(peer_id(dir).as_str()));
    assert_eq!(result(dir, ann, "move", json!({"game_id": game, "position": 5}))["error"], "game is not in progress");
    let seen = state(&game);
    assert_eq!((seen["status"].as_str(), seen["your_symbol"].as_str()), (Some("won_x"), Some("O")));

    // A finished game frees the visitor for a new one, which either side can cancel while waiting.
    let second = result(dir, ann, "ttt", json!({"action": "new"}))["game_id"].clone();
    assert!(result(dir, bo, "ttt", json!({"action": "cancel", "game_id": second}))["error"].is_string());
    assert_eq!(result(dir, ann, "ttt", json!({"action": "cancel", "game_id": second}))["status"], "cancelled");
    let lobby = result(dir, bo, "ttt", json!({"action": "lobby"}));
    assert_eq!(lobby["games"].as_array().map(Vec::len), Some(2), "{lobby}");
    assert_eq!(call(dir, ann, "ttt", json!({"action": "resign"}))["ok"], false);
}

#[test]
fn a_visitor_can_take_the_quiz_but_never_read_the_answers() {
    let host_dir = template_folder("quiz");
    let h = host_dir.path();
    let visitor_dir = folder("Ann");
    let host = run(h);
    let v = visitor_dir.path().to_str().unwrap();
    let data = |request: Value| {
        let out = goop(&["data", "--peer", &host.addr, "--dir", v, &request.to_string()]);
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()
    };
    let questions = data(json!({"op": "query", "table": "questions", "order": "_id"}));
    assert_eq!(questions["rows"].as_array().map(Vec::len), Some(3), "{questions}");
    for peek in [
        json!({"op": "query", "table": "answer_key"}),
        json!({"op": "query", "table": "questions", "where": "_id IN (SELECT question_id FROM answer_key)"}),
        json!({"op": "insert", "table": "scores", "data": {"score": 99, "total": 3}}),
        json!({"op": "insert", "table": "answer_key", "data": {"question_id": 9, "answer": 0}}),
    ] {
        assert_eq!(data(peek.clone())["ok"], false, "{peek}");
    }
    let site = goop(&["site", "--peer", &host.addr, "--dir", v, "/schema.sql"]);
    assert!(!site.status.success() && site.stdout.is_empty(), "the schema holds the answer key");

    let params = json!({"answers": {"1": 1, "2": 2, "3": 2}}).to_string();
    let out = goop(&["call", "--peer", &host.addr, "--dir", v, "score-quiz", &params]);
    let scored: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(scored["result"], json!({"correct": [1, 3], "score": 2, "total": 3}), "{scored}");
    let out = goop(&["call", "--peer", &host.addr, "--dir", v, "leaderboard"]);
    let board: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(board["result"]["entries"][0]["label"], "Ann", "{board}");
    assert_eq!(board["result"]["entries"][0]["score"], 2);
}

#[test]
fn a_template_applied_to_a_running_peer_takes_effect_without_a_restart() {
    let host_dir = folder("Host");
    let h = host_dir.path();
    let host = run(h);
    let visitor_dir = folder("Ann");
    let v = visitor_dir.path().to_str().unwrap();
    let applied = goop(&["templates", "apply", "tictactoe", "--dir", h.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    assert!(stdout(&applied).contains("site/lua/functions/move.lua"));

    let deadline = Instant::now() + Duration::from_secs(20);
    let game = loop {
        let out = goop(&["call", "--peer", &host.addr, "--dir", v, "ttt", r#"{"action":"new"}"#]);
        let answer: Value = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
        if answer["ok"] == true {
            break answer["result"]["game_id"].clone();
        }
        assert!(Instant::now() < deadline, "ttt never became callable: {answer}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The template's policies are in force: visitors cannot write the games table directly.
    for write in [
        json!({"op": "insert", "table": "games", "data": {"board": "OOO------"}}),
        json!({"op": "update", "table": "games", "data": {"board": "OOO------"}, "where": "_id = ?", "args": [game]}),
    ] {
        let out = goop(&["data", "--peer", &host.addr, "--dir", v, &write.to_string()]);
        assert!(stdout(&out).contains(r#""ok":false"#), "{write}: {}", stdout(&out));
    }
    let page = goop(&["site", "--peer", &host.addr, "--dir", v, "/js/app.js"]);
    assert!(page.status.success() && stdout(&page).contains("Goop.data.call"));
    assert!(!goop(&["templates", "apply", "tictactoe", "--dir", "/nonexistent/peer"]).status.success());
}
