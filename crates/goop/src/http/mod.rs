//! goop.http: outbound HTTP for data functions and commands, with SSRF filtering at connect time.
//!
//! ```lua
//! local body, err, status = goop.http.get(url [, headers])
//! local body, err, status = goop.http.post(url, body [, headers])
//! ```
//!
//! Any complete response is a success: `body` (bytes as a string), `nil`, the status (a 404
//! too). A failure is `nil`, the reason, and the status if a response had started, else 0.
//! POST sends `Content-Type: application/x-www-form-urlencoded` unless `headers` name one.
//!
//! Limits: http/https only; 3 requests per invocation (every call counts, refused ones too);
//! URLs at most 8 KB and headers at most 8 KB in all; 1 MB per response body; each request,
//! redirects included, must finish within the invocation's remaining time; at most 5
//! redirects; no proxies. The copies the host makes of the request and response bodies are
//! charged to the invocation's memory limit.
//!
//! SSRF: loopback, private, link-local, CGNAT, multicast, broadcast, unspecified,
//! documentation and reserved addresses are unreachable. The check sits in the resolver the
//! client calls before each connection (first URL, every redirect hop, IP literals and each
//! DNS answer), and the client connects only to the addresses it returned: see [`addr`] and
//! `resolve.rs`.

pub mod addr;
mod client;
mod error;
mod resolve;

use goop_script::mlua::{self, Lua, LuaString, MultiValue, Table, Value};
use goop_script::{Budget, HostModule, Invocation, Scope};

pub use client::DEFAULT_POST_TYPE;
use client::{Client, Failure, Request, Response};
pub use error::HttpError;

/// Requests one invocation may make.
pub const MAX_REQUESTS: u32 = 3;
/// Largest response body, in bytes.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Redirects followed per request; every hop is checked like the first URL.
pub const MAX_REDIRECTS: u32 = 5;
/// Longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Most bytes of header names and values in one request.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// What scripts may reach. The default is the safe one: public addresses only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Let scripts reach loopback addresses (127.0.0.0/8, `::1` and their IPv4-embedding
    /// forms); every other blocked range stays blocked. For tests and local development only.
    /// Config switch: `lua.http_allow_loopback` in `goop.json`, default `false`.
    pub allow_loopback: bool,
}

/// The `goop.http` host module, visible to chat commands and data functions.
#[derive(Debug, Clone)]
pub struct HttpModule {
    client: Client,
}

impl HttpModule {
    pub fn new(policy: HttpPolicy) -> Self {
        HttpModule { client: Client::new(policy) }
    }
}

impl HostModule for HttpModule {
    fn name(&self) -> &str {
        "http"
    }

    fn scope(&self) -> Scope {
        Scope::All
    }

    fn build(&self, lua: &Lua) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        let client = self.client.clone();
        t.set(
            "get",
            lua.create_function(move |lua, (url, headers): (LuaString, Option<Table>)| {
                let request = match (read_url(&url), read_headers(headers)?) {
                    (Ok(url), Ok(headers)) => Request { url, body: None, headers },
                    (Err(e), _) | (_, Err(e)) => return reply(lua, Err(e.into())),
                };
                reply(lua, run(lua, &client, request)?)
            })?,
        )?;
        let client = self.client.clone();
        t.set(
            "post",
            lua.create_function(move |lua, (url, body, headers): (LuaString, Option<LuaString>, Option<Table>)| {
                let (url, headers) = match (read_url(&url), read_headers(headers)?) {
                    (Ok(url), Ok(headers)) => (url, headers),
                    (Err(e), _) | (_, Err(e)) => return reply(lua, Err(e.into())),
                };
                let body = match body {
                    Some(b) => {
                        let bytes = b.as_bytes();
                        Budget::of(lua).charge(bytes.len())?;
                        bytes.to_vec()
                    }
                    None => Vec::new(),
                };
                let request = Request { url, body: Some(body), headers };
                reply(lua, run(lua, &client, request)?)
            })?,
        )?;
        Ok(t)
    }
}

/// Per-invocation request count, kept in the invocation's extensions.
#[derive(Debug, Default)]
struct RequestCount(u32);

/// Counts the request against the invocation, then sends it within the time left.
fn run(lua: &Lua, client: &Client, request: Request) -> mlua::Result<Result<Response, Failure>> {
    // The invocation is borrowed only in this block, not during the network wait.
    let timeout = {
        let mut inv = lua
            .try_app_data_mut::<Invocation>()
            .map_err(|_| mlua::Error::runtime("goop.http: invocation state is busy"))?
            .ok_or_else(|| mlua::Error::runtime("goop.http used outside an invocation"))?;
        let count = inv.extensions_mut().get_or_default::<RequestCount>();
        count.0 += 1;
        if count.0 > MAX_REQUESTS {
            return Ok(Err(HttpError::TooManyRequests.into()));
        }
        let remaining = inv.remaining();
        if remaining.is_zero() {
            return Ok(Err(HttpError::NoTimeLeft.into()));
        }
        remaining
    };
    Ok(client.send(request, timeout))
}

/// `body, nil, status` or `nil, err, status`. The body's host copy is charged before Lua gets its own.
fn reply(lua: &Lua, outcome: Result<Response, Failure>) -> mlua::Result<MultiValue> {
    let (body, err, status) = match outcome {
        Ok(r) => {
            Budget::of(lua).charge(r.body.len())?;
            (Value::String(lua.create_string(&r.body)?), Value::Nil, r.status)
        }
        Err(f) => (Value::Nil, Value::String(lua.create_string(f.error.to_string())?), f.status),
    };
    Ok(MultiValue::from_iter([body, err, Value::Integer(status.into())]))
}

/// The URL as text, refused before it is copied when longer than [`MAX_URL_BYTES`].
fn read_url(url: &LuaString) -> Result<String, HttpError> {
    let bytes = url.as_bytes();
    if bytes.len() > MAX_URL_BYTES {
        return Err(HttpError::TooLong { what: "URL", max: MAX_URL_BYTES });
    }
    std::str::from_utf8(&bytes)
        .map(str::to_string)
        .map_err(|_| HttpError::InvalidUrl { url: String::from_utf8_lossy(&bytes).into(), reason: "not UTF-8".into() })
}

/// The headers table as name/value pairs; names and values must be strings (numbers coerce).
/// Reading stops as soon as they pass [`MAX_HEADER_BYTES`] together.
fn read_headers(headers: Option<Table>) -> mlua::Result<Result<Vec<(String, String)>, HttpError>> {
    let Some(headers) = headers else { return Ok(Ok(Vec::new())) };
    let mut out = Vec::new();
    let mut bytes = 0;
    for pair in headers.pairs::<LuaString, LuaString>() {
        let (name, value) = pair.map_err(|e| mlua::Error::runtime(format!("goop.http: headers: {e}")))?;
        bytes += name.as_bytes().len() + value.as_bytes().len();
        if bytes > MAX_HEADER_BYTES {
            return Ok(Err(HttpError::TooLong { what: "headers", max: MAX_HEADER_BYTES }));
        }
        out.push((name.to_str()?.to_string(), value.to_str()?.to_string()));
    }
    Ok(Ok(out))
}
