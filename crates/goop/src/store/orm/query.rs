//! A checked query from its parts — `where` + `args`, `order`, `fields`, `limit`, `offset` —
//! and the checks on every SQL fragment a caller or a script writes (a `where`, an aggregate's
//! select list, a `goop.expr` value), before anything touches the database.
//!
//! The data protocol and `goop.orm` build their queries here, so a fragment is held to the same
//! rules whichever way it came in. Names (`fields`, `order`, `group_by`, a column to pluck) are
//! plain identifiers, checked later against the table and quoted; a fragment is one
//! self-contained expression: quotes closed, parentheses balanced, no comment or `;`, no
//! subquery. What it may read is the authorizer's business ([`crate::store::guard`]).

use rusqlite::types::Value as Sql;

use crate::store::error::StoreError;
use crate::store::request::short;
use crate::store::value::MAX_ROWS;

/// Longest fragment (`where`, aggregate expression, `goop.expr`).
pub const MAX_FRAGMENT_BYTES: usize = 4096;

/// A caller-written `where` fragment with its `?` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub sql: String,
    pub args: Vec<Sql>,
}

/// How many rows a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many (1..=[`MAX_ROWS`]): the caller asked for a page.
    Exactly(usize),
    /// All of them, up to [`MAX_ROWS`]; past it the read is cut off or fails (see
    /// [`super::read::Overflow`]).
    All,
}

/// A checked read of one table: which rows, in which order, which columns, which page.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub filter: Option<Filter>,
    /// `(column, descending)` pairs, columns not yet checked against the table.
    pub order: Vec<(String, bool)>,
    /// `None`: every column.
    pub fields: Option<Vec<String>>,
    pub limit: Limit,
    pub offset: u64,
}

impl Query {
    /// Every row, every column.
    pub fn all() -> Query {
        Query { filter: None, order: Vec::new(), fields: None, limit: Limit::All, offset: 0 }
    }

    /// Only rows matching `filter`.
    pub fn matching(filter: Option<Filter>) -> Query {
        Query { filter, ..Query::all() }
    }
}

/// A `where` and its arguments; `None` when there is no `where` (then there must be no args).
pub fn filter(sql: Option<String>, args: Vec<Sql>) -> Result<Option<Filter>, StoreError> {
    let Some(sql) = sql else {
        return match args.is_empty() {
            true => Ok(None),
            false => Err(StoreError::Request("args given without a \"where\"".into())),
        };
    };
    if sql.trim().is_empty() {
        return Err(StoreError::Request("where must not be empty".into()));
    }
    check("where", &sql, Kind::Condition)?;
    Ok(Some(Filter { sql, args }))
}

/// A select list (an aggregate's `expr`) or a value expression (`goop.expr`): like a `where`,
/// and also without `?` (nothing binds them) or a clause keyword (`FROM`, `UNION`, …) that
/// would reach past the expression into goop's statement.
pub fn expression(what: &str, sql: &str) -> Result<String, StoreError> {
    if sql.trim().is_empty() {
        return Err(StoreError::Request(format!("{what} must not be empty")));
    }
    check(what, sql, Kind::Expression)?;
    Ok(sql.to_string())
}

/// A page size from a caller: 1..=[`MAX_ROWS`].
pub fn limit(n: i64) -> Result<Limit, StoreError> {
    match usize::try_from(n) {
        Ok(n) if (1..=MAX_ROWS).contains(&n) => Ok(Limit::Exactly(n)),
        _ => Err(StoreError::Request(format!("limit must be between 1 and {MAX_ROWS}"))),
    }
}

pub fn offset(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Request("offset must not be negative".into()))
}

/// `"a, b desc"` → `[("a", false), ("b", true)]`. Names are checked later, against the table.
pub fn order(text: &str) -> Result<Vec<(String, bool)>, StoreError> {
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

/// `"a, b"` → `["a", "b"]` (a `group_by`): column names only.
pub fn names(what: &str, text: &str) -> Result<Vec<String>, StoreError> {
    let names: Vec<String> = text.split(',').map(|n| n.trim().to_string()).collect();
    if names.iter().any(|n| n.is_empty() || n.contains(char::is_whitespace)) {
        return Err(StoreError::Request(format!("{what} must be column names, got {:?}", short(text))));
    }
    Ok(names)
}

/// What a fragment stands for in goop's statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A `where`: may use `?`.
    Condition,
    /// A select list or a value: no `?`, no clause keywords.
    Expression,
}

/// Words that would end an expression and start another clause of goop's statement.
const CLAUSE_WORDS: [&str; 14] = [
    "from",
    "where",
    "group",
    "having",
    "order",
    "limit",
    "union",
    "intersect",
    "except",
    "values",
    "window",
    "returning",
    "on",
    "using",
];

fn check(what: &str, sql: &str, kind: Kind) -> Result<(), StoreError> {
    if sql.len() > MAX_FRAGMENT_BYTES {
        return Err(StoreError::Request(format!("{what} is longer than {MAX_FRAGMENT_BYTES} bytes")));
    }
    contained(sql, kind).map_err(|why| StoreError::Request(format!("{what} {why}")))
}

/// Checks that a fragment is one self-contained expression: quotes closed, parentheses
/// balanced, no comment or `;` that could cut goop's statement short (otherwise `1) OR (1`
/// would escape the `AND _owner = ?` that follows), and no subquery: a `where` filters one row.
fn contained(sql: &str, kind: Kind) -> Result<(), &'static str> {
    let mut depth = 0usize;
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let judge = |word: &str| {
        if word.eq_ignore_ascii_case("select") {
            return Err("must not contain subqueries");
        }
        if kind == Kind::Expression && CLAUSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            return Err("must be one expression (no FROM, WHERE, UNION ...)");
        }
        Ok(())
    };
    while let Some(c) = chars.next() {
        // Identifier characters as SQLite's tokenizer sees them.
        if c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() {
            word.push(c);
            continue;
        }
        judge(&word)?;
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
            '?' | ':' | '@' if kind == Kind::Expression => return Err("must not contain parameters"),
            _ => {}
        }
    }
    judge(&word)?;
    if depth == 0 {
        Ok(())
    } else {
        Err("has a ( without its )")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contained_fragments() {
        let cond = |s| contained(s, Kind::Condition);
        assert_eq!(cond("a = 'it''s; -- (' AND (b = \"x)\" OR [c(] = 1)"), Ok(()));
        assert!(cond("a - -1 = 0").is_ok());
        assert!(cond("a --1").is_err());
        assert_eq!(cond("_id IN (SELECT _id FROM t)"), Err("must not contain subqueries"));
        assert_eq!(cond("EXISTS(select\t1)"), Err("must not contain subqueries"));
        assert_eq!(cond("select"), Err("must not contain subqueries"));
        assert!(cond("selected = 1 AND 'select' <> \"select\" AND x_select = 2").is_ok());
    }

    #[test]
    fn expressions_stay_expressions() {
        assert_eq!(
            expression("expr", "COUNT(*) as n, SUM(score) AS total").ok().as_deref(),
            Some("COUNT(*) as n, SUM(score) AS total")
        );
        assert_eq!(expression("expr", "priority + 10").ok().as_deref(), Some("priority + 10"));
        let err = |s| expression("expr", s).unwrap_err().to_string();
        assert!(err("count(*) FROM _goop_inbox").contains("one expression"));
        assert!(err("1 UNION ALL VALUES (2)").contains("one expression"));
        assert!(err("priority + ?").contains("parameters"));
        assert!(err("x; DROP TABLE t").contains("\";\""));
        assert!(err("(select 1)").contains("subqueries"));
        assert!(err("1 /* x */").contains("comments"));
        assert_eq!(names("group_by", "player, team").unwrap(), vec!["player", "team"]);
        assert!(names("group_by", "player HAVING 1").is_err());
    }
}
