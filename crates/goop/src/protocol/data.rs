//! `/goop/data/1.0.0`: JSON request → JSON answer. Lua ops go to the engine, the rest to the store.

use std::sync::Arc;

use goop_script::{Engine, Extensions, Params, Peer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::answer::Answer;
use crate::node::services::DataStore;

/// The fields of a `lua-call`, its params left as text for the engine to decode into Lua.
#[derive(Deserialize)]
struct LuaCall<'a> {
    op: String,
    function: Option<String>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

/// Answers one raw data request from `caller`.
pub fn handle(engine: Option<&Arc<Engine>>, store: &dyn DataStore, caller: &Peer, request: &[u8]) -> Value {
    // A call's params become Lua values with no host tree in between (they may be 256 KB).
    if let Ok(call) = serde_json::from_slice::<LuaCall>(request) {
        if call.op == "lua-call" {
            let Some(engine) = engine else {
                return error(&goop_script::Error::Disabled.to_string());
            };
            let Some(function) = call.function else {
                return error("lua-call needs a \"function\" name");
            };
            let params = Params::Text(call.params.map_or(&b"{}"[..], |p| p.get().as_bytes()));
            return to_value(Answer::from_call(engine.call_with(caller, &function, params, Extensions::default())));
        }
    }
    let request: Value = match serde_json::from_slice(request) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return error("malformed request: expected a JSON object"),
        Err(e) => return error(&format!("malformed request: {e}")),
    };
    match request.get("op").and_then(Value::as_str) {
        Some("lua-call") => error("lua-call needs a \"function\" name"),
        Some("lua-list") => match engine {
            Some(engine) => to_value(Answer::functions(engine.functions())),
            None => error(&goop_script::Error::Disabled.to_string()),
        },
        Some(_) => crate::write_hooks::answer(engine.map(|e| &**e), store, caller, request),
        None => error("request needs an \"op\""),
    }
}

fn to_value(answer: Answer) -> Value {
    serde_json::to_value(answer).unwrap_or_else(|e| {
        tracing::error!("cannot encode a data answer: {e}");
        error("internal error")
    })
}

fn error(message: &str) -> Value {
    serde_json::json!({ "ok": false, "error": message })
}
