//! `/goop/data/1.0.0`: JSON request → JSON answer. Lua ops go to the engine, the rest to the store.

use std::sync::Arc;

use goop_script::{Engine, Peer};
use serde_json::Value;

use crate::answer::Answer;
use crate::node::services::DataStore;

/// Answers one raw data request from `caller`.
pub fn handle(engine: Option<&Arc<Engine>>, store: &dyn DataStore, caller: &Peer, request: &[u8]) -> Value {
    let request: Value = match serde_json::from_slice(request) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return error("malformed request: expected a JSON object"),
        Err(e) => return error(&format!("malformed request: {e}")),
    };
    match request.get("op").and_then(Value::as_str) {
        Some("lua-call") => {
            let Some(engine) = engine else {
                return error(&goop_script::Error::Disabled.to_string());
            };
            let Some(function) = request.get("function").and_then(Value::as_str) else {
                return error("lua-call needs a \"function\" name");
            };
            let params = request.get("params").cloned().unwrap_or(Value::Object(Default::default()));
            to_value(Answer::from_call(engine.call(caller, function, &params)))
        }
        Some("lua-list") => match engine {
            Some(engine) => to_value(Answer::functions(engine.functions())),
            None => error(&goop_script::Error::Disabled.to_string()),
        },
        Some(_) => store.data_request(&caller.id, &request),
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
