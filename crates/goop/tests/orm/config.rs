//! `goop.config`: goop2's settings helper in both its modes, as its config_kv.lua and
//! config_row.lua tests use it.

use serde_json::json;

use super::peer;

const KEY_VALUE: &str = r#"
function call(req)
    local cfg = goop.config("config", { theme = "light", lang = "en" })
    local p = req.params
    if p.action == "read" then return { theme = cfg.theme, lang = cfg.lang, other = cfg.other }
    elseif p.action == "set" then return { ok = cfg:set(p.key, p.value), now = cfg[p.key] }
    end
end
"#;

const ONE_ROW: &str = r#"
function call(req)
    local cfg = goop.config("app_settings", { api_url = "https://default.example", timeout = 30, debug = "false" })
    local p = req.params
    if p.action == "read" then return { api_url = cfg.api_url, timeout = cfg.timeout, debug = cfg.debug }
    elseif p.action == "set" then return { ok = cfg:set(p.key, p.value) }
    elseif p.action == "save" then return { ok = cfg:save(p.data) }
    end
end
"#;

const MISUSE: &str = r#"
function call(req)
    local missing, err = goop.config("nope")
    local bad = pcall(goop.config, "config", 42)
    return { missing = missing == nil, err = err, bad_defaults = bad }
end
"#;

#[test]
fn key_value_settings_start_from_defaults_and_keep_what_is_set() {
    let p = peer(&[("settings", KEY_VALUE)]);
    assert_eq!(p.call("settings", json!({"action": "read"})), json!({"theme": "light", "lang": "en"}));
    assert_eq!(
        p.call("settings", json!({"action": "set", "key": "theme", "value": "ocean"})),
        json!({"ok": true, "now": "ocean"})
    );
    // goop2 keeps values as text.
    p.call("settings", json!({"action": "set", "key": "other", "value": 7}));
    assert_eq!(p.call("settings", json!({"action": "read"})), json!({"theme": "ocean", "lang": "en", "other": "7"}));
    p.call("settings", json!({"action": "set", "key": "theme", "value": "dusk"}));
    let rows = p.rows("config");
    assert_eq!(rows.len(), 2, "one row per key: {rows:?}");
}

#[test]
fn one_row_settings_update_the_last_row_or_insert_it() {
    let p = peer(&[("settings", ONE_ROW)]);
    let defaults = json!({"api_url": "https://default.example", "timeout": 30, "debug": "false"});
    assert_eq!(p.call("settings", json!({"action": "read"})), defaults);
    assert_eq!(p.call("settings", json!({"action": "set", "key": "timeout", "value": 60})), json!({"ok": true}));
    assert_eq!(
        p.call("settings", json!({"action": "save", "data": {"api_url": "https://mine.example", "debug": "true"}})),
        json!({"ok": true})
    );
    assert_eq!(
        p.call("settings", json!({"action": "read"})),
        json!({"api_url": "https://mine.example", "timeout": 60, "debug": "true"})
    );
    assert_eq!(p.rows("app_settings").len(), 1, "the settings stay one row");
}

#[test]
fn a_missing_table_is_nil_and_bad_defaults_raise() {
    let p = peer(&[("misuse", MISUSE)]);
    assert_eq!(
        p.call("misuse", json!({})),
        json!({"missing": true, "err": "no table \"nope\"", "bad_defaults": false})
    );
}

/// A second row for a key neither hides the value `set` keeps nor survives a `set`: the row
/// `set` updates is the row read.
#[test]
fn a_later_row_for_a_key_does_not_override_the_setting() {
    let p = peer(&[("settings", KEY_VALUE)]);
    p.call("settings", json!({"action": "set", "key": "theme", "value": "ocean"}));
    p.seed("config", json!({"key": "theme", "value": "stale"}));
    assert_eq!(p.call("settings", json!({"action": "read"}))["theme"], "ocean");
    p.call("settings", json!({"action": "set", "key": "theme", "value": "dusk"}));
    assert_eq!(p.call("settings", json!({"action": "read"}))["theme"], "dusk");
}

/// Settings are the owner's: in a table visitors may write (`notes` keeps the default policies,
/// insert/update/delete `own`), a visitor's row would become the setting the scripts read.
#[test]
fn settings_in_a_table_visitors_write_are_refused() {
    const NOTES: &str = r#"
    function call(req)
        local cfg, err = goop.config("notes", { title = "mine" })
        return { refused = cfg == nil, err = err, title = cfg and cfg.title }
    end
    "#;
    let p = peer(&[("settings", NOTES)]);
    let sneaked =
        p.store.data_request(super::VISITOR, &json!({"op": "insert", "table": "notes", "data": {"title": "defaced"}}));
    assert_eq!(sneaked["ok"], true, "{sneaked}");
    let answer = p.call("settings", json!({}));
    assert_eq!(answer["refused"], true, "{answer}");
    assert!(answer["err"].as_str().is_some_and(|e| e.contains("insert: own")), "{answer}");
}
