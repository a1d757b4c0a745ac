//! The shape of a data-protocol table request, checked before anything touches the database.
//!
//! ```json
//! {"op":"tables"}
//! {"op":"describe","table":"games"}
//! {"op":"query","table":"games","columns":["_id","board"],"where":"status = ?","args":["playing"],
//!  "order":"_id desc","limit":100,"offset":0}
//! {"op":"insert","table":"games","data":{"board":"---------"}}
//! {"op":"update","table":"games","data":{"status":"draw"},"where":"_id = ?","args":[3]}
//! {"op":"delete","table":"games","where":"_id = ?","args":[3]}
//! ```
//!
//! Unknown fields are refused (a mistyped `where` must not turn into "every row"), and so are
//! fields an op does not use. `update` and `delete` need a `where` (use `"1"` for all rows).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::StoreError;
use super::value::MAX_ROWS;

/// Rows a query returns when it names no limit.
pub const DEFAULT_LIMIT: usize = 100;
/// Longest `where` fragment.
pub const MAX_WHERE_BYTES: usize = 4096;

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Tables,
    Describe { table: String },
    Query(Query),
    Insert { table: String, data: Map<String, Value> },
    Update { table: String, data: Map<String, Value>, filter: Filter },
    Delete { table: String, filter: Filter },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub table: String,
    /// `None`: all columns.
    pub columns: Option<Vec<String>>,
    pub filter: Option<Filter>,
    /// `(column, descending)` pairs, columns not yet checked against the table.
    pub order: Vec<(String, bool)>,
    pub limit: usize,
    pub offset: u64,
}

/// A caller-written `where` fragment with its `?` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub sql: String,
    pub args: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// Read before parsing; named so `deny_unknown_fields` accepts it.
    #[serde(rename = "op")]
    _op: serde::de::IgnoredAny,
    table: Option<String>,
    columns: Option<Vec<String>>,
    #[serde(rename = "where")]
    filter: Option<String>,
    args: Option<Vec<Value>>,
    order: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    data: Option<Map<String, Value>>,
}

/// Checks `request`'s shape. `lua-call` and `lua-list` are answered before this.
pub fn parse(request: &Value) -> Result<Request, StoreError> {
    let Some(object) = request.as_object() else {
        return Err(StoreError::Request("request must be a JSON object".into()));
    };
    let op = match object.get("op") {
        Some(Value::String(op)) => op.as_str(),
        Some(_) => return Err(StoreError::Request("op must be a string".into())),
        None => return Err(StoreError::Request("request needs an \"op\"".into())),
    };
    let allowed: &[&str] = match op {
        "tables" => &[],
        "describe" => &["table"],
        "query" => &["table", "columns", "where", "args", "order", "limit", "offset"],
        "insert" => &["table", "data"],
        "update" => &["table", "data", "where", "args"],
        "delete" => &["table", "where", "args"],
        other => return Err(StoreError::UnknownOp(other.chars().take(64).collect())),
    };
    if let Some(extra) = object.keys().find(|k| *k != "op" && !allowed.contains(&k.as_str())) {
        return Err(StoreError::Request(format!("{op} does not take a field {:?}", short(extra))));
    }
    let raw: Raw = serde_path_to_error::deserialize(request)
        .map_err(|e| StoreError::Request(format!("{}: {}", e.path(), e.inner())))?;

    let table = || raw.table.clone().ok_or_else(|| StoreError::Request(format!("{op} needs a \"table\"")));
    let data = || raw.data.clone().ok_or_else(|| StoreError::Request(format!("{op} needs a \"data\" object")));
    let where_ = || filter(raw.filter.clone(), raw.args.clone());
    let needed = |f: Option<Filter>| {
        f.ok_or_else(|| StoreError::Request(format!("{op} needs a \"where\" (use \"1\" for every row)")))
    };
    Ok(match op {
        "tables" => Request::Tables,
        "describe" => Request::Describe { table: table()? },
        "query" => Request::Query(Query {
            table: table()?,
            columns: raw.columns.clone(),
            filter: where_()?,
            order: order(raw.order.as_deref().unwrap_or(""))?,
            limit: limit(raw.limit)?,
            offset: u64::try_from(raw.offset.unwrap_or(0))
                .map_err(|_| StoreError::Request("offset must not be negative".into()))?,
        }),
        "insert" => Request::Insert { table: table()?, data: data()? },
        "update" => {
            let data = data()?;
            if data.is_empty() {
                return Err(StoreError::Request("update needs at least one column in \"data\"".into()));
            }
            Request::Update { table: table()?, data, filter: needed(where_()?)? }
        }
        _ => Request::Delete { table: table()?, filter: needed(where_()?)? },
    })
}

fn filter(sql: Option<String>, args: Option<Vec<Value>>) -> Result<Option<Filter>, StoreError> {
    let Some(sql) = sql else {
        return match args {
            Some(a) if !a.is_empty() => Err(StoreError::Request("args given without a \"where\"".into())),
            _ => Ok(None),
        };
    };
    if sql.trim().is_empty() {
        return Err(StoreError::Request("where must not be empty".into()));
    }
    if sql.len() > MAX_WHERE_BYTES {
        return Err(StoreError::Request(format!("where is longer than {MAX_WHERE_BYTES} bytes")));
    }
    contained(&sql).map_err(|why| StoreError::Request(format!("where {why}")))?;
    Ok(Some(Filter { sql, args: args.unwrap_or_default() }))
}

/// Checks that a `where` fragment is one self-contained expression: quotes closed, parentheses
/// balanced, no comment or `;` that could cut goop's statement short (otherwise `1) OR (1`
/// would escape the `AND _owner = ?` that follows), and no subquery: a `where` filters one row.
/// Which tables and rows it may read is the authorizer's business ([`super::own`] for `own`),
/// not this check's.
fn contained(sql: &str) -> Result<(), &'static str> {
    let mut depth = 0usize;
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        // Identifier characters as SQLite's tokenizer sees them.
        if c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() {
            word.push(c);
            continue;
        }
        if word.eq_ignore_ascii_case("select") {
            return Err("must not contain subqueries");
        }
        word.clear();
        // Skip a literal or quoted name. A doubled quote inside one closes and reopens it.
        let close = match c {
            '\'' | '"' | '`' => Some(c),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            if !chars.by_ref().any(|d| d == close) {
                return Err("has an unclosed quote");
            }
            continue;
        }
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("has a ) without its (")?,
            ';' => return Err("must not contain \";\""),
            '-' if chars.peek() == Some(&'-') => return Err("must not contain comments"),
            '/' if chars.peek() == Some(&'*') => return Err("must not contain comments"),
            _ => {}
        }
    }
    if word.eq_ignore_ascii_case("select") {
        return Err("must not contain subqueries");
    }
    if depth == 0 {
        Ok(())
    } else {
        Err("has a ( without its )")
    }
}

/// `"a, b desc"` → `[("a", false), ("b", true)]`. Names are checked later, against the table.
fn order(text: &str) -> Result<Vec<(String, bool)>, StoreError> {
    let bad = || StoreError::Request(format!("order must be columns with optional asc/desc, got {:?}", short(text)));
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let words: Vec<&str> = part.split_whitespace().collect();
            match words[..] {
                [column] => Ok((column.to_string(), false)),
                [column, dir] if dir.eq_ignore_ascii_case("asc") => Ok((column.to_string(), false)),
                [column, dir] if dir.eq_ignore_ascii_case("desc") => Ok((column.to_string(), true)),
                _ => Err(bad()),
            }
        })
        .collect()
}

fn limit(limit: Option<i64>) -> Result<usize, StoreError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_ROWS as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(StoreError::Request(format!("limit must be between 1 and {MAX_ROWS}"))),
    }
}

/// A caller's text cut short for an error message.
pub fn short(text: &str) -> String {
    cut(text, 64)
}

/// `text`, or its first `max` characters and "…".
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse(&v).unwrap_err().to_string()
    }

    #[test]
    fn shapes() {
        assert_eq!(parse(&json!({"op":"tables"})).unwrap(), Request::Tables);
        let Request::Query(q) = parse(&json!({"op":"query","table":"t","order":"a, b DESC","limit":5})).unwrap() else {
            panic!("not a query")
        };
        assert_eq!(q.order, vec![("a".into(), false), ("b".into(), true)]);
        assert_eq!((q.limit, q.offset), (5, 0));
    }

    #[test]
    fn contained_fragments() {
        assert_eq!(contained("a = 'it''s; -- (' AND (b = \"x)\" OR [c(] = 1)"), Ok(()));
        assert!(contained("a - -1 = 0").is_ok());
        assert!(contained("a --1").is_err());
        assert_eq!(contained("_id IN (SELECT _id FROM t)"), Err("must not contain subqueries"));
        assert_eq!(contained("EXISTS(select\t1)"), Err("must not contain subqueries"));
        assert_eq!(contained("select"), Err("must not contain subqueries"));
        assert!(contained("selected = 1 AND 'select' <> \"select\" AND x_select = 2").is_ok());
    }

    #[test]
    fn malformed() {
        assert_eq!(err(json!([])), "request must be a JSON object");
        assert_eq!(err(json!({"op": 3})), "op must be a string");
        assert_eq!(err(json!({"op": "drop"})), "unknown op: drop");
        assert_eq!(err(json!({"op": "query"})), "query needs a \"table\"");
        assert_eq!(err(json!({"op": "query", "table": 5})), "table: invalid type: integer `5`, expected a string");
        assert_eq!(err(json!({"op": "query", "table": "t", "wher": "1"})), "query does not take a field \"wher\"");
        assert_eq!(err(json!({"op": "tables", "table": "t"})), "tables does not take a field \"table\"");
        assert!(err(json!({"op": "query", "table": "t", "limit": 1001})).starts_with("limit must be"));
        assert!(err(json!({"op": "query", "table": "t", "limit": 0})).starts_with("limit must be"));
        assert!(err(json!({"op": "query", "table": "t", "offset": -1})).starts_with("offset"));
        assert!(err(json!({"op": "query", "table": "t", "order": "a; drop"})).starts_with("order must be"));
        assert!(err(json!({"op": "query", "table": "t", "where": "1; DROP TABLE t"})).contains("\";\""));
        assert!(err(json!({"op": "query", "table": "t", "where": "1 --"})).contains("comments"));
        assert!(err(json!({"op": "query", "table": "t", "where": "1 /* x"})).contains("comments"));
        assert!(err(json!({"op": "query", "table": "t", "where": "1) OR (1"})).contains(") without"));
        assert!(err(json!({"op": "query", "table": "t", "where": "(1"})).contains("( without"));
        assert!(err(json!({"op": "query", "table": "t", "where": "a = 'x"})).contains("unclosed quote"));
        assert!(err(json!({"op": "query", "table": "t", "args": [1]})).contains("without"));
        assert!(err(json!({"op": "delete", "table": "t"})).contains("needs a \"where\""));
        assert!(err(json!({"op": "update", "table": "t", "data": {}, "where": "1"})).contains("at least one"));
        assert!(err(json!({"op": "insert", "table": "t", "data": [1]})).starts_with("data: invalid type"));
    }
}
