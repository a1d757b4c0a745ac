//! The page a browser gets instead of a peer's site when that peer does not answer.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use libp2p::PeerId;

/// Why another peer gave no answer.
#[derive(Debug)]
pub enum Unanswered {
    /// No connection could be made, or it broke: the detail is for the log.
    Unreachable(String),
    /// Connected, but no answer within the wait.
    TimedOut(std::time::Duration),
}

impl Unanswered {
    /// What a page's script is told (the data endpoint's `error`).
    pub fn message(&self, peer: &PeerId) -> String {
        match self {
            Unanswered::Unreachable(why) => format!("cannot reach peer {peer}: {why}"),
            Unanswered::TimedOut(_) => format!("peer {peer} did not answer in time"),
        }
    }
}

/// A small HTML page naming the peer (and its label, `label` being whatever it announced) and
/// saying why its site is not shown: 502 when it cannot be reached, 504 when it did not answer.
pub fn page(peer: &PeerId, label: &str, why: &Unanswered) -> Response {
    let (status, title, sentence) = match why {
        Unanswered::Unreachable(_) => (
            StatusCode::BAD_GATEWAY,
            "This peer is offline",
            "cannot be reached from here right now: it may be offline, or its addresses out of reach. \
             Its site shows here again once it is back; reload to try again."
                .to_string(),
        ),
        Unanswered::TimedOut(wait) => (
            StatusCode::GATEWAY_TIMEOUT,
            "This peer did not answer",
            format!(
                "did not send this page within {} seconds: it may be busy or on a slow connection. Reload to try again.",
                wait.as_secs()
            ),
        ),
    };
    let name = if label.is_empty() { String::new() } else { format!(" ({})", escape(label)) };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em}}\
         code{{word-break:break-all}}</style></head>\n\
         <body><h1>{title}</h1>\n<p>Peer <code>{peer}</code>{name} {sentence}</p></body></html>\n",
        peer = escape(&peer.to_string()),
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_did_not_answer_in_time_gets_504() {
        let peer = PeerId::random();
        let page = page(&peer, "", &Unanswered::TimedOut(std::time::Duration::from_secs(30)));
        assert_eq!(page.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    }

    #[test]
    fn a_label_cannot_inject_markup() {
        assert_eq!(
            escape(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
    }
}
