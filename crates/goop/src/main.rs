//! The `goop` command line: a thin layer over the `goop` library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use goop::local::{LocalPeer, Outcome};

#[derive(Parser)]
#[command(name = "goop", version, about = "A programmable peer for the peer-to-peer web")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Who a local invocation runs as.
#[derive(clap::Args)]
struct Caller {
    /// Peer ID of the caller (default: this peer's own ID).
    #[arg(long = "as", value_name = "PEER_ID")]
    as_peer: Option<String>,
    /// Display label of the caller.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a peer folder with a starter site and scripts.
    Init { dir: PathBuf },
    /// Call a data function and print the data protocol's JSON answer.
    Call {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        caller: Caller,
        function: String,
        /// Request params as JSON (default {}).
        params: Option<String>,
    },
    /// Send a chat message to this peer's scripts and print the reply.
    Cmd {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        caller: Caller,
        message: String,
    },
    /// List the data functions (the `lua-list` answer).
    List {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Load every script and report which ones fail.
    Check {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(outcome) => {
            print!("{}", outcome.stdout);
            if outcome.success {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("goop: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    Ok(match cli.command {
        Command::Init { dir } => {
            let written = goop::init::init(&dir)?;
            let mut stdout = String::new();
            for path in written {
                stdout.push_str(&format!("created {}\n", path.display()));
            }
            stdout.push_str(&format!("next: goop cmd --dir {} '!help'\n", dir.display()));
            Outcome { stdout, success: true }
        }
        Command::Call { dir, caller, function, params } => {
            let params = match params {
                Some(text) => serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("invalid PARAMS_JSON: {e}"))?,
                None => serde_json::json!({}),
            };
            let peer = LocalPeer::open(&dir)?;
            peer.call(&peer.caller(caller.as_peer, caller.label), &function, &params)
        }
        Command::Cmd { dir, caller, message } => {
            let peer = LocalPeer::open(&dir)?;
            peer.cmd(&peer.caller(caller.as_peer, caller.label), &message)
        }
        Command::List { dir } => LocalPeer::open(&dir)?.list(),
        Command::Check { dir } => LocalPeer::open(&dir)?.check(&dir),
    })
}
