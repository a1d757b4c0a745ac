//! One HTTP request under goop's rules: http/https only, no proxies, guarded resolver, at most
//! 5 redirects, a hard time budget, and a 1 MB body cap enforced while reading.

use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue, Uri};
use ureq::unversioned::transport::{Connector, RustlsConnector, TcpConnector};
use ureq::Agent;

use super::error::HttpError;
use super::resolve::GuardedResolver;
use super::{HttpPolicy, MAX_BODY_BYTES, MAX_REDIRECTS};

/// The Content-Type of a POST whose headers name none (as spec 000 promises).
pub const DEFAULT_POST_TYPE: &str = "application/x-www-form-urlencoded";

/// Headers the client sets itself, so a script cannot desynchronise the message framing.
const RESERVED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// What to send.
#[derive(Debug)]
pub struct Request {
    pub url: String,
    /// `None` for GET, the body for POST.
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
}

/// A complete response: any status, the body at most 1 MB.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A request that failed, with the status if a response had started (0 if none).
#[derive(Debug)]
pub struct Failure {
    pub error: HttpError,
    pub status: u16,
}

impl From<HttpError> for Failure {
    fn from(error: HttpError) -> Self {
        Failure { error, status: 0 }
    }
}

/// A blocking client shared by all VMs of one engine; its pool holds only checked connections.
#[derive(Debug, Clone)]
pub struct Client {
    agent: Agent,
}

impl Client {
    pub fn new(policy: HttpPolicy) -> Self {
        let config = Agent::config_builder()
            // The default reads HTTP(S)_PROXY from the environment; a proxy would resolve the
            // target itself and bypass the guarded resolver.
            .proxy(None)
            .max_redirects(MAX_REDIRECTS)
            // A 404 is a response the script may want to read, not a transport failure.
            .http_status_as_error(false)
            .user_agent(concat!("goop/", env!("CARGO_PKG_VERSION")))
            .build();
        // TCP to the resolver's addresses, then TLS: no SOCKS or CONNECT proxy connectors.
        let connector = ().chain(TcpConnector::default()).chain(RustlsConnector::default());
        Client { agent: Agent::with_parts(config, connector, GuardedResolver::new(policy)) }
    }

    /// Sends `request`, giving up after `timeout` (connect, redirects and body included).
    pub fn send(&self, request: Request, timeout: Duration) -> Result<Response, Failure> {
        // Refuse other schemes first, with our wording (`file:///x` does not even parse as a URI).
        match scheme(&request.url) {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
            Some(other) => return Err(HttpError::Scheme(other.to_string()).into()),
            None => return Err(HttpError::InvalidUrl { url: request.url, reason: "not an absolute URL".into() }.into()),
        }
        let uri: Uri = request
            .url
            .parse()
            .map_err(|e| HttpError::InvalidUrl { url: request.url.clone(), reason: format!("{e}") })?;
        let headers = checked_headers(&request.headers)?;
        let has_type = headers.iter().any(|(name, _)| name == ureq::http::header::CONTENT_TYPE);
        let sent = match request.body {
            None => {
                let mut builder = self.agent.get(uri);
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                builder.config().timeout_global(Some(timeout)).build().call()
            }
            Some(body) => {
                let mut builder = self.agent.post(uri);
                if !has_type {
                    builder = builder.header(ureq::http::header::CONTENT_TYPE, DEFAULT_POST_TYPE);
                }
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
                builder.config().timeout_global(Some(timeout)).build().send(&body[..])
            }
        };
        let mut response = sent.map_err(HttpError::from)?;
        let status = response.status().as_u16();
        // `limit` reads at most one byte past the cap to detect an oversize body.
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| Failure { error: e.into(), status })?;
        Ok(Response { status, body })
    }
}

/// The scheme of an absolute URL (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`).
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn checked_headers(headers: &[(String, String)]) -> Result<Vec<(HeaderName, HeaderValue)>, HttpError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let bad = |reason: &str| HttpError::Header { name: name.clone(), reason: reason.to_string() };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a valid header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(bad("set by goop, not by scripts"));
        }
        let value = HeaderValue::from_str(value).map_err(|_| bad("value has characters not allowed in a header"))?;
        out.push((header, value));
    }
    Ok(out)
}
