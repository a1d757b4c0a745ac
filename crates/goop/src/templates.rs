//! Site templates embedded in the binary (`crates/goop/templates/<name>/`): a manifest, and a
//! `site/` tree — pages, `schema.sql`, Lua scripts — copied into a peer folder.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir, DirEntry};
use serde::Deserialize;
use serde_json::{Map, Value};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The manifest of the template last installed in a peer folder, relative to the folder.
pub const INSTALLED: &str = "template.json";

/// The template `goop init` uses unless told otherwise.
pub const DEFAULT: &str = "starter";

/// How much of the stack a template ships, as the spec's tiers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Pages only.
    Static,
    /// Pages and a database schema.
    Data,
    /// Pages, schema and Lua scripts.
    FullStack,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Static => "static",
            Tier::Data => "data",
            Tier::FullStack => "full-stack",
        }
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub tier: Tier,
    /// Access policies per table, in `site/schema.json`'s `tables` shape.
    #[serde(default)]
    pub tables: Map<String, Value>,
}

/// One embedded template.
#[derive(Debug, Clone)]
pub struct Template {
    pub manifest: Manifest,
    dir: &'static Dir<'static>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template named {name:?}; there are: {}", available().join(", "))]
    Unknown { name: String },
    #[error("template {name}: bad manifest.json: {message}")]
    Manifest { name: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Policies { path: PathBuf, message: String },
    #[error("{0} is not a peer folder (no goop.json); create one with goop init")]
    NotAPeer(PathBuf),
    #[error("cannot apply the schema: {0}")]
    Schema(String),
}

/// Every template, sorted by name.
pub fn all() -> Result<Vec<Template>, TemplateError> {
    let mut list = Vec::new();
    for dir in TEMPLATES.dirs() {
        let name = dir.path().to_string_lossy().into_owned();
        let text = dir.get_file(dir.path().join("manifest.json")).and_then(|f| f.contents_utf8()).unwrap_or("");
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| TemplateError::Manifest { name: name.clone(), message: e.to_string() })?;
        list.push(Template { manifest, dir });
    }
    list.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
    Ok(list)
}

fn available() -> Vec<String> {
    all().map(|l| l.into_iter().map(|t| t.manifest.name).collect()).unwrap_or_default()
}

/// The template called `name`.
pub fn find(name: &str) -> Result<Template, TemplateError> {
    all()?.into_iter().find(|t| t.manifest.name == name).ok_or_else(|| TemplateError::Unknown { name: name.into() })
}

/// What happens to a file that already exists in the peer folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Left as it is.
    Keep,
    /// Replaced by the template's; if it differed, the old one is first copied under
    /// `DIR/backups/` (outside `site/`, so never served).
    Replace,
}

/// What installing a template did.
#[derive(Debug, Default)]
pub struct Installed {
    pub written: Vec<PathBuf>,
    /// Where the replaced files that differed from the template's were kept.
    pub backed_up: Vec<PathBuf>,
}

impl Template {
    /// Copies the template's `site/` into `peer_dir/site/` and merges its table policies
    /// into `site/schema.json` (the template's tables win; other tables are kept).
    pub fn write(&self, peer_dir: &Path, existing: Existing) -> Result<Installed, TemplateError> {
        let mut done = Installed::default();
        let mut files = Vec::new();
        collect(self.dir, &mut files);
        let prefix = self.dir.path().join("site");
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let backups = peer_dir.join("backups").join(format!("{}-{stamp}", self.manifest.name));
        for file in files {
            let Ok(rel) = file.path().strip_prefix(&prefix) else { continue };
            let path = peer_dir.join("site").join(rel);
            if let Ok(old) = std::fs::read(&path) {
                if existing == Existing::Keep || old == file.contents() {
                    continue;
                }
                let kept = backups.join("site").join(rel);
                write(&kept, &old)?;
                done.backed_up.push(kept);
            }
            write(&path, file.contents())?;
            done.written.push(path);
        }
        // What `goop.template` shows the peer's scripts.
        let path = peer_dir.join(INSTALLED);
        if std::fs::read(&path).ok().as_deref() != Some(self.manifest_text().as_bytes()) {
            write(&path, self.manifest_text().as_bytes())?;
            done.written.push(path);
        }
        if !self.manifest.tables.is_empty() {
            let path = peer_dir.join("site/schema.json");
            write(&path, self.merged_policies(&path)?.as_bytes())?;
            done.written.push(path);
        }
        Ok(done)
    }

    /// Its `manifest.json`, as written.
    fn manifest_text(&self) -> &'static str {
        self.dir.get_file(self.dir.path().join("manifest.json")).and_then(|f| f.contents_utf8()).unwrap_or("{}")
    }

    /// The chat commands it ships (`site/lua/NAME.lua`), sorted.
    pub fn commands(&self) -> Vec<String> {
        let mut files = Vec::new();
        collect(self.dir, &mut files);
        let scripts = self.dir.path().join("site/lua");
        let mut names: Vec<String> = files
            .iter()
            .filter(|f| f.path().parent() == Some(scripts.as_path()))
            .filter(|f| f.path().extension().is_some_and(|x| x == "lua"))
            .filter_map(|f| f.path().file_stem().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }

    fn merged_policies(&self, path: &Path) -> Result<String, TemplateError> {
        let bad = |message: String| TemplateError::Policies { path: path.to_path_buf(), message };
        let mut doc: Value = match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?,
            Err(_) => serde_json::json!({ "tables": {} }),
        };
        let tables = doc
            .as_object_mut()
            .map(|d| d.entry("tables").or_insert_with(|| Value::Object(Map::new())))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| bad("\"tables\" must be an object".into()))?;
        for (table, policy) in &self.manifest.tables {
            tables.insert(table.clone(), policy.clone());
        }
        let mut text = serde_json::to_string_pretty(&doc).map_err(|e| bad(e.to_string()))?;
        text.push('\n');
        crate::store::Policies::parse(&text).map_err(bad)?;
        Ok(text)
    }
}

/// `goop templates apply`: writes template `name` into the peer folder `dir` (replacing files
/// of the same name, keeping all others) and applies its schema to the database right away. A
/// running peer picks up the scripts, schema and policies by itself.
pub fn install(dir: &Path, name: &str) -> Result<Installed, TemplateError> {
    let template = find(name)?;
    if !dir.join(crate::config::FILE).is_file() {
        return Err(TemplateError::NotAPeer(dir.to_path_buf()));
    }
    let written = template.write(dir, Existing::Replace)?;
    let id = crate::identity::peer_id(dir).map_err(|e| TemplateError::Schema(e.to_string()))?;
    let store = crate::store::Store::open(dir, &id.to_string()).map_err(|e| TemplateError::Schema(e.to_string()))?;
    match store.schema_error() {
        Some(e) => Err(TemplateError::Schema(e.to_string())),
        None => Ok(written),
    }
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => collect(d, out),
            DirEntry::File(f) => out.push(f),
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), TemplateError> {
    let result = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(path, bytes));
    result.map_err(|source| TemplateError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_a_valid_manifest_and_policies() {
        let names: Vec<String> = all().unwrap().into_iter().map(|t| t.manifest.name).collect();
        assert_eq!(names, ["blog", "chat", "quiz", "starter", "survey", "tictactoe", "todo"]);
        for t in all().unwrap() {
            let dir = tempfile::tempdir().unwrap();
            let done = t.write(dir.path(), Existing::Keep).unwrap();
            assert!(dir.path().join("site/index.html").is_file(), "{}", t.manifest.name);
            let installed = dir.path().join(INSTALLED);
            assert!(done.written.iter().all(|p| p.starts_with(dir.path().join("site")) || *p == installed));
            let recorded: Value = serde_json::from_slice(&std::fs::read(&installed).unwrap()).unwrap();
            assert_eq!(recorded["name"], t.manifest.name.as_str());
            assert!(done.backed_up.is_empty());
        }
    }

    #[test]
    fn commands_are_the_top_level_scripts() {
        assert_eq!(find("starter").unwrap().commands(), ["echo", "greet", "help", "time"]);
        assert!(find("tictactoe").unwrap().commands().is_empty(), "its scripts are data functions");
    }

    #[test]
    fn policies_merge_into_an_existing_schema_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site/schema.json");
        write(&path, br#"{"tables": {"notes": {"read": "owner"}, "games": {"read": "none"}}}"#).unwrap();
        find("tictactoe").unwrap().write(dir.path(), Existing::Replace).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["tables"]["notes"]["read"], "owner", "the owner's other tables are kept");
        assert_eq!(doc["tables"]["games"]["insert"], "none");
        assert_eq!(doc["tables"]["games"]["read"], "open", "the template's policy wins for its tables");
        assert!(matches!(find("chess"), Err(TemplateError::Unknown { .. })));
    }

    #[test]
    fn replaced_files_that_differ_are_kept_outside_the_site() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("site/index.html");
        write(&page, b"<h1>my own page</h1>").unwrap();
        let starter = find("starter").unwrap();
        let done = starter.write(dir.path(), Existing::Replace).unwrap();
        assert_eq!(done.backed_up.len(), 1, "{done:?}");
        let kept = &done.backed_up[0];
        assert!(kept.starts_with(dir.path().join("backups")) && kept.ends_with("site/index.html"), "{kept:?}");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "<h1>my own page</h1>");
        assert_ne!(std::fs::read_to_string(&page).unwrap(), "<h1>my own page</h1>");
        let again = starter.write(dir.path(), Existing::Replace).unwrap();
        assert!(again.backed_up.is_empty() && again.written.is_empty(), "identical files are left alone");
    }
}
