//! `goop init`: creates a peer folder with a config, a site and starter scripts.

use std::path::{Path, PathBuf};

use crate::config::{self, PeerConfig};

/// Files of the starter site, relative to the peer folder, embedded in the binary.
const STARTER: &[(&str, &str)] = &[
    ("site/index.html", include_str!("../starter/site/index.html")),
    ("site/lua/help.lua", include_str!("../starter/site/lua/help.lua")),
    ("site/lua/echo.lua", include_str!("../starter/site/lua/echo.lua")),
    ("site/lua/greet.lua", include_str!("../starter/site/lua/greet.lua")),
    ("site/lua/time.lua", include_str!("../starter/site/lua/time.lua")),
    ("site/lua/functions/hello.lua", include_str!("../starter/site/lua/functions/hello.lua")),
];

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; refusing to overwrite a peer folder")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Creates the peer folder `dir` and returns the files written. Never overwrites a file.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let config_file = dir.join(config::FILE);
    if config_file.exists() {
        return Err(InitError::Exists(config_file));
    }
    // `init` is the owner's opt-in to scripting.
    let mut config = PeerConfig::default();
    config.lua.enabled = true;
    let mut json = serde_json::to_string_pretty(&config)
        .map_err(|e| InitError::Write { path: config_file.clone(), source: std::io::Error::other(e) })?;
    json.push('\n');

    let mut written = Vec::new();
    for (rel, content) in std::iter::once((config::FILE, json.as_str())).chain(STARTER.iter().copied()) {
        let path = dir.join(rel);
        if path.exists() {
            continue; // keep whatever the owner already has
        }
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, content)
        };
        write().map_err(|source| InitError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    let key = dir.join(crate::identity::FILE);
    if !key.exists() {
        crate::identity::load_or_create(dir)
            .map_err(|e| InitError::Write { path: key.clone(), source: std::io::Error::other(e) })?;
        written.push(key);
    }
    Ok(written)
}
