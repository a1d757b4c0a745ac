//! The peer's identity: an ed25519 key in the peer folder, readable only by its owner.

use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;
use libp2p::PeerId;

/// The key file's name inside a peer folder.
pub const FILE: &str = "identity.key";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{0}: not a valid goop identity key")]
    Invalid(PathBuf),
    #[error(
        "{0} is missing: it is this peer's identity. Restore it from a backup; a new key would be a \
         new peer ID that visitors do not know (to start a new peer on purpose: goop init NEWDIR)"
    )]
    Missing(PathBuf),
}

/// Loads `dir/identity.key`; a missing key is an error, never replaced behind the owner's back.
pub fn load(dir: &Path) -> Result<Keypair, IdentityError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|_| IdentityError::Invalid(path.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(IdentityError::Missing(path)),
        Err(e) => Err(IdentityError::Io { path, message: e.to_string() }),
    }
}

/// Loads `dir/identity.key`, creating it (mode 0600) when it does not exist.
pub fn load_or_create(dir: &Path) -> Result<Keypair, IdentityError> {
    let path = dir.join(FILE);
    let io = |e: std::io::Error| IdentityError::Io { path: path.clone(), message: e.to_string() };
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|_| IdentityError::Invalid(path.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| IdentityError::Io { path: path.clone(), message: e.to_string() })?;
            std::fs::create_dir_all(dir).map_err(io)?;
            write_private(&path, &bytes).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// The peer ID of `dir`'s identity.
pub fn peer_id(dir: &Path) -> Result<PeerId, IdentityError> {
    Ok(load(dir)?.public().to_peer_id())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: never clobber a key another process just wrote.
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(peer_id(dir.path()), Err(IdentityError::Missing(_))), "never made behind the owner's back");
        let a = load_or_create(dir.path()).unwrap().public().to_peer_id();
        let b = peer_id(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn garbage_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"not a key").unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(IdentityError::Invalid(_))));
    }
}
