//! The schema folder's bounds, each stated as a number: files, entries, bytes, and what a
//! 10 MB file costs the peer.

use super::*;

#[test]
fn bounds_of_the_schema_folder() {
    let host = folder("Host");
    let dir = host.path();
    let table =
        |i: usize| format!(r#"{{"name": "t{i}", "system_key": true, "columns": [{{"name": "a", "type": "text"}}]}}"#);
    // 64 files apply; a 65th is refused and the 64 tables stay.
    for i in 0..64 {
        write_schema(dir, &format!("t{i:02}.json"), &table(i));
    }
    assert_eq!(check(dir), "ok echo");
    write_schema(dir, "t64.json", &table(64));
    assert_eq!(check(dir), "error schema: site/schemas/: holds 65 schema files; at most 64");
    assert_eq!(local(dir, json!({"op": "tables"}))["tables"].as_array().map(Vec::len), Some(64));
    std::fs::remove_file(dir.join("site/schemas/t64.json")).unwrap();

    // A file of 64 KB applies (padded with spaces); one byte more is refused.
    let text = table(0);
    write_schema(dir, "t00.json", &format!("{text}{}", " ".repeat(64 * 1024 - text.len())));
    assert_eq!(check(dir), "ok echo");
    write_schema(dir, "t00.json", &format!("{text}{}", " ".repeat(64 * 1024 + 1 - text.len())));
    assert_eq!(check(dir), "error schema: site/schemas/t00.json: is larger than 65536 bytes");
    write_schema(dir, "t00.json", &text);

    // The listing is read before every request: 256 entries of any kind, not more.
    for i in 0..(256 - 64) {
        write_schema(dir, &format!("note{i}.txt"), "");
    }
    assert_eq!(check(dir), "ok echo");
    write_schema(dir, "one-too-many.txt", "");
    assert_eq!(check(dir), "error schema: site/schemas/: holds more than 256 entries");
}

#[test]
fn a_10_mb_file_is_refused_unread() {
    let host = folder("Host");
    let dir = host.path();
    write_schema(dir, "posts.json", POSTS);
    let peer = run(dir);
    let ann = folder("Ann");
    let ask = || remote(&peer.addr, ann.path(), json!({"op": "query", "table": "posts"}));
    assert_eq!(ask()["ok"], true);
    let before = peak_memory_kib(peer.child.id());

    let huge = format!(
        r#"{{"name": "huge", "system_key": true, "columns": [{}]}}"#,
        r#"{"name": "a", "type": "text"}, "#.repeat(350_000)
    );
    write_schema(dir, "huge.json", &huge);
    assert!(huge.len() > 10 * 1024 * 1024);
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(ask()["ok"], true, "the peer answers on, with the tables it had");
    }
    let took = start.elapsed();
    let grew = peak_memory_kib(peer.child.id()).saturating_sub(before);
    assert!(grew < 4 * 1024, "peak memory grew {grew} KiB reading past a 10 MB schema file");
    assert!(took < Duration::from_secs(20), "5 requests took {took:?}");
    assert_eq!(check(dir), "error schema: site/schemas/huge.json: is larger than 65536 bytes");
}
