//! `/goop/site/1.0.0`: serves the files of `site/`, never the scripts or the store's configuration, never outside it.
//!
//! Wire format: the request is JSON `{"path":"/index.html"}`. The response is one line of JSON,
//! a newline, then the file's bytes: `{"ok":true,"content_type":"text/html","size":123}\n<bytes>`
//! or `{"ok":false,"error":"not found"}\n`.

use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

/// Largest file served, in bytes.
pub const MAX_FILE: usize = 4 * 1024 * 1024;
/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 1024;

/// Files at the top of `site/` that are server configuration, never served.
const PRIVATE_FILES: &[&str] = &["schema.sql", "schema.json"];
/// Folders at the top of `site/` that are never served: the scripts, and the tables'
/// definitions (`schemas/*.json`, store configuration like `schema.sql`).
const PRIVATE_FOLDERS: &[&str] = &["lua", "schemas"];

#[derive(Debug, Serialize, Deserialize)]
pub struct SiteRequest {
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteHeader {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a site request resolves to.
#[derive(Debug, PartialEq)]
pub enum SiteAnswer {
    File { content_type: String, bytes: Vec<u8> },
    Refused(String),
}

/// The served folder and the script folder inside it that must stay private.
#[derive(Debug, Clone)]
pub struct Site {
    pub root: PathBuf,
    pub scripts: PathBuf,
}

impl Site {
    /// Resolves a raw request body to a file or a refusal. Never reads outside `root`.
    pub fn answer(&self, request: &[u8]) -> SiteAnswer {
        match self.find(request) {
            Ok(found) => found.read(),
            Err(reason) => SiteAnswer::Refused(reason),
        }
    }

    /// The file a raw request asks for and its size, not read yet; or why not.
    pub fn find(&self, request: &[u8]) -> Result<Found, String> {
        match serde_json::from_slice::<SiteRequest>(request) {
            Ok(r) => self.find_path(&r.path),
            Err(e) => Err(format!("malformed site request: {e}")),
        }
    }

    /// The file at `path` (`/index.html`, `css/app.css`), not read yet; or why not.
    pub fn find_path(&self, path: &str) -> Result<Found, String> {
        let path = self.resolve(path)?;
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len() as usize,
            _ => return Err("not found".into()),
        };
        if size > MAX_FILE {
            return Err(format!("file larger than {} MB", MAX_FILE / (1024 * 1024)));
        }
        let content_type = mime_guess::from_path(&path).first_or_octet_stream().essence_str().to_string();
        Ok(Found { path, size, content_type })
    }

    fn resolve(&self, raw: &str) -> Result<PathBuf, String> {
        if raw.len() > MAX_PATH {
            return Err("path too long".into());
        }
        let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| "path is not valid UTF-8".to_string())?;
        if decoded.contains(['\0', '\\']) {
            return Err("invalid path".into());
        }
        let rel = Path::new(decoded.trim_start_matches('/'));
        for c in rel.components() {
            match c {
                Component::Normal(part) if !part.to_string_lossy().starts_with('.') => {}
                _ => return Err("invalid path".into()),
            }
        }
        let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().to_lowercase());
        if first.as_deref().is_some_and(|f| PRIVATE_FOLDERS.contains(&f)) {
            return Err("not found".into());
        }
        // The schema and its access policies configure the store: a quiz's answer key may be in them.
        if rel.components().count() == 1 && first.as_deref().is_some_and(|f| PRIVATE_FILES.contains(&f)) {
            return Err("not found".into());
        }
        let root = self.root.canonicalize().map_err(|_| "not found".to_string())?;
        let mut target = root.join(rel).canonicalize().map_err(|_| "not found".to_string())?;
        if target.is_dir() {
            target = target.join("index.html").canonicalize().map_err(|_| "not found".to_string())?;
        }
        // Symlinks are resolved above, so this catches links that leave the site or enter scripts.
        let scripts = self.scripts.canonicalize().ok();
        if !target.starts_with(&root)
            || scripts.is_some_and(|s| target.starts_with(s))
            || PRIVATE_FOLDERS.iter().any(|f| target.starts_with(root.join(f)))
            || PRIVATE_FILES.iter().any(|f| target == root.join(f))
        {
            return Err("not found".into());
        }
        Ok(target)
    }
}

/// Room for an answer's header line, beyond the file: `SITE_BOUNDS` allows as much.
pub const HEADER_ROOM: usize = 1024;

/// A file a site request resolved to, checked but not read.
#[derive(Debug)]
pub struct Found {
    path: PathBuf,
    size: usize,
    content_type: String,
}

impl Found {
    /// The file's size in bytes, as found.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The most bytes its answer takes on the wire: the file and the header line.
    pub fn answer_len(&self) -> usize {
        self.size + HEADER_ROOM
    }

    /// Reads the file; it must still have the size it had when found.
    pub fn read(self) -> SiteAnswer {
        let mut bytes = Vec::with_capacity(self.size);
        match self.read_into(&mut bytes) {
            Ok(()) => SiteAnswer::File { content_type: self.content_type, bytes },
            Err(reason) => SiteAnswer::Refused(reason),
        }
    }

    /// The answer's wire bytes, the file read straight after its header: one buffer, one copy.
    pub fn encode(self) -> Vec<u8> {
        let header =
            SiteHeader { ok: true, content_type: Some(self.content_type.clone()), size: Some(self.size), error: None };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.push(b'\n');
        out.reserve_exact(self.size);
        match self.read_into(&mut out) {
            Ok(()) => out,
            Err(reason) => encode(SiteAnswer::Refused(reason)),
        }
    }

    fn read_into(&self, out: &mut Vec<u8>) -> Result<(), String> {
        use std::io::Read;
        let start = out.len();
        let file = std::fs::File::open(&self.path).map_err(|_| "not found".to_string())?;
        // One byte past the size tells a file that grew since it was found.
        match file.take(self.size as u64 + 1).read_to_end(out) {
            Ok(n) if n == self.size => Ok(()),
            Ok(_) => {
                out.truncate(start);
                Err("the file changed while being read; try again".into())
            }
            Err(_) => Err("not found".into()),
        }
    }
}

/// Encodes an answer for the wire.
pub fn encode(answer: SiteAnswer) -> Vec<u8> {
    let (header, body) = match answer {
        SiteAnswer::File { content_type, bytes } => {
            (SiteHeader { ok: true, size: Some(bytes.len()), content_type: Some(content_type), error: None }, bytes)
        }
        SiteAnswer::Refused(e) => {
            (SiteHeader { ok: false, content_type: None, size: None, error: Some(e) }, Vec::new())
        }
    };
    let mut out = serde_json::to_vec(&header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(&body);
    out
}

/// Decodes a response: the header and the file's bytes.
pub fn decode(response: &[u8]) -> Result<(SiteHeader, Vec<u8>), String> {
    let newline = response.iter().position(|b| *b == b'\n').ok_or("malformed site response")?;
    let header: SiteHeader =
        serde_json::from_slice(&response[..newline]).map_err(|e| format!("malformed site response: {e}"))?;
    Ok((header, response[newline + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join("lua/functions")).unwrap();
        std::fs::create_dir_all(root.join("lua/.state")).unwrap();
        std::fs::create_dir_all(root.join("css")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(root.join("css/style.css"), "b{}").unwrap();
        std::fs::write(root.join("lua/echo.lua"), "secret").unwrap();
        std::fs::write(root.join("lua/.state/echo.json"), "{}").unwrap();
        std::fs::write(root.join("schema.sql"), "INSERT INTO answer_key VALUES (1, 2);").unwrap();
        std::fs::write(root.join("schema.json"), "{}").unwrap();
        std::fs::create_dir_all(root.join("schemas")).unwrap();
        std::fs::write(root.join("schemas/answers.json"), "{}").unwrap();
        std::fs::write(dir.path().join("goop.json"), "{}").unwrap();
        std::fs::write(dir.path().join("identity.key"), "key").unwrap();
        let s = Site { scripts: root.join("lua"), root };
        (dir, s)
    }

    fn get(s: &Site, path: &str) -> SiteAnswer {
        s.answer(&serde_json::to_vec(&SiteRequest { path: path.into() }).unwrap())
    }

    #[test]
    fn serves_files_with_content_type() {
        let (_d, s) = site();
        assert_eq!(get(&s, "/"), SiteAnswer::File { content_type: "text/html".into(), bytes: b"<h1>hi</h1>".to_vec() });
        assert_eq!(
            get(&s, "/css/style.css"),
            SiteAnswer::File { content_type: "text/css".into(), bytes: b"b{}".to_vec() }
        );
        assert_eq!(get(&s, "index.html"), get(&s, "/"));
    }

    #[test]
    fn refuses_scripts_traversal_and_hidden_files() {
        let (_d, s) = site();
        for path in [
            "/lua/echo.lua",
            "lua/echo.lua",
            "/LUA/echo.lua",
            "/lua",
            "/lua/",
            "/lua/.state/echo.json",
            "/%6cua/echo.lua",
            "/../goop.json",
            "/css/../../identity.key",
            "/%2e%2e/goop.json",
            "/%2E%2E%2Fgoop.json",
            "..%2fgoop.json",
            "/css/..%5c..%5cgoop.json",
            "/etc/passwd",
            "//etc/passwd",
            "/.hidden",
            "/css/%00.css",
            "/nope.html",
            "/schema.sql",
            "/SCHEMA.SQL",
            "/%73chema.sql",
            "/schema.json",
            "/schemas/answers.json",
            "/Schemas/answers.json",
        ] {
            assert!(matches!(get(&s, path), SiteAnswer::Refused(_)), "{path} should be refused");
        }
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_that_leave_the_site() {
        let (d, s) = site();
        std::os::unix::fs::symlink(d.path().join("goop.json"), s.root.join("leak.json")).unwrap();
        std::os::unix::fs::symlink(s.root.join("lua"), s.root.join("scripts")).unwrap();
        assert!(matches!(get(&s, "/leak.json"), SiteAnswer::Refused(_)));
        assert!(matches!(get(&s, "/scripts/echo.lua"), SiteAnswer::Refused(_)));
        std::os::unix::fs::symlink(s.root.join("schemas"), s.root.join("tables")).unwrap();
        std::os::unix::fs::symlink(s.root.join("schema.sql"), s.root.join("setup.txt")).unwrap();
        assert!(matches!(get(&s, "/tables/answers.json"), SiteAnswer::Refused(_)));
        assert!(matches!(get(&s, "/setup.txt"), SiteAnswer::Refused(_)));
    }

    #[test]
    fn malformed_and_oversize_requests_are_refused() {
        let (_d, s) = site();
        assert!(matches!(s.answer(b"not json"), SiteAnswer::Refused(_)));
        assert!(matches!(get(&s, &"a/".repeat(1000)), SiteAnswer::Refused(_)));
        std::fs::write(s.root.join("big.bin"), vec![0u8; MAX_FILE + 1]).unwrap();
        assert!(matches!(get(&s, "/big.bin"), SiteAnswer::Refused(_)));
    }

    #[test]
    fn an_answer_is_the_size_found_or_a_refusal() {
        let (_d, s) = site();
        let request = serde_json::to_vec(&SiteRequest { path: "/index.html".into() }).unwrap();
        let found = s.find(&request).unwrap();
        assert_eq!(found.answer_len(), "<h1>hi</h1>".len() + HEADER_ROOM);
        let (header, body) = decode(&found.encode()).unwrap();
        assert_eq!((header.size, body.as_slice()), (Some(11), &b"<h1>hi</h1>"[..]));

        let found = s.find(&request).unwrap();
        std::fs::write(s.root.join("index.html"), "<h1>much longer now</h1>").unwrap();
        let (header, body) = decode(&found.encode()).unwrap();
        assert!(!header.ok && body.is_empty(), "{header:?}");
        assert!(header.error.unwrap().contains("changed"));
    }

    #[test]
    fn wire_format_round_trips() {
        let bytes = encode(SiteAnswer::File { content_type: "text/plain".into(), bytes: b"a\nb".to_vec() });
        assert!(bytes.starts_with(br#"{"ok":true,"content_type":"text/plain","size":3}"#));
        let (h, body) = decode(&bytes).unwrap();
        assert!(h.ok);
        assert_eq!(body, b"a\nb");
    }
}
