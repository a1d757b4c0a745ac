//! One running peer per folder: `goop run` holds `DIR/run.lock` and answers its owner's local
//! commands on a private Unix socket, so `goop call`, `cmd`, `data` and `list` get the running
//! peer's answers (its scripts as loaded, its rate limits) instead of opening a second copy.
//!
//! The lock is an OS file lock: it goes with the process, however the process ends. The file
//! says who holds it (`{"pid":…,"viewer":…,"control":…}`) and is emptied when the peer stops.
//! The socket lives in a fresh directory only this user can enter (mode 0700), named in the lock
//! file, so no other user of the machine can act as the owner.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::local::{Command, LocalPeer, Outcome};

/// The lock file in a peer folder.
pub const LOCK_FILE: &str = "run.lock";
/// How the name of the socket's directory in the temp folder starts.
const SOCKET_HOME_PREFIX: &str = "goop-control-";
/// The socket's name in that directory.
const SOCKET_NAME: &str = "control.sock";
/// Largest command a running peer reads from the socket (a shell argument is at most 128 KB).
const MAX_COMMAND: u64 = 1024 * 1024;
/// Largest answer the CLI reads back (a data answer is at most 2 MB).
const MAX_ANSWER: u64 = 16 * 1024 * 1024;
/// Commands a running peer answers at once; more wait for a turn.
const CONCURRENT_COMMANDS: usize = 8;
/// How long the CLI waits for a peer that holds the lock but has not said where it listens.
const STARTING_WAIT: Duration = Duration::from_secs(15);
/// How long the CLI waits for an answer (a script runs at most 60 s, plus its turn).
const ANSWER_WAIT: Duration = Duration::from_secs(150);

/// What the lock file says about the running peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub pid: u32,
    /// `http://localhost:PORT/`, when the viewer is on.
    pub viewer: Option<String>,
    /// The socket that answers local commands.
    pub control: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{dir} is already served by goop run (pid {pid}, viewer {viewer}); stop that one first")]
    AlreadyRunning { dir: PathBuf, pid: String, viewer: String },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("the peer running in {dir} is still starting; try again in a moment")]
    Starting { dir: PathBuf },
    #[error("the peer running in {dir} did not answer on {socket}: {source}")]
    NoAnswer { dir: PathBuf, socket: PathBuf, source: std::io::Error },
    /// The running peer could not carry the command out (exit status 2).
    #[error("{0}")]
    Refused(String),
}

/// The answer to one command over the socket.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Done(Outcome),
    Refused(String),
}

/// `goop run`'s hold on its folder; released when dropped (or when the process dies).
pub struct RunLock {
    file: File,
    dir: PathBuf,
}

impl RunLock {
    /// Takes `dir` for this process, or says which process has it.
    pub fn acquire(dir: &Path) -> Result<RunLock, ControlError> {
        let path = dir.join(LOCK_FILE);
        let lock_error = |source| ControlError::Lock { path: path.clone(), source };
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(lock_error)?;
        match file.try_lock() {
            Ok(()) => {
                if let Some(stale) = read_running(&file) {
                    remove_stale_socket(&stale.control);
                }
                Ok(RunLock { file, dir: dir.to_path_buf() })
            }
            Err(TryLockError::WouldBlock) => {
                let running = read_running(&file);
                Err(ControlError::AlreadyRunning {
                    dir: dir.to_path_buf(),
                    pid: running.as_ref().map_or_else(|| "unknown, starting".into(), |r| r.pid.to_string()),
                    viewer: running.and_then(|r| r.viewer).unwrap_or_else(|| "off".into()),
                })
            }
            Err(TryLockError::Error(source)) => Err(lock_error(source)),
        }
    }

    /// Writes where this run can be reached into the lock file.
    pub fn publish(&mut self, running: &Running) -> std::io::Result<()> {
        let text = serde_json::to_vec(running).map_err(std::io::Error::other)?;
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(&text)?;
        self.file.sync_data()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Err(e) = self.file.set_len(0) {
            tracing::warn!("cannot clear {}: {e}", self.dir.join(LOCK_FILE).display());
        }
    }
}

/// A peer killed outright leaves its socket's directory behind; the next run of the folder
/// removes it (only a directory this module made, in the temp folder).
fn remove_stale_socket(socket: &Path) {
    let Some(home) = socket.parent() else { return };
    let ours = home.parent() == Some(std::env::temp_dir().as_path())
        && home.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(SOCKET_HOME_PREFIX));
    if ours && socket.file_name() == Some(std::ffi::OsStr::new(SOCKET_NAME)) {
        let _ = std::fs::remove_file(socket);
        let _ = std::fs::remove_dir(home);
    }
}

fn read_running(mut file: &File) -> Option<Running> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The peer running in `dir`, if one holds its lock. Waits a little for one that is starting.
pub fn running(dir: &Path) -> Result<Option<Running>, ControlError> {
    let path = dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ControlError::Lock { path, source }),
    };
    let started = Instant::now();
    loop {
        match file.try_lock_shared() {
            Ok(()) => return Ok(None), // nobody runs here; the lock goes with `file`
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => return Err(ControlError::Lock { path, source }),
        }
        if let Some(running) = read_running(&file) {
            return Ok(Some(running));
        }
        if started.elapsed() > STARTING_WAIT {
            return Err(ControlError::Starting { dir: dir.to_path_buf() });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Answers `command` for the owner of `dir`: through its running peer if there is one, else
/// with the folder opened for this command alone.
pub fn answer(dir: &Path, command: &Command) -> anyhow::Result<Outcome> {
    crate::config::PeerConfig::load(dir)?;
    match running(dir)? {
        Some(running) => Ok(ask(dir, &running, command)?),
        None => Ok(LocalPeer::open(dir)?.answer(command)?),
    }
}

#[cfg(unix)]
fn ask(dir: &Path, running: &Running, command: &Command) -> Result<Outcome, ControlError> {
    use std::os::unix::net::UnixStream;
    let no_answer = |source| ControlError::NoAnswer { dir: dir.to_path_buf(), socket: running.control.clone(), source };
    let mut stream = UnixStream::connect(&running.control).map_err(no_answer)?;
    stream.set_read_timeout(Some(ANSWER_WAIT)).map_err(no_answer)?;
    let request = serde_json::to_vec(command).map_err(|e| no_answer(std::io::Error::other(e)))?;
    stream.write_all(&request).and_then(|()| stream.shutdown(std::net::Shutdown::Write)).map_err(no_answer)?;
    let mut answer = Vec::new();
    (&mut stream).take(MAX_ANSWER).read_to_end(&mut answer).map_err(no_answer)?;
    match serde_json::from_slice(&answer) {
        Ok(Reply::Done(outcome)) => Ok(outcome),
        Ok(Reply::Refused(message)) => Err(ControlError::Refused(message)),
        Err(e) => Err(no_answer(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
    }
}

#[cfg(not(unix))]
fn ask(dir: &Path, _running: &Running, _command: &Command) -> Result<Outcome, ControlError> {
    Err(ControlError::Refused(format!("{} is served by a running goop; use its viewer", dir.display())))
}

/// The running peer's side: a socket answering the owner's commands with `peer`.
pub struct Control {
    pub socket: PathBuf,
    _home: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(unix)]
impl Control {
    /// Listens on a new private socket; commands run on blocking threads, a few at once.
    pub fn serve(peer: Arc<LocalPeer>) -> std::io::Result<Control> {
        use std::os::unix::fs::PermissionsExt;
        // Made with mode 0700 from the start: only this user may connect.
        let private = std::fs::Permissions::from_mode(0o700);
        let home = tempfile::Builder::new().prefix(SOCKET_HOME_PREFIX).permissions(private).tempdir()?;
        let socket = home.path().join(SOCKET_NAME);
        let listener = tokio::net::UnixListener::bind(&socket)?;
        let turns = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_COMMANDS));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors, most likely: give the peer a moment.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let (peer, turns) = (peer.clone(), turns.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer_one(stream, peer, turns).await {
                        tracing::debug!("local command: {e}");
                    }
                });
            }
        });
        Ok(Control { socket, _home: home, task })
    }
}

#[cfg(not(unix))]
impl Control {
    pub fn serve(_peer: Arc<LocalPeer>) -> std::io::Result<Control> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[cfg(unix)]
async fn answer_one(
    mut stream: tokio::net::UnixStream,
    peer: Arc<LocalPeer>,
    turns: Arc<tokio::sync::Semaphore>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::new();
    let mut limited = (&mut stream).take(MAX_COMMAND + 1);
    tokio::time::timeout(Duration::from_secs(10), limited.read_to_end(&mut request))
        .await
        .map_err(std::io::Error::other)??;
    let reply = if request.len() as u64 > MAX_COMMAND {
        Reply::Refused(format!("command larger than {MAX_COMMAND} bytes"))
    } else {
        match serde_json::from_slice::<Command>(&request) {
            Err(e) => Reply::Refused(format!("malformed local command: {e}")),
            Ok(command) => {
                let _turn = turns.acquire_owned().await.map_err(std::io::Error::other)?;
                match tokio::task::spawn_blocking(move || peer.answer(&command)).await {
                    Ok(Ok(outcome)) => Reply::Done(outcome),
                    Ok(Err(e)) => Reply::Refused(e.to_string()),
                    Err(_) => Reply::Refused("the command failed inside the peer".into()),
                }
            }
        }
    };
    stream.write_all(&serde_json::to_vec(&reply).map_err(std::io::Error::other)?).await?;
    stream.shutdown().await
}
