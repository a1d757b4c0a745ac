//! The JSON answers of the data protocol's Lua operations, field order as the spec shows them.

use goop_script::FunctionInfo;
use serde::Serialize;
use serde_json::Value;

/// `{"ok":true,"result":…}`, `{"ok":false,"error":"…","kind":"timeout"}` or `{"ok":true,"functions":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<Function>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure a call's `error` is ([`goop_script::Error::kind`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

/// One `lua-list` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Function {
    pub name: String,
    pub description: String,
}

impl Answer {
    pub fn result(value: Value) -> Self {
        Answer { ok: true, result: Some(value), functions: None, error: None, kind: None }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Answer { ok: false, result: None, functions: None, error: Some(message.into()), kind: None }
    }

    pub fn functions(list: Vec<FunctionInfo>) -> Self {
        let functions = list.into_iter().map(|f| Function { name: f.name, description: f.description }).collect();
        Answer { ok: true, result: None, functions: Some(functions), error: None, kind: None }
    }

    /// From an engine call's outcome.
    pub fn from_call(outcome: Result<Value, goop_script::Error>) -> Self {
        match outcome {
            Ok(v) => Answer::result(v),
            Err(e) => Answer { kind: Some(e.kind()), ..Answer::error(e.to_string()) },
        }
    }

    /// One line of JSON.
    pub fn to_line(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!(r#"{{"ok":false,"error":"{e}"}}"#))
    }
}
