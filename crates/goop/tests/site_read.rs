//! `goop.site.read`: a script reads its own site's files, never its scripts, the tables'
//! definitions or anything outside `site/`.

mod common;

use std::path::Path;

fn call(dir: &Path, path: &str) -> serde_json::Value {
    let params = serde_json::json!({ "path": path }).to_string();
    let out = common::goop(&["call", "--dir", dir.to_str().unwrap(), "reader", &params]);
    let answer: serde_json::Value = serde_json::from_str(&common::stdout(&out))
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    answer["result"].clone()
}

#[test]
fn a_script_reads_site_files_but_not_scripts_schemas_or_outside() {
    let dir = common::folder("Host");
    let site = dir.path().join("site");
    std::fs::write(
        site.join("lua/functions/reader.lua"),
        r#"function call(req)
            local text, err = goop.site.read(req.params.path)
            return { text = text, err = err }
        end"#,
    )
    .unwrap();
    std::fs::write(site.join("config.json"), r#"{"title":"Mine"}"#).unwrap();
    std::fs::create_dir_all(site.join("schemas")).unwrap();
    std::fs::write(site.join("schemas/answers.json"), "{}").unwrap();
    std::fs::write(site.join("schema.sql"), "CREATE TABLE IF NOT EXISTS t (x);").unwrap();
    std::fs::write(dir.path().join("goop.json.secret"), "secret").unwrap();

    assert_eq!(call(dir.path(), "config.json"), serde_json::json!({"text": r#"{"title":"Mine"}"#}));
    assert_eq!(call(dir.path(), "/config.json")["text"], r#"{"title":"Mine"}"#);
    for (path, why) in [
        ("lua/functions/reader.lua", "not found"),
        ("schemas/answers.json", "not found"),
        ("schema.sql", "not found"),
        ("schema.json", "not found"),
        ("nope.txt", "not found"),
        ("../goop.json", "invalid path"),
        ("../identity.key", "invalid path"),
        ("%2e%2e/goop.json", "invalid path"),
    ] {
        assert_eq!(call(dir.path(), path), serde_json::json!({ "err": why }), "{path}");
    }
    // The site protocol's 4 MB limit holds here too.
    std::fs::write(site.join("big.bin"), vec![b'x'; 4 * 1024 * 1024 + 1]).unwrap();
    assert_eq!(call(dir.path(), "big.bin"), serde_json::json!({"err": "file larger than 4 MB"}));
}

#[test]
fn a_file_counts_against_the_scripts_memory_limit() {
    let dir = common::folder("Host");
    common::configure(dir.path(), r#""max_memory_mb": 2"#, "");
    let site = dir.path().join("site");
    std::fs::write(
        site.join("lua/functions/reader.lua"),
        "function call(req) local t = goop.site.read(req.params.path) return { n = t and #t } end",
    )
    .unwrap();
    std::fs::write(site.join("small.bin"), vec![b'x'; 512 * 1024]).unwrap();
    std::fs::write(site.join("big.bin"), vec![b'x'; 3 * 1024 * 1024]).unwrap();
    assert_eq!(call_raw(dir.path(), "small.bin"), r#"{"ok":true,"result":{"n":524288}}"#);
    // 3 MB against a 2 MB limit: refused before the file is read.
    let said = call_raw(dir.path(), "big.bin");
    assert!(said.contains("memory"), "{said}");
}

fn call_raw(dir: &Path, path: &str) -> String {
    let params = serde_json::json!({ "path": path }).to_string();
    let out = common::goop(&["call", "--dir", dir.to_str().unwrap(), "reader", &params]);
    format!("{}{}", common::stdout(&out).trim(), String::from_utf8_lossy(&out.stderr).trim())
}
