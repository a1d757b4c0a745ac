//! Issue 9, points 8 and 10: a flood of messages keeps others' messages, and `schema.sql`
//! (the owner's own file) cannot touch files outside the peer folder or run forever.

use std::time::{Duration, Instant};

use goop::store::{Store, MAX_INBOX, MAX_PER_SENDER};

use super::*;

/// One sender's 20,000 messages leave another sender's 5 in place (before: 0 of 5 kept).
#[test]
fn inbox_flood_keeps_other_senders_5_of_5() {
    let dir = peer_dir();
    let store = Store::open(dir.path(), HOST).unwrap();
    for i in 0..5 {
        store.save_message(VISITOR, "Ann", &format!("hello {i}")).unwrap();
    }
    for i in 0..20_000 {
        store.save_message(OTHER, "Spam", &format!("spam {i}")).unwrap();
    }
    let all = store.inbox(MAX_INBOX as usize).unwrap();
    let kept = all.iter().filter(|m| m.from_peer == VISITOR).count();
    let spam = all.iter().filter(|m| m.from_peer == OTHER).count();
    assert_eq!(kept, 5, "the other sender's messages kept");
    assert_eq!(spam, MAX_PER_SENDER as usize, "the flooder keeps its newest {MAX_PER_SENDER}");
    assert_eq!(all.last().map(|m| m.content.as_str()), Some("spam 19999"));
}

/// A peer folder whose schema.sql ends with `extra`, and the line `extra` starts on.
fn schema_with(extra: &str) -> (tempfile::TempDir, usize) {
    let dir = peer_dir();
    let schema = dir.path().join("site/schema.sql");
    let text = std::fs::read_to_string(&schema).unwrap();
    std::fs::write(&schema, format!("{text}\n{extra}\n")).unwrap();
    (dir, text.matches('\n').count() + 2)
}

/// ATTACH and VACUUM INTO in schema.sql are refused before any file is created (before: an
/// empty file appeared at the ATTACH path).
#[test]
fn schema_cannot_create_files_outside() {
    let outside = tempfile::tempdir().unwrap();
    for (statement, file) in [("ATTACH '{}' AS x", "attached.db"), ("VACUUM INTO '{}'", "copy.db")] {
        let path = outside.path().join(file);
        let statement = statement.replace("{}", &path.display().to_string());
        let (dir, line) = schema_with(&format!("{statement};"));
        let err = Store::open(dir.path(), HOST).unwrap().schema_error().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with(&format!("site/schema.sql:{line}: ")), "{statement}: {err}");
        assert!(!path.exists(), "{statement} created {}", path.display());
    }
}

/// A schema statement that would run forever is stopped at 10 s and named by its line.
#[test]
fn schema_statements_stop_at_10_s() {
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let (dir, line) = schema_with(&format!("{forever};"));
    let path = dir.path().to_path_buf();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(Store::open(&path, HOST).map(|s| s.schema_error().map(|e| e.to_string())).map_err(|e| e.to_string()))
    });
    let outcome = rx.recv_timeout(Duration::from_secs(30)).expect("schema.sql still running after 30 s");
    let took = started.elapsed();
    assert_eq!(outcome, Ok(Some(format!("site/schema.sql:{line}: stopped: ran past 10 s"))));
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");
}
