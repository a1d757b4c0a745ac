//! Reading `site/schemas/`: whether it changed (a cheap stamp, looked at before every request),
//! and its tables, within bounds.
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
/// How long the folder must have been unchanged before its listing is reused.
const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// What the folder looked like: the folder's own `lstat`, and each schema file's name, kind,
/// size, modification time and inode. Equal stamps: nothing to reload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp {
    folder: Option<Seen>,
    files: Vec<(String, Seen)>,
    /// More entries than [`MAX_ENTRIES`]: listed no further.
    crowded: bool,
}

impl Stamp {
    /// A stamp no look at the folder gives (no folder, yet too many entries): the folder is
    /// applied again at the next look.
    pub fn unknown() -> Stamp {
        Stamp { folder: None, files: Vec::new(), crowded: true }
    }
}

/// One `lstat`'s worth: kind (file, folder, link), size, modification time, inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen(u8, u64, Option<SystemTime>, u64);

impl Seen {
    fn of(meta: &Metadata) -> Seen {
        let kind = match meta.file_type() {
            t if t.is_symlink() => 2,
            t if t.is_dir() => 1,
            _ => 0,
        };
        Seen(kind, meta.len(), meta.modified().ok(), meta.ino())
    }
}

/// Looks at the folder cheaply enough to do before every request and `goop.db` statement: the
/// folder's `lstat`, and one per schema file (at most [`MAX_FILES`] + 1). The listing itself
/// is read again only when the folder changed (a file added, removed or renamed changes its
/// modification time), at most [`MAX_ENTRIES`] + 1 entries.
#[derive(Debug, Default)]
pub struct Watch {
    last: Stamp,
}

impl Watch {
    pub fn stamp(&mut self, peer_dir: &Path) -> Stamp {
        let dir = peer_dir.join(DIR);
        let folder = std::fs::symlink_metadata(&dir).ok().map(|m| Seen::of(&m));
        // Timestamps tick coarsely: a folder changed in the last second may change again with
        // the same modification time, so it is listed every time until it has been quiet.
        let quiet = folder.and_then(|Seen(_, _, modified, _)| modified?.elapsed().ok()).is_some_and(|age| age > QUIET);
        let (names, crowded) = if quiet && folder == self.last.folder {
            (self.last.files.iter().map(|(name, _)| name.clone()).collect(), self.last.crowded)
        } else {
            list(&dir)
        };
        let files = names
            .into_iter()
            .map(|name| {
                let seen = std::fs::symlink_metadata(dir.join(&name)).ok().map(|m| Seen::of(&m));
                (name, seen.unwrap_or(Seen(3, 0, None, 0)))
            })
            .collect();
        self.last = Stamp { folder, files, crowded };
        self.last.clone()
    }
}

/// The schema file names in `dir` (at most [`MAX_FILES`] + 1), and whether it holds more than
/// [`MAX_ENTRIES`] entries.
fn list(dir: &Path) -> (Vec<String>, bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (Vec::new(), false) };
    let mut names = Vec::new();
    for (count, entry) in entries.flatten().enumerate() {
        if count >= MAX_ENTRIES {
            return (names, true);
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_schema_name(&name) && names.len() <= MAX_FILES {
            names.push(name);
        }
    }
    names.sort();
    (names, false)
}

/// A name that counts as a schema file: `*.json`, not a dotfile.
fn is_schema_name(name: &str) -> bool {
    !name.starts_with('.') && name.ends_with(".json")
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
        if !is_schema_name(&name) {
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
