//! Data hooks from a remote peer's side: `before_*` refuse or rewrite a visitor's direct writes,
//! `after_*` see what was written, and `goop.peer` is the writer.

mod common;

use std::path::Path;

use common::{folder, goop, peer_id, run, stdout};
use serde_json::Value;

const HOOKS: &str = r#"
function before_insert(tbl, row)
  if tbl ~= "notes" then return end
  if #row.body > 20 then return false, "a note is at most 20 characters" end
  if row.body:find("spam", 1, true) then error("no spam") end
  return { body = row.body:gsub("^%l", string.upper), by = goop.peer.id }
end
function before_update(tbl, change)
  if change.data.body == "" then return false end
end
function before_delete(tbl, target)
  if goop.peer.id ~= goop.self.id then return false, "only the host deletes" end
end
function after_insert(tbl, row) goop.kv.set("inserted", row) end
function after_update(tbl, change) goop.kv.set("updated", change) end
function handle() return goop.json.encode({ inserted = goop.kv.get("inserted"), updated = goop.kv.get("updated") }) end
"#;

fn data(addr: &str, dir: &Path, request: &str) -> Value {
    let out = goop(&["data", "--peer", addr, "--dir", dir.to_str().unwrap(), request]);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn local_query(dir: &Path) -> Value {
    let out = goop(&["data", "--dir", dir.to_str().unwrap(), r#"{"op":"query","table":"notes","order":"_id"}"#]);
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// A host folder with a `notes` table (`body`, `by`) whose `open` operation is open to anyone.
fn notes_host(open: &str) -> tempfile::TempDir {
    let dir = folder("Host");
    std::fs::write(
        dir.path().join("site/schema.sql"),
        "CREATE TABLE notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, \
         body TEXT, by TEXT);\n",
    )
    .unwrap();
    let policy = format!(r#"{{"tables": {{"notes": {{"{open}": "open"}}}}}}"#);
    std::fs::write(dir.path().join("site/schema.json"), policy).unwrap();
    dir
}

#[test]
fn hooks_refuse_rewrite_and_see_a_visitors_writes() {
    let host_dir = notes_host("delete");
    let h = host_dir.path();
    std::fs::write(h.join("site/lua/notes_guard.lua"), HOOKS).unwrap();
    let host = run(h);
    let visitor_dir = folder("Visitor");
    let v = visitor_dir.path();
    let visitor = peer_id(v);

    // Refused by `return false, reason` and by `error(...)`: nothing is written.
    let long = data(&host.addr, v, r#"{"op":"insert","table":"notes","data":{"body":"this is far too long to keep"}}"#);
    assert_eq!(long, serde_json::json!({"ok": false, "error": "refused: a note is at most 20 characters"}));
    let spam = data(&host.addr, v, r#"{"op":"insert","table":"notes","data":{"body":"buy spam"}}"#);
    assert_eq!(spam, serde_json::json!({"ok": false, "error": "refused: no spam"}));
    assert_eq!(local_query(h)["rows"], serde_json::json!([]));

    // Rewritten: the row written is the hook's, stamped with the writer.
    let ok = data(&host.addr, v, r#"{"op":"insert","table":"notes","data":{"body":"hello"}}"#);
    assert_eq!(ok["ok"], true, "{ok}");
    let rows = local_query(h)["rows"].clone();
    assert_eq!((rows[0]["body"].as_str(), rows[0]["by"].as_str()), (Some("Hello"), Some(visitor.as_str())));
    assert_eq!(rows[0]["_owner"], visitor.as_str());

    // after_insert saw the written row with its id and owner.
    let seen: Value =
        serde_json::from_str(stdout(&goop(&["cmd", "--dir", h.to_str().unwrap(), "!notes_guard"])).trim()).unwrap();
    assert_eq!(seen["inserted"]["_id"], ok["id"]);
    assert_eq!(seen["inserted"]["_owner"], visitor.as_str());
    assert_eq!(seen["inserted"]["body"], "Hello");

    // Update: refused without a reason, then allowed and seen with its count.
    let empty =
        data(&host.addr, v, r#"{"op":"update","table":"notes","data":{"body":""},"where":"_id = ?","args":[1]}"#);
    assert_eq!(empty, serde_json::json!({"ok": false, "error": "refused: notes_guard said no"}));
    let edit =
        data(&host.addr, v, r#"{"op":"update","table":"notes","data":{"body":"edited"},"where":"_id = ?","args":[1]}"#);
    assert_eq!(edit["affected"], 1, "{edit}");
    let seen: Value =
        serde_json::from_str(stdout(&goop(&["cmd", "--dir", h.to_str().unwrap(), "!notes_guard"])).trim()).unwrap();
    assert_eq!(
        seen["updated"],
        serde_json::json!({"data": {"body": "edited"}, "where": "_id = ?", "args": [1], "affected": 1})
    );

    // Delete: the visitor is refused though the table's policy is open; the host is not.
    let delete = data(&host.addr, v, r#"{"op":"delete","table":"notes","where":"_id = ?","args":[1]}"#);
    assert_eq!(delete, serde_json::json!({"ok": false, "error": "refused: only the host deletes"}));
    assert_eq!(local_query(h)["rows"].as_array().map(Vec::len), Some(1));
    let own = goop(&["data", "--dir", h.to_str().unwrap(), r#"{"op":"delete","table":"notes","where":"_id = 1"}"#]);
    assert!(stdout(&own).contains(r#""affected":1"#), "{}", stdout(&own));
}

#[test]
fn a_visitor_cannot_slip_past_the_hooks_by_spelling_a_table_or_column_otherwise() {
    let host_dir = notes_host("update");
    let h = host_dir.path();
    // The guard as the site guide writes it: by table name, then by column.
    std::fs::write(
        h.join("site/lua/notes_guard.lua"),
        r#"
function before_insert(tbl, row)
  if tbl == "notes" and row.body and row.body:find("spam", 1, true) then return false, "no spam" end
end
function before_update(tbl, change)
  if tbl == "notes" and change.data.body ~= nil then return false, "notes are not edited" end
end
"#,
    )
    .unwrap();
    let host = run(h);
    let visitor_dir = folder("Visitor");
    let v = visitor_dir.path();

    // SQLite names are case-insensitive: `NOTES` and `Body` are the same table and column, so
    // the hooks must see them as `notes` and `body`.
    let attempts = [
        r#"{"op":"insert","table":"NOTES","data":{"body":"buy spam"}}"#,
        r#"{"op":"insert","table":"notes","data":{"Body":"buy spam"}}"#,
    ];
    for request in attempts {
        let answer = data(&host.addr, v, request);
        assert_eq!(answer, serde_json::json!({"ok": false, "error": "refused: no spam"}), "{request}");
    }
    assert_eq!(local_query(h)["rows"], serde_json::json!([]), "nothing written");
    // Owner's own row, then a visitor's edit spelled otherwise.
    let own = goop(&["data", "--dir", h.to_str().unwrap(), r#"{"op":"insert","table":"notes","data":{"body":"hi"}}"#]);
    assert!(stdout(&own).contains(r#""ok":true"#), "{}", stdout(&own));
    let edit = r#"{"op":"update","table":"Notes","data":{"BODY":"spam"},"where":"1","args":[]}"#;
    assert_eq!(data(&host.addr, v, edit), serde_json::json!({"ok": false, "error": "refused: notes are not edited"}));
    // Two spellings of one column in one row are refused, whatever the hooks say.
    let twice = data(&host.addr, v, r#"{"op":"insert","table":"notes","data":{"body":"ok","BODY":"spam"}}"#);
    assert_eq!(twice["ok"], false, "{twice}");
    assert_eq!(local_query(h)["rows"][0]["body"], "hi");
}

#[test]
fn a_hook_returning_nil_and_a_reason_refuses() {
    let host_dir = folder("Host");
    let h = host_dir.path();
    std::fs::write(
        h.join("site/schema.sql"),
        "CREATE TABLE notes (_id INTEGER PRIMARY KEY AUTOINCREMENT, _owner TEXT NOT NULL, \
         _created_at DATETIME DEFAULT CURRENT_TIMESTAMP, _updated_at DATETIME DEFAULT CURRENT_TIMESTAMP, \
         body TEXT);\n",
    )
    .unwrap();
    // Lua's own way to fail (`return nil, err`, as io.open does) must not let the write through.
    std::fs::write(
        h.join("site/lua/notes_guard.lua"),
        "function before_insert(tbl, row) if row.body == 'no' then return nil, 'not this one' end end\n",
    )
    .unwrap();
    let host = run(h);
    let visitor_dir = folder("Visitor");
    let refused = data(&host.addr, visitor_dir.path(), r#"{"op":"insert","table":"notes","data":{"body":"no"}}"#);
    assert_eq!(refused, serde_json::json!({"ok": false, "error": "refused: not this one"}));
    assert_eq!(local_query(h)["rows"], serde_json::json!([]));
}
