//! `goop.template`: scripts see the manifest of the template installed in their folder, and
//! cannot change it for the next call.

mod common;

#[test]
fn scripts_see_the_installed_templates_manifest_read_only() {
    let dir = common::folder("Host");
    let path = dir.path().to_str().unwrap();
    assert!(common::goop(&["templates", "apply", "tictactoe", "--dir", path]).status.success());
    std::fs::write(
        dir.path().join("site/lua/functions/manifest.lua"),
        r#"function call(req)
            local changed = pcall(function() goop.template.tables.games.read = "none" end)
            local added = pcall(function() goop.template.name = "mine" end)
            return { name = goop.template.name, games = goop.template.tables.games.read,
                     changed = changed, added = added }
        end"#,
    )
    .unwrap();
    for _ in 0..2 {
        let out = common::goop(&["call", "--dir", path, "manifest"]);
        let answer: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
        assert_eq!(
            answer["result"],
            serde_json::json!({"name": "tictactoe", "games": "open", "changed": false, "added": false})
        );
    }
    // A folder without an installed template sees an empty table.
    std::fs::remove_file(dir.path().join("template.json")).unwrap();
    let out = common::goop(&["call", "--dir", path, "manifest"]);
    assert!(common::stdout(&out).contains("attempt to index nil"), "{}", common::stdout(&out));
}
