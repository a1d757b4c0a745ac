//! Lua ↔ JSON conversion under arbitrary input: never a panic, always within its budget, and
//! values that have a JSON form come back as they went in.

use std::time::{Duration, Instant};

use goop_script::api::json::{from_json, from_json_text, to_json, to_json_text, ConvertError, MAX_DEPTH};
use goop_script::mlua::Lua;
use goop_script::{Budget, Exceeded};
use proptest::prelude::*;
use serde_json::{Map, Value as Json};

fn plenty() -> Budget {
    Budget::new(64 * 1024 * 1024, Instant::now() + Duration::from_secs(60))
}

/// JSON with a Lua form that converts back unchanged: no nulls (nil leaves no trace in a table)
/// and no empty objects (the empty table is `[]`).
fn lua_shaped() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Json::Bool),
        (-1_000_000_000_000i64..1_000_000_000_000).prop_map(Json::from),
        (-1e12f64..1e12).prop_filter("not integral", |f| f.fract() != 0.0).prop_map(Json::from),
        ".{0,12}".prop_map(Json::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map("[a-z_][a-z0-9_]{0,8}", inner, 1..6)
                .prop_map(|m| Json::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_round_trips_through_lua(value in lua_shaped()) {
        let lua = Lua::new();
        let lua_value = from_json(&lua, &value).unwrap();
        prop_assert_eq!(to_json(&lua_value, &mut plenty()).unwrap(), value.clone());
        let text = serde_json::to_vec(&value).unwrap();
        let parsed = from_json_text(&lua, &text, plenty()).unwrap();
        let back: Json = serde_json::from_slice(&to_json_text(&parsed, &mut plenty()).unwrap()).unwrap();
        prop_assert_eq!(back, value);
    }

    #[test]
    fn any_text_decodes_or_is_refused(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let lua = Lua::new();
        match from_json_text(&lua, &bytes, plenty()) {
            Ok(_) | Err(ConvertError::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "{other}"),
        }
    }

    #[test]
    fn any_json_like_text_decodes_or_is_refused(text in "[\\[\\]{}\",:0-9a-z\\\\. ]{0,200}") {
        let lua = Lua::new();
        let _ = from_json_text(&lua, text.as_bytes(), plenty());
    }

    #[test]
    fn encoding_never_charges_past_its_budget(value in lua_shaped(), bytes in 0usize..4096) {
        let lua = Lua::new();
        let lua_value = from_json(&lua, &value).unwrap();
        let mut budget = Budget::new(bytes, Instant::now() + Duration::from_secs(60));
        match to_json_text(&lua_value, &mut budget) {
            Ok(text) => prop_assert!(text.len() <= bytes, "{} bytes of text from a {bytes}-byte budget", text.len()),
            Err(e) => prop_assert_eq!(e, ConvertError::Exceeded(Exceeded::Memory)),
        }
    }
}

#[test]
fn nesting_past_the_limit_is_refused_both_ways() {
    let lua = Lua::new();
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
    assert!(matches!(from_json_text(&lua, deep.as_bytes(), plenty()), Err(ConvertError::Invalid(_))));
    let nested: goop_script::mlua::Value =
        lua.load(format!("return {}{}", "{".repeat(MAX_DEPTH + 2), "}".repeat(MAX_DEPTH + 2))).eval().unwrap();
    assert!(matches!(to_json(&nested, &mut plenty()), Err(ConvertError::Invalid(_))));
}
