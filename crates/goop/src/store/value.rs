//! SQLite values to and from JSON, and how much room they take in an answer.

use rusqlite::types::Value as Sql;
use serde_json::{Number, Value as Json};

use super::error::StoreError;

/// Largest answer of one query, in bytes of JSON (or the Lua equivalent).
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Most rows in one answer.
pub const MAX_ROWS: usize = 1000;

/// A JSON scalar as a SQL parameter: null, booleans (as 0/1), numbers and strings.
/// `what` names the value in the error, e.g. `args[2]`.
pub fn from_json(value: &Json, what: &str) -> Result<Sql, StoreError> {
    Ok(match value {
        Json::Null => Sql::Null,
        Json::Bool(b) => Sql::Integer((*b).into()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Sql::Text(s.clone()),
        Json::Array(_) | Json::Object(_) => {
            return Err(StoreError::Request(format!("{what} must be a string, number, boolean or null")))
        }
    })
}

/// A column value as JSON. Blobs and invalid UTF-8 become text (lossy); an infinite real
/// becomes null, as JSON has no such number.
pub fn to_json(value: Sql) -> Json {
    match value {
        Sql::Null => Json::Null,
        Sql::Integer(i) => Json::Number(i.into()),
        Sql::Real(f) => Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null),
        Sql::Text(s) => Json::String(s),
        Sql::Blob(b) => Json::String(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// Roughly what a value adds to an answer: its bytes, or 8 for a number.
pub fn size(value: &Sql) -> usize {
    match value {
        Sql::Null => 4,
        Sql::Integer(_) | Sql::Real(_) => 8,
        Sql::Text(s) => s.len(),
        Sql::Blob(b) => b.len(),
    }
}

/// Reads column `i` of a row as an owned value; text that is not UTF-8 comes back as a blob.
pub fn column(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Sql> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Null => Sql::Null,
        ValueRef::Integer(i) => Sql::Integer(i),
        ValueRef::Real(f) => Sql::Real(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Sql::Text(s.to_string()),
            Err(_) => Sql::Blob(t.to_vec()),
        },
        ValueRef::Blob(b) => Sql::Blob(b.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip() {
        assert_eq!(from_json(&json!(3), "a").unwrap(), Sql::Integer(3));
        assert_eq!(from_json(&json!(true), "a").unwrap(), Sql::Integer(1));
        assert_eq!(from_json(&json!(1.5), "a").unwrap(), Sql::Real(1.5));
        assert_eq!(from_json(&json!(null), "a").unwrap(), Sql::Null);
        let e = from_json(&json!([1]), "args[0]").unwrap_err();
        assert_eq!(e.to_string(), "args[0] must be a string, number, boolean or null");
        assert_eq!(to_json(Sql::Real(f64::INFINITY)), json!(null));
        assert_eq!(to_json(Sql::Blob(b"hi".to_vec())), json!("hi"));
    }
}
