//! Data functions as plain HTTP endpoints of a site (`/_goop/fn/NAME`): a link's query string,
//! a form or JSON becomes `request.params`, the function runs as the visitor, and an `html`
//! result is the page; another site (or any page elsewhere) cannot call them as the visitor.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The host's site as the visitor's viewer serves it: `<peer>.localhost:PORT`.
fn site_host(port: u16, peer: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, body) = http(port, "GET", &format!("localhost:{port}"), "/api/status", &[], "");
        let status = json(&body);
        let found = status["peers"].as_array().and_then(|peers| {
            peers.iter().find(|p| p["id"] == peer && p["connected"] == true).and_then(|p| p["site"].as_str())
        });
        if let Some(url) = found {
            return url.trim_start_matches("http://").trim_end_matches('/').to_string();
        }
        assert!(Instant::now() < deadline, "{peer} never connected: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_form_a_link_and_json_call_the_hosts_function_as_the_visitor() {
    let (host_dir, visitor_dir) = (folder("Host"), folder("Ann"));
    std::fs::write(
        host_dir.path().join("site/lua/functions/greet.lua"),
        r#"function call(req)
            local name = req.params.name or "nobody"
            if req.params.page == "yes" then
                return { html = "<h1>Hello, " .. name .. "!</h1>" }
            end
            return { hello = name, caller = goop.peer.id }
        end"#,
    )
    .unwrap();
    let host = run(host_dir.path());
    let visitor = run_with(visitor_dir.path(), &["--connect", &host.addr]);
    let (host_id, visitor_id) = (peer_id(host_dir.path()), peer_id(visitor_dir.path()));
    let port = visitor.viewer_port;
    let site = site_host(port, &host_id);
    let origin = format!("http://{site}");
    let same = [("Origin", origin.as_str()), ("Sec-Fetch-Site", "same-origin")];

    // A link: the query string.
    let (status, head, body) = http(port, "GET", &site, "/_goop/fn/greet?name=Bo%20Z", &[], "");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(json(&body)["result"], serde_json::json!({"hello": "Bo Z", "caller": visitor_id}));

    // A plain HTML form (no JavaScript): urlencoded, `+` is a space; the HTML result is the page.
    let form = [("Content-Type", "application/x-www-form-urlencoded"), same[0], same[1]];
    let (status, head, body) = http(port, "POST", &site, "/_goop/fn/greet", &form, "name=Ann+Lee&page=yes");
    assert_eq!((status, body.as_str()), (200, "<h1>Hello, Ann Lee!</h1>"));
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'self'"), "under the origin's CSP: {head}");

    // JSON.
    let json_post = [("Content-Type", "application/json"), same[0], same[1]];
    let (_, _, body) = http(port, "POST", &site, "/_goop/fn/greet", &json_post, r#"{"name":"Cy"}"#);
    assert_eq!(json(&body)["result"]["hello"], "Cy");

    // What fails says why, as the data protocol does.
    let (status, _, body) = http(port, "GET", &site, "/_goop/fn/nope", &[], "");
    assert_eq!((status, json(&body)["ok"].clone()), (400, Value::Bool(false)), "{body}");
    let (status, _, _) = http(port, "POST", &site, "/_goop/fn/greet", &json_post, "[1]");
    assert_eq!(status, 400);
    let upload = [("Content-Type", "multipart/form-data; boundary=x"), same[0], same[1]];
    let (status, _, _) = http(port, "POST", &site, "/_goop/fn/greet", &upload, "--x--");
    assert_eq!(status, 415);
}

#[test]
fn other_sites_cannot_call_a_sites_functions_as_the_visitor() {
    let host_dir = folder("Host");
    std::fs::write(host_dir.path().join("site/lua/functions/wipe.lua"), "function call() return { wiped = true } end")
        .unwrap();
    let host = run(host_dir.path());
    let port = host.viewer_port;
    let site = site_host_self(port);
    for headers in [
        // An <img> or link on a page elsewhere.
        vec![("Sec-Fetch-Site", "cross-site")],
        // Another peer's site on this viewer.
        vec![("Sec-Fetch-Site", "same-site")],
        vec![("Origin", "http://evil.example")],
    ] {
        let (status, _, body) = http(port, "GET", &site, "/_goop/fn/wipe", &headers, "");
        assert_eq!(status, 403, "{headers:?}: {body}");
    }
    // A form posted from anywhere else.
    let (status, _, _) =
        http(port, "POST", &site, "/_goop/fn/wipe", &[("Content-Type", "application/x-www-form-urlencoded")], "");
    assert_eq!(status, 403);
    // Typed into the address bar, or from the site's own page.
    for fetch_site in ["none", "same-origin"] {
        let (status, _, body) = http(port, "GET", &site, "/_goop/fn/wipe", &[("Sec-Fetch-Site", fetch_site)], "");
        assert_eq!((status, json(&body)["result"]["wiped"].clone()), (200, Value::Bool(true)));
    }
}

/// The peer's own site on its viewer.
fn site_host_self(port: u16) -> String {
    let (_, _, body) = http(port, "GET", &format!("localhost:{port}"), "/api/status", &[], "");
    let status = json(&body);
    let url = status["self"]["site"].as_str().map(str::to_string);
    url.unwrap_or_else(|| panic!("no own site in {status}"))
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}
