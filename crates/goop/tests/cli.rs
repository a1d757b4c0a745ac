//! The `goop` binary's local commands, driven as a user would from a shell.

use std::path::Path;
use std::process::{Command, Output};

fn goop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_goop")).args(args).env_remove("RUST_LOG").output().expect("goop runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh peer folder made by `goop init`.
fn peer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = goop(&["init", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec![args[0], "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(&args[1..]);
    goop(&all)
}

#[test]
fn init_creates_a_working_peer_and_never_overwrites() {
    let dir = peer();
    for f in [
        "goop.json",
        "site/index.html",
        "site/lua/help.lua",
        "site/lua/echo.lua",
        "site/lua/greet.lua",
        "site/lua/time.lua",
        "site/lua/functions/hello.lua",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("goop.json")).unwrap()).unwrap();
    assert_eq!(config["lua"]["enabled"], true);
    std::fs::write(dir.path().join("site/lua/echo.lua"), "-- mine").unwrap();
    let again = goop(&["init", dir.path().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(dir.path().join("site/lua/echo.lua")).unwrap(), "-- mine");
}

#[test]
fn init_suggests_a_next_step_that_fits_the_template() {
    let parent = tempfile::tempdir().unwrap();
    let starter = parent.path().join("starter");
    let out = goop(&["init", starter.to_str().unwrap()]);
    let d = starter.display();
    let next = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert_eq!(
        next,
        format!("next: goop cmd --dir {d} '!help'   or   goop run --dir {d}   (then open the viewer URL it prints)")
    );
    assert!(run_in(&starter, &["cmd", "!help"]).status.success(), "the suggested command works");

    let game = parent.path().join("game");
    let out = goop(&["init", game.to_str().unwrap(), "--template", "tictactoe"]);
    let next = stdout(&out).lines().last().unwrap_or_default().to_string();
    assert_eq!(next, format!("next: goop run --dir {}   (then open the viewer URL it prints)", game.display()));
}

#[test]
fn a_peer_folders_private_files_stay_out_of_git() {
    let dir = peer();
    let d = dir.path();
    let ignore = std::fs::read_to_string(d.join(".gitignore")).unwrap();
    for line in ["identity.key", "data.db", "data.db-*", "site/lua/.state/", "run.lock"] {
        assert!(ignore.lines().any(|l| l == line), "{line} missing from {ignore}");
    }
    assert!(run_in(d, &["data", r#"{"op":"tables"}"#]).status.success(), "creates the database");
    std::fs::create_dir_all(d.join("site/lua/.state")).unwrap();
    std::fs::write(d.join("site/lua/.state/echo.json"), "{}").unwrap();
    let git = |args: &[&str]| Command::new("git").arg("-C").arg(d).args(args).output().expect("git runs");
    assert!(git(&["init", "-q"]).status.success());
    let tracked = stdout(&git(&["status", "--porcelain", "--untracked-files=all"]));
    assert!(tracked.contains("goop.json") && tracked.contains("site/lua/echo.lua"), "{tracked}");
    for private in ["identity.key", "data.db", ".state"] {
        assert!(!tracked.contains(private), "{private} would be committed: {tracked}");
    }

    // An existing .gitignore keeps its lines and gets the peer's.
    let existing = tempfile::tempdir().unwrap();
    std::fs::write(existing.path().join(".gitignore"), "node_modules").unwrap();
    let out = goop(&["init", existing.path().to_str().unwrap()]);
    assert!(stdout(&out)
        .contains(&format!("added the peer's private files to {}", existing.path().join(".gitignore").display())));
    let ignore = std::fs::read_to_string(existing.path().join(".gitignore")).unwrap();
    assert!(ignore.starts_with("node_modules\n") && ignore.contains("\nidentity.key\n"), "{ignore}");
}

#[test]
fn cmd_runs_chat_commands() {
    let dir = peer();
    let d = dir.path();
    assert_eq!(stdout(&run_in(d, &["cmd", "!help"])), "Available commands:\n  !echo\n  !greet\n  !help\n  !time\n");
    assert_eq!(stdout(&run_in(d, &["cmd", "!echo hi"])), "You said: hi\n");
    assert_eq!(stdout(&run_in(d, &["cmd", "!ECHO hi"])), "You said: hi\n");
    let unknown = run_in(d, &["cmd", "!nope"]);
    assert_eq!(stdout(&unknown), "Unknown command: !nope. Try !help\n");
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(stdout(&run_in(d, &["cmd", "--as", "12D3KooWAbcdefgh", "--label", "Ann", "!greet"])), "Hello, Ann!\n");
    assert_eq!(stdout(&run_in(d, &["cmd", "--as", "12D3KooWAbcdefgh", "!greet"])), "Hello, peer 12D3KooW...!\n");
    let time = stdout(&run_in(d, &["cmd", "!time"]));
    assert!(time.ends_with(" UTC\n") && time.len() == "2026-01-01 00:00:00 UTC\n".len(), "{time}");
}

#[test]
fn a_message_that_is_not_a_command_is_a_usage_error() {
    let dir = peer();
    for message in ["hello there", "  ", "echo !hi"] {
        let out = run_in(dir.path(), &["cmd", message]);
        assert_eq!(out.status.code(), Some(2), "{message:?}");
        assert_eq!(stdout(&out), "");
        assert_eq!(
            stderr(&out),
            format!(
                "goop: {:?} is not a command: a command is ! and a script's name, as in '!NAME ARGS' \
                 (goop check lists the scripts)\n",
                message.trim()
            )
        );
    }
}

#[test]
fn a_script_that_failed_to_load_or_to_run_says_where_and_exits_1() {
    let dir = peer();
    let d = dir.path();
    std::fs::write(d.join("site/lua/broken.lua"), "function handle()\n  return 1 +\nend\n").unwrap();
    std::fs::write(d.join("site/lua/functions/bad.lua"), "function call(r)\n  return {\nend\n").unwrap();
    std::fs::write(d.join("site/lua/boom.lua"), "function handle()\n  error('boom')\nend\n").unwrap();
    let parse_error = "Expected identifier when parsing expression, got 'end'";

    let broken = run_in(d, &["cmd", "!broken"]);
    assert_eq!(stdout(&broken), format!("!broken failed to load: site/lua/broken.lua:3: {parse_error}\n"));
    assert_eq!(broken.status.code(), Some(1));
    let bad = run_in(d, &["call", "bad"]);
    assert_eq!(
        stdout(&bad),
        format!(
            "{{\"ok\":false,\"error\":\"function bad failed to load: site/lua/functions/bad.lua:3: {parse_error}\"}}\n"
        )
    );
    assert_eq!(bad.status.code(), Some(1));

    let boom = run_in(d, &["cmd", "!boom"]);
    assert_eq!(stdout(&boom), "Error: boom.lua:2: boom\n");
    assert_eq!(boom.status.code(), Some(1), "a script that fails at run time exits 1");
    assert_eq!(run_in(d, &["cmd", "!echo still here"]).status.code(), Some(0));
}

#[test]
fn call_prints_the_data_protocol_answer() {
    let dir = peer();
    let d = dir.path();
    let ok = run_in(d, &["call", "--as", "12D3KooWVisitor", "hello", r#"{"name":"Bo"}"#]);
    assert_eq!(stdout(&ok), "{\"ok\":true,\"result\":{\"caller\":\"12D3KooWVisitor\",\"message\":\"Hello, Bo!\"}}\n");
    assert_eq!(ok.status.code(), Some(0));
    let labelled = run_in(d, &["call", "--as", "12D3KooWVisitor", "--label", "Cy", "hello"]);
    assert!(stdout(&labelled).contains("Hello, Cy!"), "{}", stdout(&labelled));

    let missing = run_in(d, &["call", "nope"]);
    assert_eq!(stdout(&missing), "{\"ok\":false,\"error\":\"function not found: nope\",\"kind\":\"not_found\"}\n");
    assert_eq!(missing.status.code(), Some(1));

    std::fs::write(d.join("site/lua/functions/fail.lua"), "function call(r)\n  error('needs a name')\nend").unwrap();
    let fail = run_in(d, &["call", "fail"]);
    assert_eq!(stdout(&fail), "{\"ok\":false,\"error\":\"functions/fail.lua:2: needs a name\",\"kind\":\"runtime\"}\n");
    assert_eq!(fail.status.code(), Some(1));

    let bad_params = run_in(d, &["call", "hello", "{not json"]);
    assert_eq!(bad_params.status.code(), Some(2));
    assert!(stderr(&bad_params).contains("PARAMS_JSON"), "{}", stderr(&bad_params));
}

#[test]
fn list_prints_the_lua_list_answer() {
    let dir = peer();
    let out = run_in(dir.path(), &["list"]);
    assert_eq!(
        stdout(&out),
        "{\"ok\":true,\"functions\":[{\"name\":\"hello\",\"description\":\"Greets the caller\"}]}\n"
    );
}

#[test]
fn check_reports_broken_scripts_and_the_rest_still_work() {
    let dir = peer();
    let d = dir.path();
    assert_eq!(stdout(&run_in(d, &["check"])), "ok echo\nok hello\nok greet\nok help\nok time\n");
    std::fs::write(d.join("site/lua/bad.lua"), "function handle()\n  return 1 +\nend\n").unwrap();
    let out = run_in(d, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let first = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("error bad: site/lua/bad.lua:3: "), "{first}");
    assert_eq!(stdout(&run_in(d, &["cmd", "!echo x"])), "You said: x\n");
}

#[test]
fn disabled_scripting_and_bad_config_exit_2() {
    let dir = peer();
    let d = dir.path();
    std::fs::write(d.join("goop.json"), r#"{"lua": {"enabled": false}}"#).unwrap();
    for args in [&["cmd", "!help"][..], &["call", "hello"], &["list"], &["check"]] {
        let out = run_in(d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("lua scripting is disabled"), "{}", stderr(&out));
    }
    std::fs::write(d.join("goop.json"), r#"{"lua": {"enabled": true, "timeot_seconds": 5}}"#).unwrap();
    let out = run_in(d, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lua.timeot_seconds"), "{}", stderr(&out));
    std::fs::write(d.join("goop.json"), r#"{"lua": {"enabled": true, "timeout_seconds": 0}}"#).unwrap();
    let out = run_in(d, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lua.timeout_seconds: must be between 1 and 60, got 0"), "{}", stderr(&out));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(run_in(empty.path(), &["list"]).status.code(), Some(2), "no goop.json means scripting is off");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(goop(&["call"]).status.code(), Some(2));
    assert_eq!(goop(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn a_folder_that_is_not_a_peer_is_refused_and_left_untouched() {
    let empty = tempfile::tempdir().unwrap();
    let d = empty.path().to_str().unwrap();
    for args in [
        vec!["call", "--dir", d, "hello"],
        vec!["cmd", "--dir", d, "!echo hi"],
        vec!["data", "--dir", d, r#"{"op":"tables"}"#],
        vec!["run", "--dir", d, "--viewer", "off"],
        vec!["id", "--dir", d],
        vec!["check", "--dir", d],
        vec![
            "cmd",
            "--dir",
            d,
            "--peer",
            "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            "!hi",
        ],
    ] {
        let out = goop(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{d} is not a peer folder (no goop.json); create one with: goop init {d}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let left: Vec<_> = std::fs::read_dir(empty.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "a mistyped --dir got {left:?}");
}

#[test]
fn a_peer_folder_without_its_key_is_refused() {
    let dir = peer();
    std::fs::remove_file(dir.path().join("identity.key")).unwrap();
    for args in [vec!["id"], vec!["call", "hello"]] {
        let out = run_in(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("identity.key is missing: it is this peer's identity"), "{}", stderr(&out));
    }
    assert!(!dir.path().join("identity.key").exists(), "no new identity behind the owner's back");
}

/// The subcommands a `--help` text lists, `help` itself left out.
fn subcommands(help: &str) -> Vec<String> {
    let section = help.split("Commands:\n").nth(1).unwrap_or("");
    let entries = section.lines().take_while(|l| l.starts_with("  "));
    entries.filter_map(|l| l.split_whitespace().next()).filter(|c| *c != "help").map(String::from).collect()
}

/// Argument and option lines of a `--help` text that have no description of their own.
fn undescribed(help: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for section in ["Arguments:\n", "Options:\n"] {
        let Some(body) = help.split(section).nth(1) else { continue };
        for line in body.lines().take_while(|l| l.starts_with("  ")) {
            let entry = line.trim_start();
            let (_, text) = entry.split_once("  ").unwrap_or((entry, ""));
            let text = text.split(" [default: ").next().unwrap_or("").trim_start_matches("[default: ").trim();
            if !text.contains(' ') || text.starts_with('[') {
                missing.push(line.to_string());
            }
        }
    }
    missing
}

#[test]
fn help_describes_every_argument_of_every_command() {
    let mut commands: Vec<Vec<String>> =
        subcommands(&stdout(&goop(&["--help"]))).into_iter().map(|c| vec![c]).collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut seen = 0;
    while let Some(path) = commands.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = stdout(&goop(&args));
        assert!(help.contains("Usage: goop"), "{args:?}: {help}");
        assert_eq!(undescribed(&help), Vec::<String>::new(), "goop {}: arguments without help", path.join(" "));
        for sub in subcommands(&help) {
            commands.push([path.clone(), vec![sub]].concat());
        }
        seen += 1;
    }
    assert_eq!(seen, 12, "every command and `templates apply`");

    let data = stdout(&goop(&["data", "--help"]));
    for example in [
        r#"{"op":"query","table":"games","limit":5}"#,
        r#"{"op":"insert","table":"games","data":{"board":"---------"}}"#,
        r#"{"op":"delete","table":"games","where":"_id = ?","args":[3]}"#,
        r#"{"op":"lua-call","function":"hello","params":{"name":"Bo"}}"#,
    ] {
        assert!(data.contains(example), "{example} missing from goop data --help:\n{data}");
    }
}

#[test]
fn check_reports_a_broken_schema_by_line_and_still_checks_every_script() {
    let dir = peer();
    let d = dir.path();
    let schema = "CREATE TABLE notes (\n  body TEXT DEFAULT 'a;b'\n);\n\n-- a comment; with a semicolon\nCREATE TABLEE oops (a);\n";
    std::fs::write(d.join("site/schema.sql"), schema).unwrap();
    std::fs::write(d.join("site/lua/bad.lua"), "function handle()\n  return 1 +\nend\n").unwrap();
    let out = run_in(d, &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines[0], r#"error schema: site/schema.sql:6: near "TABLEE": syntax error"#);
    assert!(lines[1].starts_with("error bad: site/lua/bad.lua:3: "), "{lines:?}");
    assert_eq!(lines[2..], ["ok echo", "ok hello", "ok greet", "ok help", "ok time"]);
    assert!(!stderr(&out).contains("schema"), "said once, on stdout: {}", stderr(&out));

    // The folder's scripts still answer; the tables stay as they were (none).
    assert_eq!(stdout(&run_in(d, &["cmd", "!echo x"])), "You said: x\n");
    let tables = run_in(d, &["data", r#"{"op":"tables"}"#]);
    assert_eq!(stdout(&tables), "{\"ok\":true,\"tables\":[]}\n");

    std::fs::remove_file(d.join("site/lua/bad.lua")).unwrap();
    std::fs::write(d.join("site/schema.sql"), schema.replace("TABLEE", "TABLE")).unwrap();
    let out = run_in(d, &["check"]);
    assert_eq!((out.status.code(), stdout(&out).lines().next()), (Some(0), Some("ok echo")));
    assert_eq!(stdout(&run_in(d, &["data", r#"{"op":"tables"}"#])), "{\"ok\":true,\"tables\":[\"notes\",\"oops\"]}\n");
}
