//! The goop2-style templates (todo, blog, survey) under the loads and inputs a real site meets:
//! non-English posts, long posts, many answers, a visitor who fills the to-do list. Each test
//! seeds the template's tables through `schema.sql` (seed statements run once) and calls the
//! template's data function with `goop call`, as the owner or as a visitor.

mod common;

use std::path::Path;

use serde_json::{json, Value};

const VISITOR: &str = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq";

/// A peer folder with `template` applied and `seed` as its `schema.sql`.
fn site(template: &str, seed: &str) -> tempfile::TempDir {
    let dir = common::folder("Host");
    let path = dir.path().to_str().unwrap();
    let applied = common::goop(&["templates", "apply", template, "--dir", path]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    std::fs::write(dir.path().join("site/schema.sql"), seed).unwrap();
    dir
}

fn call(dir: &Path, as_peer: Option<&str>, function: &str, params: Value) -> Value {
    common::call_result(dir, as_peer, function, params)
}

/// `n` rows made by a recursive CTE: `INSERT INTO table (columns) SELECT values FROM c`,
/// where `values` may use `x` (1..=n).
fn rows(table: &str, columns: &str, values: &str, n: usize) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
         INSERT INTO {table} ({columns}) SELECT {values} FROM c;\n"
    )
}

#[test]
fn a_post_in_any_language_keeps_the_blog_readable() {
    // 239 ASCII letters, then "é" (2 bytes) across the 240-byte excerpt boundary.
    let body = format!("{}é and more", "a".repeat(239));
    let seed = format!(
        "INSERT INTO posts (_owner, slug, title, body) VALUES ('owner', 'cafe', 'Café', '{body}');\n\
         INSERT INTO posts (_owner, slug, title, body) VALUES ('owner', 'short', 'Short', 'héllo');\n"
    );
    let dir = site("blog", &seed);
    for who in [None, Some(VISITOR)] {
        let list = call(dir.path(), who, "blog", json!({"action": "list"}));
        let posts = list["posts"].as_array().unwrap_or_else(|| panic!("the list fails: {list}"));
        assert_eq!(posts.len(), 2);
        let cafe = posts.iter().find(|p| p["slug"] == "cafe").unwrap();
        assert_eq!(cafe["excerpt"], format!("{}é…", "a".repeat(239)));
        assert!(cafe.get("body").is_none(), "the list carries excerpts, not bodies");
        let short = posts.iter().find(|p| p["slug"] == "short").unwrap();
        assert_eq!(short["excerpt"], "héllo");
    }
}

#[test]
fn long_posts_keep_the_blog_readable() {
    // 30 posts of 50 000 bytes (the most a post may hold): 1.5 MB of bodies, 100 on the page.
    let seed = rows("posts", "_owner, slug, title, body", "'owner', 'p' || x, 'Post ' || x, printf('%050000d', x)", 30);
    let dir = site("blog", &seed);
    let list = call(dir.path(), Some(VISITOR), "blog", json!({"action": "list"}));
    let posts = list["posts"].as_array().unwrap_or_else(|| panic!("the list fails: {list}"));
    assert_eq!(posts.len(), 30);
    assert_eq!(posts[0]["excerpt"].as_str().unwrap().chars().count(), 241, "240 characters and …");
    let one = call(dir.path(), Some(VISITOR), "blog", json!({"action": "read", "slug": "p7"}));
    assert_eq!(one["post"]["body"].as_str().map(str::len), Some(50_000));
}

#[test]
fn the_owner_sees_results_of_more_than_1000_answers() {
    let seed = rows("responses", "_owner, answers", r#"'visitor' || x, '{"1":' || (1 + x % 3) || ',"2":1}'"#, 1500);
    let dir = site("survey", &seed);
    // The sample questions go in at the first call.
    assert_eq!(
        call(dir.path(), None, "survey", json!({"action": "show"}))["questions"].as_array().map(Vec::len),
        Some(2)
    );
    let results = call(dir.path(), None, "survey", json!({"action": "results"}));
    assert_eq!(results["total"], 1500, "{results}");
    assert_eq!(results["questions"][0]["counts"], json!([500, 500, 500]));
    assert_eq!(results["questions"][1]["counts"], json!([1500, 0, 0]));
}

#[test]
fn a_visitor_cannot_fill_the_owners_todo_list() {
    // One visitor's 499 items: one short of the whole list.
    let seed = rows("todos", "_owner, title, position", &format!("'{VISITOR}', 'spam ' || x, x"), 499);
    let dir = site("todo", &seed);
    let more = call(dir.path(), Some(VISITOR), "todo", json!({"action": "add", "title": "one more"}));
    assert!(more["error"].as_str().is_some_and(|e| e.contains("you have 499 items")), "{more}");
    let mine = call(dir.path(), None, "todo", json!({"action": "add", "title": "Water plants"}));
    let items = mine["items"].as_array().unwrap_or_else(|| panic!("the owner cannot add: {mine}"));
    assert!(items.iter().any(|i| i["title"] == "Water plants"));
}

#[test]
fn made_up_visitors_share_a_part_of_the_todo_list() {
    // 20 items each of 19 visitors, 19 of VISITOR: 399 of the 400 visitors may hold.
    let owners = format!("CASE WHEN x <= 19 THEN '{VISITOR}' ELSE 'sybil' || (x % 19) END");
    let dir = site("todo", &rows("todos", "_owner, title, position", &format!("{owners}, 'item ' || x, x"), 399));
    let last = call(dir.path(), Some(VISITOR), "todo", json!({"action": "add", "title": "my 20th"}));
    assert_eq!(last["items"].as_array().map(Vec::len), Some(400), "{last}");
    let refused = call(dir.path(), Some(VISITOR), "todo", json!({"action": "add", "title": "my 21st"}));
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("at most 20")), "{refused}");
    let newcomer = call(dir.path(), Some("12D3KooWNewcomer"), "todo", json!({"action": "add", "title": "hi"}));
    assert!(newcomer["error"].as_str().is_some_and(|e| e.contains("full for visitors")), "{newcomer}");
    let owner = call(dir.path(), None, "todo", json!({"action": "add", "title": "Water plants"}));
    assert_eq!(owner["items"].as_array().map(Vec::len), Some(401), "{owner}");
}

/// `posts` already made by `schema.sql` (with its default access, read `open`): applying the
/// blog fails on the table (exit 2, the files written), and the blog must not then keep
/// drafts in a table every visitor reads.
#[test]
fn the_blog_keeps_no_drafts_in_a_table_it_does_not_own() {
    let dir = common::folder("Host");
    let d = dir.path();
    std::fs::write(
        d.join("site/schema.sql"),
        "CREATE TABLE posts (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, \
         slug TEXT, title TEXT, body TEXT, published INTEGER DEFAULT 1);\n",
    )
    .unwrap();
    assert!(common::goop(&["data", "--dir", d.to_str().unwrap(), r#"{"op":"tables"}"#]).status.success());
    let applied = common::goop(&["templates", "apply", "blog", "--dir", d.to_str().unwrap()]);
    assert_eq!(applied.status.code(), Some(2), "{}", String::from_utf8_lossy(&applied.stderr));
    let draft = json!({"action": "save", "title": "Secret plans", "body": "x", "published": false});
    let saved = call(d, None, "blog", draft);
    assert!(saved["error"].as_str().is_some_and(|e| e.contains("goop check")), "{saved}");

    let host = common::run(d);
    let visitor = common::folder("Ann");
    let request = json!({"op": "query", "table": "posts"}).to_string();
    let out = common::goop(&["data", "--peer", &host.addr, "--dir", visitor.path().to_str().unwrap(), &request]);
    let answer: Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(answer["rows"], json!([]), "{answer}");
}
