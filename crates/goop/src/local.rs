//! The local commands `call`, `cmd`, `data`, `list` and `check`: what the folder's owner asks of
//! its own peer, answered by the running peer when there is one (`control.rs`), else by the
//! folder's engine and store opened for this one command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use goop_script::{ChatReply, Engine, Error, LoadError, Peer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answer::Answer;
use crate::config::{ConfigError, PeerConfig};
use crate::node::services::Services;

/// Why a local command could not run at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("lua scripting is disabled in {0} (set lua.enabled to true)")]
    Disabled(String),
    #[error(
        "{0:?} is not a command: a command is ! and a script's name, as in '!NAME ARGS' (goop check lists the scripts)"
    )]
    NotACommand(String),
    #[error(transparent)]
    Engine(#[from] goop_script::Error),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error("cannot open the peer's database: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What a command prints and how it exits.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub stdout: String,
    pub success: bool,
}

/// Who a local invocation runs as: `--as`/`--label`, else the peer itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Caller {
    pub id: Option<String>,
    pub label: Option<String>,
}

/// A command the owner asks of the peer in a folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// A data function's answer (`goop call`).
    Call { caller: Caller, function: String, params: Value },
    /// A chat message's reply (`goop cmd`).
    Cmd { caller: Caller, message: String },
    /// Any data-protocol request, as the owner (`goop data`).
    Data { request: Value },
    /// The `lua-list` answer (`goop list`).
    List,
}

/// A peer folder's serving parts, opened for local commands.
pub struct LocalPeer {
    dir: PathBuf,
    /// The peer itself, as a caller.
    owner: Peer,
    services: Arc<Services>,
}

impl LocalPeer {
    /// Loads `dir`'s config, database and scripts, with the same `goop.*` modules `goop run`
    /// gives them.
    pub fn open(dir: &Path) -> Result<LocalPeer, SetupError> {
        let mut config = PeerConfig::load(dir)?;
        config.lua.hot_reload = false; // the command exits right after one call
        let id = crate::identity::peer_id(dir)?.to_string();
        let owner = Peer::new(id, config.profile.label.clone());
        let store = crate::store::Store::open(dir, &owner.id)?;
        let groups = crate::group::Groups::new();
        let engine = if config.lua.enabled {
            Some(crate::run::engine(dir, &config, owner.clone(), &store, &groups)?)
        } else {
            None
        };
        let services = crate::run::services_with(dir, &config, engine, store, groups);
        Ok(LocalPeer::new(dir, owner, Arc::new(services)))
    }

    /// The running peer's own parts, answering its owner's commands.
    pub fn new(dir: &Path, owner: Peer, services: Arc<Services>) -> LocalPeer {
        LocalPeer { dir: dir.to_path_buf(), owner, services }
    }

    /// Carries out `command`. Err when scripting is disabled and the command needs it.
    pub fn answer(&self, command: &Command) -> Result<Outcome, SetupError> {
        Ok(match command {
            Command::Call { caller, function, params } => {
                let answer = match self.engine()?.call(&self.caller(caller), function, params) {
                    Err(Error::FunctionUnavailable { name, load_error }) => {
                        Answer::error(format!("function {name} failed to load: {}", self.located(&load_error)))
                    }
                    outcome => Answer::from_call(outcome),
                };
                Outcome { success: answer.ok, stdout: answer.to_line() + "\n" }
            }
            Command::Cmd { caller, message } => {
                let not_a_command = || SetupError::NotACommand(message.trim().to_string());
                if goop_script::parse_command(message).is_none() {
                    return Err(not_a_command());
                }
                match self.engine()?.handle_chat(&self.caller(caller), message) {
                    ChatReply::Text(text) => Outcome { stdout: text + "\n", success: true },
                    ChatReply::Silent => Outcome { stdout: String::new(), success: true },
                    ChatReply::NotACommand => return Err(not_a_command()),
                    ChatReply::Failed { error: Error::CommandUnavailable { name, load_error }, .. } => Outcome {
                        stdout: format!("!{name} failed to load: {}\n", self.located(&load_error)),
                        success: false,
                    },
                    ChatReply::Failed { reply, .. } => Outcome { stdout: reply + "\n", success: false },
                }
            }
            Command::Data { request } => {
                let bytes = serde_json::to_vec(request).unwrap_or_default();
                let answer: Value = serde_json::from_slice(&self.services.data(&self.owner, &bytes))
                    .unwrap_or_else(|e| serde_json::json!({ "ok": false, "error": e.to_string() }));
                let success = answer.get("ok") == Some(&Value::Bool(true));
                Outcome { stdout: format!("{answer}\n"), success }
            }
            Command::List => {
                Outcome { stdout: Answer::functions(self.engine()?.functions()).to_line() + "\n", success: true }
            }
        })
    }

    /// `error schema: site/schema.sql:LINE: message` if the schema is not applied, then `ok NAME`
    /// or `error NAME: file:line: message` per script file, paths relative to the folder.
    pub fn check(&self) -> Result<Outcome, SetupError> {
        let mut stdout = String::new();
        let schema_error = self.services.store.schema_error();
        let mut success = schema_error.is_none();
        // One line per fault: schema.sql's, the schema files', schema.json's ignored fields.
        for line in schema_error.iter().flat_map(|e| e.to_string().lines().map(String::from).collect::<Vec<_>>()) {
            stdout.push_str(&format!("error schema: {line}\n"));
        }
        for script in self.engine()?.scripts() {
            match &script.error {
                None => stdout.push_str(&format!("ok {}\n", script.name)),
                Some(e) => {
                    success = false;
                    stdout.push_str(&format!("error {}: {}\n", script.name, self.located(e)));
                }
            }
        }
        Ok(Outcome { stdout, success })
    }

    /// `file:line: message`, the file relative to the peer folder: for the owner's eyes only.
    fn located(&self, e: &LoadError) -> String {
        let file = e.file.strip_prefix(&self.dir).unwrap_or(&e.file).display().to_string();
        let line = e.line.map(|l| format!(":{l}")).unwrap_or_default();
        format!("{file}{line}: {}", e.message)
    }

    fn engine(&self) -> Result<&Engine, SetupError> {
        self.services
            .engine
            .as_deref()
            .ok_or_else(|| SetupError::Disabled(self.dir.join(crate::config::FILE).display().to_string()))
    }

    fn caller(&self, caller: &Caller) -> Peer {
        match &caller.id {
            Some(id) => Peer::new(id.clone(), caller.label.clone().unwrap_or_default()),
            None => Peer::new(self.owner.id.clone(), caller.label.clone().unwrap_or_else(|| self.owner.label.clone())),
        }
    }
}
