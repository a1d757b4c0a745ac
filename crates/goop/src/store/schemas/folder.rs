//! Reading `site/schemas/`: which schema files there are (a cheap stamp, looked at before every
//! request), and their tables, within bounds.
//!
//! Only regular `*.json` files directly in the folder count (dotfiles, other files and
//! subfolders are ignored). A symbolic link — the folder itself or a file in it — is an error,
//! never followed, so a schema cannot be read from outside `site/`.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use super::format::{self, TableSchema};
use crate::store::error::SchemaError;

/// The folder, in the peer folder.
pub const DIR: &str = "site/schemas";
/// Most schema files (`*.json`) in the folder.
pub const MAX_FILES: usize = 64;
/// Most entries of any kind the folder may hold: its listing is read before every request.
pub const MAX_ENTRIES: usize = 256;
/// Largest schema file.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What the folder looked like: each entry's name, kind, size, modification time and inode.
/// Equal stamps: nothing to reload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp(Vec<(String, bool, u64, Option<SystemTime>, u64)>);

/// Looks at the folder: one listing and an `lstat` per entry, at most [`MAX_ENTRIES`] + 1.
pub fn stamp(peer_dir: &Path) -> Stamp {
    let dir = peer_dir.join(DIR);
    let mut seen = Vec::new();
    if let Ok(meta) = std::fs::symlink_metadata(&dir) {
        seen.push((String::new(), meta.is_dir(), meta.len(), meta.modified().ok(), meta.ino()));
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.take(MAX_ENTRIES + 1).flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match entry.metadata() {
                Ok(m) => seen.push((name, m.is_file(), m.len(), m.modified().ok(), m.ino())),
                Err(_) => seen.push((name, false, 0, None, 0)),
            }
        }
    }
    seen.sort();
    Stamp(seen)
}

/// The tables of every schema file, in file-name order, each with its file's path (relative to
/// the peer folder). No folder: none. Any fault is an error naming the file (and the field).
pub fn load(peer_dir: &Path) -> Result<Vec<(String, TableSchema)>, SchemaError> {
    let dir = peer_dir.join(DIR);
    let folder_error = |message: String| SchemaError::Table { file: format!("{DIR}/"), message };
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(folder_error("is a symbolic link; the schema folder must be a real folder".into()))
        }
        Ok(meta) if !meta.is_dir() => return Err(folder_error("is not a folder".into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(folder_error(format!("cannot read it: {e}"))),
    }
    let entries = std::fs::read_dir(&dir).map_err(|e| folder_error(format!("cannot read it: {e}")))?;
    let mut names = Vec::new();
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(folder_error(format!("holds more than {MAX_ENTRIES} entries")));
        }
        let entry = entry.map_err(|e| folder_error(format!("cannot read it: {e}")))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let meta = entry.metadata().map_err(|e| folder_error(format!("cannot read {name}: {e}")))?;
        if meta.is_dir() {
            continue;
        }
        names.push((name, meta));
    }
    if names.len() > MAX_FILES {
        return Err(folder_error(format!("holds {} schema files; at most {MAX_FILES}", names.len())));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tables: Vec<(String, TableSchema)> = Vec::with_capacity(names.len());
    for (name, meta) in names {
        let file = format!("{DIR}/{name}");
        let text =
            read(&dir.join(&name), &meta).map_err(|message| SchemaError::Table { file: file.clone(), message })?;
        let table = format::parse(&text).map_err(|message| SchemaError::Table { file: file.clone(), message })?;
        if let Some((other, _)) = tables.iter().find(|(_, t)| t.name.eq_ignore_ascii_case(&table.name)) {
            let message = format!("name: table {} is also defined by {other}; a table is defined once", table.name);
            return Err(SchemaError::Table { file, message });
        }
        tables.push((file, table));
    }
    Ok(tables)
}

/// A schema file's text: a regular file (not a link, checked on the file actually opened), at
/// most [`MAX_FILE_BYTES`], UTF-8.
fn read(path: &Path, listed: &Metadata) -> Result<String, String> {
    if listed.file_type().is_symlink() {
        return Err("is a symbolic link; schema files must be regular files in the folder".into());
    }
    if !listed.is_file() {
        return Err("is not a regular file".into());
    }
    if listed.len() > MAX_FILE_BYTES {
        return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
    }
    let file = File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let opened = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    // Replaced by a link (or another file) since it was listed: not what was checked.
    if (opened.dev(), opened.ino()) != (listed.dev(), listed.ino()) {
        return Err("changed while being read; it is read again at the next request".into());
    }
    let mut text = String::new();
    let mut limited = file.take(MAX_FILE_BYTES + 1);
    limited.read_to_string(&mut text).map_err(|e| format!("cannot read it: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("is larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(text)
}
