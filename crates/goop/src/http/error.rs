//! Why a `goop.http` request failed, worded for the script author who reads it as `err`.

use std::net::IpAddr;

use super::addr::Range;
use super::{MAX_REDIRECTS, MAX_REQUESTS};

/// A refused or failed request. Its `Display` text is what the script gets as `err`.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("URL scheme {0:?} not allowed (only http and https)")]
    Scheme(String),
    #[error("blocked address {addr} ({range})")]
    Blocked { addr: IpAddr, range: Range },
    #[error("cannot resolve host {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("too many HTTP requests in one invocation (max {MAX_REQUESTS})")]
    TooManyRequests,
    #[error("response larger than 1 MB")]
    TooLarge,
    #[error("timeout: no time left in this invocation")]
    NoTimeLeft,
    #[error("timeout: no response before the script's deadline")]
    Timeout,
    #[error("too many redirects (max {MAX_REDIRECTS})")]
    TooManyRedirects,
    #[error("{what} longer than {} KB", max / 1024)]
    TooLong { what: &'static str, max: usize },
    #[error("invalid header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error("request failed: {0}")]
    Transport(String),
}

impl From<ureq::Error> for HttpError {
    fn from(e: ureq::Error) -> Self {
        match e {
            // Our resolver's refusals travel through ureq boxed; unwrap them to keep the text.
            ureq::Error::Other(inner) => match inner.downcast::<HttpError>() {
                Ok(ours) => *ours,
                Err(other) => HttpError::Transport(other.to_string()),
            },
            ureq::Error::Timeout(_) => HttpError::Timeout,
            ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge,
            ureq::Error::TooManyRedirects => HttpError::TooManyRedirects,
            ureq::Error::BadUri(reason) => HttpError::Transport(format!("bad URL: {reason}")),
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => HttpError::Timeout,
                _ => HttpError::Transport(io.to_string()),
            },
            other => HttpError::Transport(other.to_string()),
        }
    }
}
