//! Site path resolution under arbitrary paths: never a panic, never a byte from outside the
//! public part of `site/` (scripts, their state, the schema, the peer folder).

use goop::protocol::site::{Site, SiteAnswer, SiteRequest};
use proptest::prelude::*;

/// A peer folder whose every private file says SECRET and every public file says PUBLIC.
fn peer() -> (tempfile::TempDir, Site) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    for d in ["lua/functions", "lua/.state", "css", "sub/deeper"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (file, text) in [
        ("index.html", "PUBLIC index"),
        ("css/style.css", "PUBLIC css"),
        ("sub/deeper/page.html", "PUBLIC deep"),
        ("lua/echo.lua", "SECRET script"),
        ("lua/functions/score.lua", "SECRET function"),
        ("lua/.state/echo.json", "SECRET state"),
        ("schema.sql", "SECRET schema"),
        ("schema.json", "SECRET policies"),
        (".hidden", "SECRET dotfile"),
    ] {
        std::fs::write(root.join(file), text).unwrap();
    }
    std::fs::write(dir.path().join("goop.json"), "SECRET config").unwrap();
    std::fs::write(dir.path().join("identity.key"), "SECRET key").unwrap();
    std::os::unix::fs::symlink(dir.path().join("identity.key"), root.join("key-link")).unwrap();
    std::os::unix::fs::symlink(root.join("lua"), root.join("scripts")).unwrap();
    let site = Site { scripts: root.join("lua"), root };
    (dir, site)
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "..",
            ".",
            "",
            "lua",
            "LUA",
            "Lua",
            "%6cua",
            "%2e%2e",
            "%2E%2e",
            ".%2e",
            "%2f",
            "%2F",
            "%5c",
            "%00",
            "\\",
            "css",
            "style.css",
            "index.html",
            "sub",
            "deeper",
            "page.html",
            "echo.lua",
            "functions",
            "score.lua",
            ".state",
            "echo.json",
            "schema.sql",
            "SCHEMA.SQL",
            "%73chema.sql",
            "schema.json",
            ".hidden",
            "goop.json",
            "identity.key",
            "key-link",
            "scripts",
            "~",
            "%25",
            "%",
            "%zz",
            "é",
            "\u{0}",
        ])
        .prop_map(str::to_string),
        "[^/]{0,12}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(segment(), 0..7), prop::sample::select(vec!["/", "\\", "//", "/./"]))
        .prop_map(|(lead, parts, sep)| format!("{}{}", if lead { "/" } else { "" }, parts.join(sep)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_path_reaches_a_private_byte(path in path()) {
        let (_dir, site) = peer();
        let request = serde_json::to_vec(&SiteRequest { path: path.clone() }).unwrap();
        match site.answer(&request) {
            SiteAnswer::File { bytes, .. } => {
                let text = String::from_utf8_lossy(&bytes);
                prop_assert!(text.starts_with("PUBLIC"), "{path:?} served {text:?}");
            }
            SiteAnswer::Refused(reason) => prop_assert!(reason.len() < 200, "{reason}"),
        }
    }

    #[test]
    fn any_request_bytes_are_answered(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let (_dir, site) = peer();
        if let SiteAnswer::File { bytes, .. } = site.answer(&bytes) {
            prop_assert!(String::from_utf8_lossy(&bytes).starts_with("PUBLIC"));
        }
    }
}

#[test]
fn public_files_are_served() {
    let (_dir, site) = peer();
    for (path, text) in
        [("/", "PUBLIC index"), ("/css/style.css", "PUBLIC css"), ("sub/deeper/page.html", "PUBLIC deep")]
    {
        let request = serde_json::to_vec(&SiteRequest { path: path.into() }).unwrap();
        match site.answer(&request) {
            SiteAnswer::File { bytes, .. } => assert_eq!(bytes, text.as_bytes(), "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
}
