//! The shape of a data-protocol table request, checked before anything touches the database.
//!
//! ```json
//! {"op":"tables"}
//! {"op":"describe","table":"games"}
//! {"op":"query","table":"games","columns":["_id","board"],"where":"status = ?","args":["playing"],
//!  "order":"_id desc","limit":100,"offset":0}
//! {"op":"query-one","table":"posts","where":"slug = ?","args":["hello"],"fields":["title"]}
//! {"op":"exists","table":"posts","where":"slug = ?","args":["hello"]}
//! {"op":"count","table":"posts","where":"published = 1"}
//! {"op":"pluck","table":"posts","key_col":"title","order":"_id","limit":10}
//! {"op":"distinct","table":"notes","fields":["category"]}
//! {"op":"aggregate","table":"scores","expr":"player, SUM(score) AS total","group_by":"player"}
//! {"op":"insert","table":"games","data":{"board":"---------"}}
//! {"op":"update","table":"games","data":{"status":"draw"},"where":"_id = ?","args":[3]}
//! {"op":"update","table":"games","id":3,"data":{"status":"draw"}}
//! {"op":"delete","table":"games","where":"_id = ?","args":[3]}      (or "id":3)
//! {"op":"update-where","table":"cards","data":{"position":0},"where":"column_id = ?","args":[2]}
//! {"op":"delete-where","table":"cards","where":"column_id = ?","args":[2]}
//! {"op":"upsert","table":"config","key_col":"key","data":{"key":"title","value":"Hi"}}
//! {"op":"orm-schema"}
//! {"op":"role","table":"posts"}
//! ```
//!
//! Names and fields are goop2's (`fields` is `columns`' other name; `pluck` and `distinct`
//! take their column as `key_col` or the first of `fields`). Unknown fields are refused (a
//! mistyped `where` must not turn into "every row"), and so are fields an op does not use.
//! Writes by condition need a `where` (use `"1"` for all rows).

use rusqlite::types::Value as Sql;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::StoreError;
use super::orm::query::{self, Filter, Limit, Query};
use super::orm::read::Read;
use super::value;

/// Rows a query returns when it names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// A checked request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Tables,
    Describe { table: String },
    OrmSchema,
    Role { table: String },
    Read { table: String, read: Read, query: Query },
    Insert { table: String, data: Map<String, Value> },
    Update { table: String, data: Map<String, Value>, filter: Filter, answer: Answer },
    Delete { table: String, filter: Filter, answer: Answer },
    Upsert { table: String, key: String, data: Map<String, Value> },
}

/// Which answer a write by condition gets: the same change, three spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `update`/`delete` with a `where`: `{"ok":true,"affected":N}`.
    Affected,
    /// `update`/`delete` with an `id` (goop2's): also `"data":{"status":"updated"}`, and an
    /// error when a remote caller's row is not there.
    ById,
    /// `update-where`/`delete-where`: `{"ok":true,"data":{"affected":N}}`.
    Where,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// Read before parsing; named so `deny_unknown_fields` accepts it.
    #[serde(rename = "op")]
    _op: serde::de::IgnoredAny,
    table: Option<String>,
    columns: Option<Vec<String>>,
    fields: Option<Vec<String>>,
    #[serde(rename = "where")]
    filter: Option<String>,
    args: Option<Vec<Value>>,
    order: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    data: Option<Map<String, Value>>,
    id: Option<i64>,
    key_col: Option<String>,
    expr: Option<String>,
    group_by: Option<String>,
}

/// The fields each op takes.
fn allowed(op: &str) -> Option<&'static [&'static str]> {
    const PICK: &[&str] = &["table", "where", "args"];
    Some(match op {
        "tables" | "orm-schema" => &[],
        "describe" | "role" => &["table"],
        "query" => &["table", "columns", "fields", "where", "args", "order", "limit", "offset"],
        "query-one" => &["table", "columns", "fields", "where", "args", "order"],
        "exists" | "count" | "delete-where" => PICK,
        "pluck" => &["table", "key_col", "fields", "where", "args", "order", "limit"],
        "distinct" => &["table", "key_col", "fields", "where", "args"],
        "aggregate" => &["table", "expr", "group_by", "where", "args"],
        "insert" => &["table", "data"],
        "update" => &["table", "data", "where", "args", "id"],
        "delete" => &["table", "where", "args", "id"],
        "update-where" => &["table", "data", "where", "args"],
        "upsert" => &["table", "key_col", "data"],
        _ => return None,
    })
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
    let Some(allowed) = allowed(op) else {
        return Err(StoreError::UnknownOp(op.chars().take(64).collect()));
    };
    if let Some(extra) = object.keys().find(|k| *k != "op" && !allowed.contains(&k.as_str())) {
        return Err(StoreError::Request(format!("{op} does not take a field {:?}", short(extra))));
    }
    let raw: Raw = serde_path_to_error::deserialize(request)
        .map_err(|e| StoreError::Request(format!("{}: {}", e.path(), e.inner())))?;
    let fields = match (&raw.columns, &raw.fields) {
        (Some(_), Some(_)) => return Err(StoreError::Request("give columns or fields, not both".into())),
        (Some(list), None) | (None, Some(list)) if list.is_empty() => {
            return Err(StoreError::Request("columns must not be empty".into()))
        }
        (columns, fields) => columns.clone().or_else(|| fields.clone()),
    };

    let table = || raw.table.clone().ok_or_else(|| StoreError::Request(format!("{op} needs a \"table\"")));
    let data = || raw.data.clone().ok_or_else(|| StoreError::Request(format!("{op} needs a \"data\" object")));
    let where_ = || query::filter(raw.filter.clone(), args(raw.args.as_deref())?);
    let needed =
        || where_()?.ok_or_else(|| StoreError::Request(format!("{op} needs a \"where\" (use \"1\" for every row)")));
    // `update`/`delete`: by `id` (goop2's) or by `where`.
    let target = || -> Result<(Filter, Answer), StoreError> {
        match raw.id {
            Some(_) if raw.filter.is_some() || raw.args.is_some() => {
                Err(StoreError::Request(format!("{op} takes an \"id\" or a \"where\", not both")))
            }
            Some(id) if id > 0 => {
                Ok((Filter { sql: "\"_id\" = ?".into(), args: vec![Sql::Integer(id)] }, Answer::ById))
            }
            Some(_) => Err(StoreError::Request("id must be a row id (1 or more)".into())),
            None => Ok((needed()?, Answer::Affected)),
        }
    };
    let column = || match (&raw.key_col, &fields) {
        (Some(c), None) => Ok(c.clone()),
        (None, Some(list)) if list.len() == 1 => Ok(list[0].clone()),
        _ => Err(StoreError::Request(format!("{op} needs one column: \"key_col\" or \"fields\": [name]"))),
    };
    let page = |default: Limit| -> Result<Query, StoreError> {
        Ok(Query {
            filter: where_()?,
            order: query::order(raw.order.as_deref().unwrap_or(""))?,
            fields: fields.clone(),
            limit: raw.limit.map_or(Ok(default), query::limit)?,
            offset: query::offset(raw.offset.unwrap_or(0))?,
        })
    };
    let read = |read: Read, query: Query| Ok(Request::Read { table: table()?, read, query });
    match op {
        "tables" => Ok(Request::Tables),
        "orm-schema" => Ok(Request::OrmSchema),
        "describe" => Ok(Request::Describe { table: table()? }),
        "role" => Ok(Request::Role { table: table()? }),
        "query" => read(Read::Rows, page(Limit::Exactly(DEFAULT_LIMIT))?),
        "query-one" => read(Read::One, Query { limit: Limit::Exactly(1), ..page(Limit::Exactly(1))? }),
        "exists" => read(Read::Exists, Query::matching(where_()?)),
        "count" => read(Read::Count, Query::matching(where_()?)),
        "pluck" => {
            let column = column()?;
            read(Read::Pluck(column), Query { fields: None, ..page(Limit::Exactly(DEFAULT_LIMIT))? })
        }
        "distinct" => read(Read::Distinct(column()?), Query::matching(where_()?)),
        "aggregate" => {
            let expr = raw.expr.as_deref().ok_or_else(|| StoreError::Request("aggregate needs an \"expr\"".into()))?;
            let expr = query::expression("expr", expr)?;
            let group_by = match raw.group_by.as_deref() {
                Some(text) => query::names("group_by", text)?,
                None => Vec::new(),
            };
            read(Read::Aggregate { expr, group_by }, Query::matching(where_()?))
        }
        "insert" => Ok(Request::Insert { table: table()?, data: data()? }),
        "update" | "update-where" => {
            let data = data()?;
            if data.is_empty() {
                return Err(StoreError::Request(format!("{op} needs at least one column in \"data\"")));
            }
            let (filter, answer) = if op == "update" { target()? } else { (needed()?, Answer::Where) };
            Ok(Request::Update { table: table()?, data, filter, answer })
        }
        "delete" => {
            let (filter, answer) = target()?;
            Ok(Request::Delete { table: table()?, filter, answer })
        }
        "delete-where" => Ok(Request::Delete { table: table()?, filter: needed()?, answer: Answer::Where }),
        _ => {
            let key = raw.key_col.clone().ok_or_else(|| StoreError::Request("upsert needs a \"key_col\"".into()))?;
            Ok(Request::Upsert { table: table()?, key, data: data()? })
        }
    }
}

/// JSON arguments as SQL values.
fn args(args: Option<&[Value]>) -> Result<Vec<Sql>, StoreError> {
    args.unwrap_or_default().iter().enumerate().map(|(i, a)| value::from_json(a, &format!("args[{i}]"))).collect()
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
        let Request::Read { query: q, .. } =
            parse(&json!({"op":"query","table":"t","order":"a, b DESC","limit":5})).unwrap()
        else {
            panic!("not a query")
        };
        assert_eq!(q.order, vec![("a".into(), false), ("b".into(), true)]);
        assert_eq!((q.limit, q.offset), (Limit::Exactly(5), 0));
        let Request::Read { read, .. } = parse(&json!({"op":"pluck","table":"t","fields":["a"]})).unwrap() else {
            panic!("not a read")
        };
        assert_eq!(read, Read::Pluck("a".into()));
        let Request::Update { filter, answer, .. } =
            parse(&json!({"op":"update","table":"t","id":3,"data":{"a":1}})).unwrap()
        else {
            panic!("not an update")
        };
        assert_eq!((filter.args, answer), (vec![Sql::Integer(3)], Answer::ById));
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
        assert!(err(json!({"op": "delete-where", "table": "t"})).contains("needs a \"where\""));
        assert!(err(json!({"op": "delete", "table": "t", "id": 1, "where": "1"})).contains("not both"));
        assert!(err(json!({"op": "delete", "table": "t", "id": 0})).contains("row id"));
        assert!(err(json!({"op": "update", "table": "t", "data": {}, "where": "1"})).contains("at least one"));
        assert!(err(json!({"op": "insert", "table": "t", "data": [1]})).starts_with("data: invalid type"));
        assert!(err(json!({"op": "pluck", "table": "t"})).contains("one column"));
        assert!(err(json!({"op": "aggregate", "table": "t", "expr": "count(*) FROM _goop_inbox"}))
            .contains("one expression"));
        assert!(err(json!({"op": "upsert", "table": "t", "data": {}})).contains("key_col"));
    }
}
