//! Why a store operation failed, worded for whoever reads it: the peer owner at startup, a
//! remote caller in `{"ok":false,"error":…}`, or a script author in a Lua error.

use std::path::PathBuf;

use rusqlite::ErrorCode;

/// A failed store operation. Its `Display` text is the message callers see.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is larger than {max} bytes")]
    FileTooLarge { path: PathBuf, max: u64 },
    /// `schema.sql` is at fault: the owner fixes the file.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("{path}: {message}")]
    Policy { path: PathBuf, message: String },
    /// A data-protocol request that does not have the expected shape.
    #[error("{0}")]
    Request(String),
    #[error("unknown op: {0}")]
    UnknownOp(String),
    /// The table's access policy refuses this caller.
    #[error("not allowed: {op} on table {table} (policy: {policy})")]
    Forbidden { op: &'static str, table: String, policy: &'static str },
    /// The SQLite authorizer refused part of a statement.
    #[error("not allowed: {0}")]
    Denied(String),
    #[error("{0}")]
    WrongKind(&'static str),
    #[error("only one statement per call")]
    MultipleStatements,
    #[error("more than {0} rows; add a LIMIT")]
    TooManyRows(usize),
    #[error("result larger than {0} bytes")]
    TooLarge(usize),
    #[error("timeout: the query was stopped at the deadline")]
    Timeout,
    #[error("database busy: no connection before the deadline")]
    Busy,
    #[error("{}", sql_message(.0))]
    Sql(rusqlite::Error),
    #[error("rate limited: at most {per_minute} writes per minute to {table}")]
    RateLimited { per_minute: u32, table: String },
    #[error("rate limited: too many distinct writers, try again later")]
    TooManyWriters,
    #[error("busy: at most {0} queries of yours at once")]
    PeerBusy(usize),
    #[error("row too large: at most {} of data per write", bytes(*.0 as u64))]
    RowTooLarge(usize),
    #[error("quota: at most {max} rows of yours in {table}")]
    QuotaRows { max: u32, table: String },
    #[error("quota: at most {} of yours in {table}", bytes(*.max))]
    QuotaBytes { max: u64, table: String },
    #[error("quota: an update may write at most {} in all ({rows} rows matched)", bytes(*.max))]
    UpdateTooLarge { max: u64, rows: usize },
    #[error("where matches more than {0} rows; narrow it")]
    TooManyMatches(usize),
}

/// Why `site/schema.sql` or `site/schemas/*.json` was not applied. Nothing of that file's (or
/// folder's) version was: the tables stay as the last good version left them, and the peer runs
/// on. Paths are relative to the peer folder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("{file} is larger than {max} bytes")]
    TooLarge { file: &'static str, max: u64 },
    #[error("cannot read {file}: {reason}")]
    Read { file: &'static str, reason: String },
    /// A statement failed, was refused or was stopped; `line` is where it starts.
    #[error("{file}:{line}: {message}")]
    Statement { file: &'static str, line: usize, message: String },
    /// A table schema file (`site/schemas/*.json`) or the folder is at fault; `message` starts
    /// with the field's path when one field is (`columns[2].type: …`).
    #[error("{file}: {message}")]
    Table { file: String, message: String },
    /// More than one of the above, one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<SchemaError>),
}

/// `n` bytes in words: "1 MB", "64 KB", "1500 bytes".
fn bytes(n: u64) -> String {
    const KB: u64 = 1024;
    match n {
        n if n >= KB * KB && n % (KB * KB) == 0 => format!("{} MB", n / (KB * KB)),
        n if n >= KB && n % KB == 0 => format!("{} KB", n / KB),
        n => format!("{n} bytes"),
    }
}

/// SQLite's words without the statement text rusqlite appends to syntax errors (it can be long,
/// and the caller wrote it).
fn sql_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

impl StoreError {
    /// Maps a SQLite error to what it means here. `denied` is what the authorizer refused, if
    /// it refused anything: SQLite itself only says "not authorized".
    pub(crate) fn from_sql(e: rusqlite::Error, denied: Option<String>) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => return StoreError::Timeout,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => return StoreError::Busy,
            Some(ErrorCode::AuthorizationForStatementDenied) => {
                return StoreError::Denied(denied.unwrap_or_else(|| "statement refused".into()))
            }
            _ => {}
        }
        // A tail refused by the authorizer surfaces as a prepare error too; name what was refused.
        if let Some(what) = denied {
            return StoreError::Denied(what);
        }
        match e {
            rusqlite::Error::MultipleStatement => StoreError::MultipleStatements,
            other => StoreError::Sql(other),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::from_sql(e, None)
    }
}
