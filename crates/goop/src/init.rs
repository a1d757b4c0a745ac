//! `goop init`: creates a peer folder with a config, an identity and a site from a template.

use std::path::{Path, PathBuf};

use crate::config::{self, PeerConfig};
use crate::templates::{self, Existing, Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; refusing to overwrite a peer folder")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// What `goop init` did, and what to try next.
#[derive(Debug)]
pub struct Initialized {
    /// Files created.
    pub written: Vec<PathBuf>,
    /// An existing `.gitignore` that got the peer's private files added.
    pub gitignore_extended: Option<PathBuf>,
    /// A command line or two to try first, fit for the template.
    pub next: String,
}

/// Creates the peer folder `dir` with the site of `template`. Never overwrites a file.
pub fn init(dir: &Path, template: &str) -> Result<Initialized, InitError> {
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
    let gitignore = dir.join(".gitignore");
    let gitignore_extended = if gitignore.exists() {
        keep_private_files_out_of_git(&gitignore, &config.lua.script_dir)?.then_some(gitignore)
    } else {
        keep_private_files_out_of_git(&gitignore, &config.lua.script_dir)?;
        written.push(gitignore);
        None
    };
    let key = dir.join(crate::identity::FILE);
    if !key.exists() {
        crate::identity::load_or_create(dir)
            .map_err(|e| InitError::Write { path: key.clone(), source: std::io::Error::other(e) })?;
        written.push(key);
    }
    Ok(Initialized { written, gitignore_extended, next: next_step(dir, &template) })
}

/// Adds the peer's private files to the `.gitignore` at `path` (creating it): its key, its
/// database, its scripts' state and its run lock. Returns whether anything was added.
fn keep_private_files_out_of_git(path: &Path, script_dir: &str) -> Result<bool, InitError> {
    let private = [
        crate::identity::FILE.to_string(),
        crate::store::DB_FILE.to_string(),
        format!("{}-*", crate::store::DB_FILE),
        format!("{script_dir}/.state/"),
        crate::control::LOCK_FILE.to_string(),
    ];
    let mut text = std::fs::read_to_string(path).unwrap_or_default();
    let missing: Vec<&String> = private.iter().filter(|p| !text.lines().any(|l| l.trim() == p.as_str())).collect();
    if missing.is_empty() {
        return Ok(false);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "# goop: this peer's private key (a new key is a new peer ID), its database, its scripts' state, its run lock\n",
    );
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|source| InitError::Write { path: path.to_path_buf(), source })?;
    Ok(true)
}

/// The first thing to try with a new peer: a chat command when the template ships one (`!help`
/// when it has it), and running the peer to open its site in the viewer.
fn next_step(dir: &Path, template: &Template) -> String {
    let dir = dir.display();
    let run = format!("goop run --dir {dir}   (then open the viewer URL it prints)");
    let commands = template.commands();
    let command = commands.iter().find(|c| *c == "help").or(commands.first());
    match command {
        Some(name) => format!("next: goop cmd --dir {dir} '!{name}'   or   {run}\n"),
        None => format!("next: {run}\n"),
    }
}
