//! Tables from `site/schemas/*.json` (goop2's format), as the owner and a visiting peer see
//! them: the tables goop2's kind of template declares, access from a remote peer, broken and
//! hostile files, changes while the peer runs, and the bounds.

mod bounds;
#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{folder, goop, peak_memory_kib, run, stdout};
use serde_json::{json, Value};

/// A blog's posts, as goop2's blog template declares them (our own file): visitors read, only
/// the owner writes.
const POSTS: &str = r#"{
  "name": "posts", "system_key": true,
  "columns": [
    {"name": "title", "type": "text", "required": true},
    {"name": "body", "type": "text", "required": true},
    {"name": "slug", "type": "text"},
    {"name": "published", "type": "integer", "default": 1}
  ],
  "access": {"read": "open", "insert": "owner", "update": "owner", "delete": "owner"}
}"#;

/// A survey's answers: anyone answers, each visitor reads back only their own.
const ANSWERS: &str = r#"{
  "name": "answers", "system_key": true,
  "columns": [{"name": "q1", "type": "text", "default": ""}, {"name": "score", "type": "real"}],
  "access": {"read": "owner", "insert": "open", "update": "owner", "delete": "owner"}
}"#;

/// A todo list shared with a group whose members have roles.
const TODOS: &str = r#"{
  "name": "todos", "system_key": true,
  "columns": [{"name": "text", "type": "text", "required": true}, {"name": "done", "type": "integer", "default": 0}],
  "access": {"read": "group", "insert": "group", "update": "group", "delete": "owner"},
  "roles": {"member": {"read": true, "insert": true, "update": true}, "viewer": {"read": true}}
}"#;

/// Settings only this peer sees.
const SETTINGS: &str = r#"{
  "name": "settings", "columns": [{"name": "key", "type": "text", "key": true}, {"name": "value", "type": "text"}],
  "access": {"read": "local", "insert": "local", "update": "local", "delete": "local"}
}"#;

fn write_schema(dir: &Path, file: &str, text: &str) {
    let schemas = dir.join("site/schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(schemas.join(file), text).unwrap();
}

fn answer(out: &std::process::Output) -> Value {
    serde_json::from_str(stdout(out).trim()).unwrap_or_else(|_| panic!("not JSON: {}", stdout(out)))
}

/// A data request as the folder's owner.
fn local(dir: &Path, request: Value) -> Value {
    answer(&goop(&["data", "--dir", dir.to_str().unwrap(), &request.to_string()]))
}

/// A data request from the peer of folder `visitor` to the peer at `addr`.
fn remote(addr: &str, visitor: &Path, request: Value) -> Value {
    answer(&goop(&["data", "--peer", addr, "--dir", visitor.to_str().unwrap(), &request.to_string()]))
}

/// `goop check`'s first line for the folder.
fn check(dir: &Path) -> String {
    stdout(&goop(&["check", "--dir", dir.to_str().unwrap()])).lines().next().unwrap_or_default().to_string()
}

fn columns(dir: &Path, table: &str) -> Vec<String> {
    let described = local(dir, json!({"op": "describe", "table": table}));
    let columns = described["columns"].as_array().unwrap_or_else(|| panic!("{described}"));
    columns.iter().map(|c| format!("{} {}", c["name"].as_str().unwrap(), c["type"].as_str().unwrap())).collect()
}

#[test]
fn goop2_style_schemas_make_working_tables() {
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    write_schema(dir, "answers.json", ANSWERS);
    write_schema(dir, "todos.json", TODOS);
    write_schema(dir, "settings.json", SETTINGS);
    // schema.sql may seed a schema file's table (and index it), not create it.
    std::fs::write(
        dir.join("site/schema.sql"),
        "INSERT INTO posts (_owner, title, body, slug) VALUES ('seed', 'Hello', 'First post', 'hello');\n\
         CREATE INDEX posts_slug ON posts (slug);",
    )
    .unwrap();
    assert_eq!(check(dir), "ok echo");

    assert_eq!(
        local(dir, json!({"op": "tables"})),
        json!({"ok": true, "tables": ["answers", "posts", "settings", "todos"]})
    );
    // goop2's system columns first, then the declared ones with goop2's SQL types.
    assert_eq!(
        columns(dir, "posts"),
        [
            "_id INTEGER",
            "_owner TEXT",
            "_owner_email TEXT",
            "_created_at DATETIME",
            "_updated_at DATETIME",
            "title TEXT",
            "body TEXT",
            "slug TEXT",
            "published INTEGER"
        ]
    );
    let seeded =
        local(dir, json!({"op": "query", "table": "posts", "columns": ["title", "published", "_owner_email"]}));
    assert_eq!(seeded["rows"], json!([{"title": "Hello", "published": 1, "_owner_email": ""}]));

    // The owner writes; defaults fill in; a required column is required.
    let id = local(dir, json!({"op": "insert", "table": "posts", "data": {"title": "Two", "body": "b"}}));
    assert_eq!(id, json!({"ok": true, "id": 2}));
    let missing = local(dir, json!({"op": "insert", "table": "posts", "data": {"title": "No body"}}));
    assert_eq!(missing["error"], "NOT NULL constraint failed: posts.body");
    let row = local(dir, json!({"op": "query", "table": "posts", "where": "_id = ?", "args": [2]}));
    assert_eq!((row["rows"][0]["published"].as_i64(), row["rows"][0]["_owner_email"].as_str()), (Some(1), Some("")));
    let key = local(dir, json!({"op": "insert", "table": "settings", "data": {"value": "no key"}}));
    assert_eq!(key["error"], "NOT NULL constraint failed: settings.key");
}

#[test]
fn a_visitor_gets_the_mapped_access() {
    let host = folder("Host");
    let dir = host.path();
    for (file, text) in [("posts.json", POSTS), ("answers.json", ANSWERS), ("todos.json", TODOS), ("s.json", SETTINGS)]
    {
        write_schema(dir, file, text);
    }
    // schema.json may give a schema file's table its budgets.
    std::fs::write(dir.join("site/schema.json"), r#"{"tables": {"answers": {"quota_rows": 2}}}"#).unwrap();
    local(dir, json!({"op": "insert", "table": "posts", "data": {"title": "Hi", "body": "b"}}));
    local(dir, json!({"op": "insert", "table": "answers", "data": {"q1": "the owner's"}}));
    local(dir, json!({"op": "insert", "table": "settings", "data": {"key": "k", "value": "secret"}}));
    let peer = run(dir);
    let ann = folder("Ann");
    let bob = folder("Bob");
    let (ann, bob) = (ann.path(), bob.path());

    // open read: every row.
    let posts = remote(&peer.addr, ann, json!({"op": "query", "table": "posts", "columns": ["title"]}));
    assert_eq!(posts, json!({"ok": true, "rows": [{"title": "Hi"}]}));
    // owner insert/update/delete: refused to a visitor.
    let insert =
        remote(&peer.addr, ann, json!({"op": "insert", "table": "posts", "data": {"title": "x", "body": "y"}}));
    assert_eq!(insert["error"], "not allowed: insert on table posts (policy: owner)");
    let update = json!({"op": "update", "table": "posts", "data": {"title": "defaced"}, "where": "1"});
    assert_eq!(remote(&peer.addr, ann, update)["error"], "not allowed: update on table posts (policy: owner)");

    // open insert, owner read: a visitor reads back only what it wrote, stamped as its own.
    let mine = remote(&peer.addr, ann, json!({"op": "insert", "table": "answers", "data": {"q1": "Ann's"}}));
    assert_eq!(mine["ok"], true, "{mine}");
    remote(&peer.addr, bob, json!({"op": "insert", "table": "answers", "data": {"q1": "Bob's"}}));
    let seen = remote(&peer.addr, ann, json!({"op": "query", "table": "answers", "columns": ["q1", "_owner_email"]}));
    assert_eq!(seen, json!({"ok": true, "rows": [{"q1": "Ann's", "_owner_email": ""}]}));
    let all = local(dir, json!({"op": "query", "table": "answers", "columns": ["q1"]}));
    assert_eq!(all["rows"].as_array().map(Vec::len), Some(3), "the owner reads every row: {all}");
    // The quota from schema.json holds on a schema file's table (with _owner_email there).
    remote(&peer.addr, ann, json!({"op": "insert", "table": "answers", "data": {"q1": "again"}}));
    let third = remote(&peer.addr, ann, json!({"op": "insert", "table": "answers", "data": {"q1": "once more"}}));
    assert_eq!(third["error"], "quota: at most 2 rows of yours in answers");

    // local: nobody remote, not even to read; group: nobody remote (goop's groups carry no roles).
    let settings = remote(&peer.addr, ann, json!({"op": "query", "table": "settings"}));
    assert_eq!(settings["error"], "not allowed: read on table settings (policy: local)");
    let todo = remote(&peer.addr, ann, json!({"op": "insert", "table": "todos", "data": {"text": "t"}}));
    assert_eq!(todo["error"], "not allowed: insert on table todos (policy: group)");
    let tables = remote(&peer.addr, ann, json!({"op": "tables"}));
    assert_eq!(tables, json!({"ok": true, "tables": ["answers", "posts"]}));
    // The owner's own commands are not restricted.
    assert_eq!(
        local(dir, json!({"op": "query", "table": "settings", "columns": ["value"]}))["rows"][0]["value"],
        "secret"
    );

    // The schema files are store configuration, not site content.
    let site = goop(&["site", "--peer", &peer.addr, "--dir", ann.to_str().unwrap(), "/schemas/posts.json"]);
    assert!(!stdout(&site).contains("\"columns\""), "served a schema file: {}", stdout(&site));
}

#[test]
fn a_broken_file_names_file_and_field_and_keeps_the_old_tables() {
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    let peer = run(dir);
    local(dir, json!({"op": "insert", "table": "posts", "data": {"title": "Kept", "body": "b"}}));

    // A typo in a type, and a new table in the same version: nothing of it applies.
    write_schema(dir, "posts.json", &POSTS.replace(r#""type": "integer""#, r#""type": "int""#));
    write_schema(
        dir,
        "tags.json",
        r#"{"name": "tags", "system_key": true, "columns": [{"name": "tag", "type": "text"}]}"#,
    );
    let expected = "error schema: site/schemas/posts.json: columns[3].type: unknown variant `int`, expected one of \
                    `text`, `integer`, `real`, `blob`, `guid`, `datetime`, `date`, `time`, `enum` at line 7 column 39";
    assert_eq!(check(dir), expected);
    assert_eq!(local(dir, json!({"op": "tables"})), json!({"ok": true, "tables": ["posts"]}));
    let ann = folder("Ann");
    let kept = remote(&peer.addr, ann.path(), json!({"op": "query", "table": "posts", "columns": ["title"]}));
    assert_eq!(kept, json!({"ok": true, "rows": [{"title": "Kept"}]}));
    // Its access stays in force too: still owner-only writes.
    let insert = json!({"op": "insert", "table": "posts", "data": {"title": "x", "body": "y"}});
    assert!(remote(&peer.addr, ann.path(), insert)["error"].as_str().unwrap().contains("policy: owner"));
    // The dashboard shows it, as it shows a broken schema.sql.
    assert!(common::viewer_status(peer.viewer_port)["schema_error"]
        .as_str()
        .unwrap()
        .starts_with("site/schemas/posts.json: columns[3].type"));

    // Fixed: applied, without a restart.
    write_schema(dir, "posts.json", POSTS);
    assert_eq!(check(dir), "ok echo");
    assert_eq!(local(dir, json!({"op": "tables"})), json!({"ok": true, "tables": ["posts", "tags"]}));
    assert_eq!(common::viewer_status(peer.viewer_port)["schema_error"], Value::Null);
}

#[test]
fn changes_apply_while_the_peer_runs() {
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    let peer = run(dir);
    let ann = folder("Ann");
    local(dir, json!({"op": "insert", "table": "posts", "data": {"title": "Old", "body": "b"}}));

    // A new file: a new table, at the next request.
    write_schema(dir, "answers.json", ANSWERS);
    let tables = remote(&peer.addr, ann.path(), json!({"op": "tables"}));
    assert_eq!(tables, json!({"ok": true, "tables": ["answers", "posts"]}));

    // A new column (as goop2's add-column does: ALTER TABLE ADD COLUMN), the rows kept. A
    // required one needs a default, for the rows already there.
    let with_tags = POSTS.replace(
        r#"{"name": "slug", "type": "text"},"#,
        r#"{"name": "slug", "type": "text"}, {"name": "tags", "type": "text", "required": true},"#,
    );
    write_schema(dir, "posts.json", &with_tags);
    assert!(check(dir).starts_with("error schema: site/schemas/posts.json: columns[3].default: tags is added"));
    write_schema(
        dir,
        "posts.json",
        &with_tags.replace(r#""required": true}"#, r#""required": true, "default": "none"}"#),
    );
    assert_eq!(check(dir), "ok echo");
    let rows = remote(&peer.addr, ann.path(), json!({"op": "query", "table": "posts", "columns": ["title", "tags"]}));
    assert_eq!(rows, json!({"ok": true, "rows": [{"title": "Old", "tags": "none"}]}));
    assert_eq!(columns(dir, "posts").last().map(String::as_str), Some("tags TEXT"));

    // A column's type cannot change under its rows.
    write_schema(
        dir,
        "posts.json",
        &POSTS.replace(r#""name": "slug", "type": "text""#, r#""name": "slug", "type": "real""#),
    );
    assert!(check(dir)
        .starts_with("error schema: site/schemas/posts.json: columns[2].type: column slug of table posts is TEXT"));

    // The access changes too: open the posts for inserts.
    write_schema(dir, "posts.json", &POSTS.replace(r#""insert": "owner""#, r#""insert": "open""#));
    let insert = json!({"op": "insert", "table": "posts", "data": {"title": "Ann's", "body": "b"}});
    assert_eq!(remote(&peer.addr, ann.path(), insert)["ok"], true);

    // A removed file leaves its table and rows, closed to visitors (removing a file never opens
    // a table); putting it back takes the table back.
    let answer = json!({"op": "insert", "table": "answers", "data": {"q1": "yes"}});
    assert_eq!(remote(&peer.addr, ann.path(), answer.clone())["ok"], true);
    std::fs::remove_file(dir.join("site/schemas/answers.json")).unwrap();
    assert_eq!(check(dir), "ok echo");
    assert_eq!(local(dir, json!({"op": "tables"})), json!({"ok": true, "tables": ["answers", "posts"]}));
    let closed = remote(&peer.addr, ann.path(), answer.clone());
    assert_eq!(closed["error"], "not allowed: insert on table answers (policy: local)");
    assert_eq!(
        local(dir, json!({"op": "query", "table": "answers", "columns": ["q1"]}))["rows"],
        json!([{"q1": "yes"}])
    );
    write_schema(dir, "answers.json", ANSWERS);
    assert_eq!(check(dir), "ok echo");
    assert_eq!(remote(&peer.addr, ann.path(), answer)["ok"], true);
}

#[test]
fn a_table_is_defined_in_one_place() {
    // schema.sql creating a schema file's table: an error on its line, naming the file.
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    std::fs::write(dir.join("site/schema.sql"), "CREATE TABLE notes (a);\n\nCREATE TABLE IF NOT EXISTS Posts (x);")
        .unwrap();
    assert_eq!(
        check(dir),
        "error schema: site/schema.sql:3: creates table posts, which site/schemas/posts.json defines; a table is \
         defined in one place: remove it from one of them"
    );
    assert_eq!(local(dir, json!({"op": "tables"})), json!({"ok": true, "tables": ["posts"]}));

    // A schema file for a table schema.sql made: an error naming the file; the table is not taken over.
    let host = folder("Host");
    let dir = host.path();
    std::fs::write(dir.join("site/schema.sql"), "CREATE TABLE posts (_id INTEGER PRIMARY KEY, title TEXT);").unwrap();
    assert_eq!(check(dir), "ok echo");
    write_schema(dir, "posts.json", POSTS);
    assert_eq!(
        check(dir),
        "error schema: site/schemas/posts.json: name: table posts already exists, made by site/schema.sql or by \
         hand; a table is defined in one place: remove it from one of them (or drop the table)"
    );
    assert_eq!(columns(dir, "posts"), ["_id INTEGER", "title TEXT"]);

    // schema.json giving a schema file's table access rules: reported, and the file's rules win.
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    std::fs::write(dir.join("site/schema.json"), r#"{"tables": {"posts": {"insert": "open"}}}"#).unwrap();
    assert_eq!(
        check(dir),
        "error schema: site/schema.json: tables.posts.insert: ignored, the table's access is in \
         site/schemas/posts.json; schema.json may give it only rate_limit, quota_rows and quota_bytes"
    );
    let peer = run(dir);
    let ann = folder("Ann");
    let insert = json!({"op": "insert", "table": "posts", "data": {"title": "x", "body": "y"}});
    assert_eq!(remote(&peer.addr, ann.path(), insert)["error"], "not allowed: insert on table posts (policy: owner)");
}

#[test]
fn check_lists_every_schema_fault_on_its_own_line() {
    let host = folder("Host");
    let dir = host.path();
    std::fs::write(dir.join("site/schema.sql"), "CREATE TABLEE oops (a);").unwrap();
    write_schema(dir, "posts.json", r#"{"name": "posts", "system_key": true, "columns": []}"#);
    let out = stdout(&goop(&["check", "--dir", dir.to_str().unwrap()]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        [
            r#"error schema: site/schema.sql:1: near "TABLEE": syntax error"#,
            "error schema: site/schemas/posts.json: columns: a table needs at least one column",
            "ok echo"
        ]
    );
}

#[test]
fn hostile_files_are_refused() {
    let host = folder("Host");
    let dir = host.path();
    let before = local(dir, json!({"op": "tables"}));

    // Names that try SQL, or goop's own tables: refused by name, nothing created.
    for (name, column) in [
        ("posts\\\"; DROP TABLE _goop_inbox; --", "a"),
        ("_goop_inbox", "a"),
        ("sqlite_master", "a"),
        ("t", "a\\\" TEXT); DROP TABLE _goop_inbox; --"),
        ("t", "_owner"),
    ] {
        let text =
            format!(r#"{{"name": "{name}", "system_key": true, "columns": [{{"name": "{column}", "type": "text"}}]}}"#);
        write_schema(dir, "evil.json", &text);
        let line = check(dir);
        assert!(line.starts_with("error schema: site/schemas/evil.json: "), "{line}");
        assert!(line.contains("name: "), "{line}");
        assert_eq!(local(dir, json!({"op": "tables"})), before);
    }
    // A default that tries SQL is a quoted literal.
    let text = r#"{"name": "t", "system_key": true, "columns": [{"name": "a", "type": "text", "default": "x'); DROP TABLE _goop_inbox; --"}]}"#;
    write_schema(dir, "evil.json", text);
    assert_eq!(check(dir), "ok echo");
    local(dir, json!({"op": "insert", "table": "t", "data": {}}));
    let row = local(dir, json!({"op": "query", "table": "t", "columns": ["a"]}));
    assert_eq!(row["rows"][0]["a"], "x'); DROP TABLE _goop_inbox; --");
    std::fs::remove_file(dir.join("site/schemas/evil.json")).unwrap();

    // Symbolic links, to a file or as the folder, are not followed.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.json"), SETTINGS).unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.json"), dir.join("site/schemas/x.json")).unwrap();
    assert_eq!(
        check(dir),
        "error schema: site/schemas/x.json: is a symbolic link; schema files must be regular files in the folder"
    );
    std::fs::remove_dir_all(dir.join("site/schemas")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("site/schemas")).unwrap();
    assert_eq!(check(dir), "error schema: site/schemas/: is a symbolic link; the schema folder must be a real folder");
    assert!(!local(dir, json!({"op": "tables"}))["tables"].as_array().unwrap().contains(&json!("settings")));
}

#[test]
fn the_typed_description_is_what_the_file_says() {
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    write_schema(dir, "todos.json", TODOS);
    let store = goop::store::Store::open(dir, "12D3KooWHost").unwrap();
    let schemas = store.schemas();
    let posts = schemas.table("POSTS").unwrap();
    assert_eq!(schemas.file_of("posts"), Some("site/schemas/posts.json"));
    assert_eq!(
        posts.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["title", "body", "slug", "published"]
    );
    assert_eq!((posts.columns[0].kind, posts.columns[0].required), (goop::store::ColumnType::Text, true));
    assert_eq!(posts.columns[3].default, Some(json!(1)));
    assert_eq!(posts.access.insert, goop::store::Level::Owner);
    // As JSON it is goop2's shape: what orm-schema answers.
    let todos = serde_json::to_value(schemas.table("todos").unwrap()).unwrap();
    assert_eq!(todos, serde_json::from_str::<Value>(TODOS).unwrap());
    assert_eq!(schemas.tables().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["posts", "todos"]);
}

/// goop2's `auto` columns are filled in when an insert leaves them out: a guid key gets a UUID
/// v4, an integer the largest value + 1, a datetime the current time; a given value stays.
#[test]
fn auto_columns_are_filled_in() {
    let dir = folder("Host");
    let d = dir.path();
    write_schema(
        d,
        "things.json",
        r#"{"name": "things", "columns": [{"name": "uid", "type": "guid", "auto": true, "key": true},
            {"name": "n", "type": "integer", "auto": true}, {"name": "at", "type": "datetime", "auto": true},
            {"name": "label", "type": "text"}]}"#,
    );
    for data in [json!({"label": "a"}), json!({"label": "b"}), json!({"label": "c", "n": 10, "uid": "mine"})] {
        let inserted = local(d, json!({"op": "insert", "table": "things", "data": data}));
        assert_eq!(inserted["ok"], true, "{inserted}");
    }
    let rows = local(d, json!({"op": "query", "table": "things", "order": "_id"}))["rows"].clone();
    let uid = |i: usize| rows[i]["uid"].as_str().unwrap_or_default().to_string();
    let uuid = |u: &str| {
        let parts: Vec<usize> = u.split('-').map(str::len).collect();
        parts == [8, 4, 4, 4, 12] && u.as_bytes()[14] == b'4' && "89ab".contains(u.as_bytes()[19] as char)
    };
    assert!(uuid(&uid(0)) && uuid(&uid(1)) && uid(0) != uid(1), "{rows}");
    assert_eq!(uid(2), "mine");
    assert_eq!([&rows[0]["n"], &rows[1]["n"], &rows[2]["n"]], [&json!(1), &json!(2), &json!(10)]);
    assert_eq!(rows[0]["at"].as_str().map(str::len), Some(19), "{rows}");
}
