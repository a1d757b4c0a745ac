//! `goop init`: creates a peer folder with a config, an identity and a site from a template.

use std::path::{Path, PathBuf};

use crate::config::{self, PeerConfig};
use crate::templates::{self, Existing, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; refusing to overwrite a peer folder")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Creates the peer folder `dir` with the site of `template` and returns the files written.
/// Never overwrites a file.
pub fn init(dir: &Path, template: &str) -> Result<Vec<PathBuf>, InitError> {
    let template = templates::find(template)?;
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

    std::fs::create_dir_all(dir).map_err(|source| InitError::Write { path: dir.to_path_buf(), source })?;
    std::fs::write(&config_file, json).map_err(|source| InitError::Write { path: config_file.clone(), source })?;
    let mut written = vec![config_file];
    written.extend(template.write(dir, Existing::Keep)?.written);
    let key = dir.join(crate::identity::FILE);
    if !key.exists() {
        crate::identity::load_or_create(dir)
            .map_err(|e| InitError::Write { path: key.clone(), source: std::io::Error::other(e) })?;
        written.push(key);
    }
    Ok(written)
}
