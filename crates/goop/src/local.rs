//! The local commands `call`, `cmd`, `list` and `check`: the engine run once against a folder.

use std::path::Path;

use goop_script::{ChatReply, Engine, Peer};
use serde_json::Value;

use crate::answer::Answer;
use crate::config::{ConfigError, PeerConfig};

/// Why a local command could not run at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("lua scripting is disabled in {0} (set lua.enabled to true)")]
    Disabled(String),
    #[error(transparent)]
    Engine(#[from] goop_script::Error),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error("cannot open the peer's database: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What a command prints and how it exits.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub success: bool,
}

/// A peer folder opened for one command.
pub struct LocalPeer {
    pub config: PeerConfig,
    /// This peer's ID, from its identity key.
    pub id: String,
    pub engine: Engine,
}

impl LocalPeer {
    /// Loads `dir`'s config, database and scripts, with the same `goop.*` modules `goop run`
    /// gives them; refuses when scripting is off.
    pub fn open(dir: &Path) -> Result<LocalPeer, SetupError> {
        let mut config = PeerConfig::load(dir)?;
        if !config.lua.enabled {
            return Err(SetupError::Disabled(dir.join(crate::config::FILE).display().to_string()));
        }
        config.lua.hot_reload = false; // the command exits right after one call
        let id = crate::identity::peer_id(dir)?.to_string();
        let store = crate::store::Store::open(dir, &id)?;
        let engine = crate::run::engine(dir, &config, Peer::new(id.clone(), config.profile.label.clone()), &store)?;
        Ok(LocalPeer { config, id, engine })
    }

    /// The caller: `--as`/`--label`, or the peer itself.
    pub fn caller(&self, id: Option<String>, label: Option<String>) -> Peer {
        match id {
            Some(id) => Peer::new(id, label.unwrap_or_default()),
            None => Peer::new(self.id.clone(), label.unwrap_or_else(|| self.config.profile.label.clone())),
        }
    }

    pub fn call(&self, caller: &Peer, function: &str, params: &Value) -> Outcome {
        let answer = Answer::from_call(self.engine.call(caller, function, params));
        Outcome { success: answer.ok, stdout: answer.to_line() + "\n" }
    }

    pub fn cmd(&self, caller: &Peer, message: &str) -> Outcome {
        let stdout = match self.engine.handle_chat(caller, message) {
            ChatReply::Text(text) => text + "\n",
            ChatReply::Silent | ChatReply::NotACommand => String::new(),
        };
        Outcome { stdout, success: true }
    }

    pub fn list(&self) -> Outcome {
        Outcome { stdout: Answer::functions(self.engine.functions()).to_line() + "\n", success: true }
    }

    /// `ok NAME` or `error NAME: file:line: message` per script file, paths relative to `dir`.
    pub fn check(&self, dir: &Path) -> Outcome {
        let mut stdout = String::new();
        let mut success = true;
        for script in self.engine.scripts() {
            match &script.error {
                None => stdout.push_str(&format!("ok {}\n", script.name)),
                Some(e) => {
                    success = false;
                    let file = e.file.strip_prefix(dir).unwrap_or(&e.file).display().to_string();
                    let line = e.line.map(|l| format!(":{l}")).unwrap_or_default();
                    stdout.push_str(&format!("error {}: {file}{line}: {}\n", script.name, e.message));
                }
            }
        }
        Outcome { stdout, success }
    }
}
