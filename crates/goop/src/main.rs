//! The `goop` command line: a thin layer over the `goop` library.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use goop::local::{self, LocalPeer, Outcome};
use goop::remote::Session;

#[derive(Parser)]
#[command(name = "goop", version, about = "A programmable peer for the peer-to-peer web")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum TemplatesAction {
    /// Install a template into a peer folder: its files replace same-named ones (yours are
    /// kept under DIR/backups/), its tables' policies go into site/schema.json, its schema is
    /// applied now.
    Apply {
        /// The template to install (see `goop templates`).
        name: String,
        /// Peer folder to install it into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

/// Who a local invocation runs as.
#[derive(clap::Args)]
struct Caller {
    /// Peer ID of the caller (default: this peer's own ID).
    #[arg(long = "as", value_name = "PEER_ID", conflicts_with = "peer")]
    as_peer: Option<String>,
    /// Display label of the caller.
    #[arg(long, value_name = "TEXT", conflicts_with = "peer")]
    label: Option<String>,
}

impl From<Caller> for local::Caller {
    fn from(c: Caller) -> Self {
        local::Caller { id: c.as_peer, label: c.label }
    }
}

/// How `goop data` requests look, shown by `goop data --help`.
const DATA_REQUESTS: &str = r#"Requests (one JSON object; unknown fields are refused):
  {"op":"tables"}                                  the tables
  {"op":"describe","table":"games"}                a table's columns
  {"op":"query","table":"games","limit":5}         rows (limit: 100 unless given); also
      "columns":["_id","board"], "where":"status = ?", "args":["playing"], "order":"_id desc", "offset":10
  {"op":"insert","table":"games","data":{"board":"---------"}}
  {"op":"update","table":"games","data":{"status":"draw"},"where":"_id = ?","args":[3]}
  {"op":"delete","table":"games","where":"_id = ?","args":[3]}
  goop2's: {"op":"update","table":"games","id":3,"data":{…}}, {"op":"delete","table":"games","id":3},
      "query-one", "exists", "count" (where/args), "pluck"/"distinct" ("key_col":"board"),
      "aggregate" ("expr":"status, count(*) AS n","group_by":"status"), "update-where",
      "delete-where", "upsert" ("key_col":"slug","data":{…}), "orm-schema", "role" (table);
      "fields" is "columns"' other name
  {"op":"lua-call","function":"hello","params":{"name":"Bo"}}    as goop call
  {"op":"lua-list"}                                as goop list

update and delete need a "where" ("1" for every row) or an "id". The columns _id, _owner,
_created_at and _updated_at are written by the peer, never by a request (an _owner in an
insert's data is ignored). Without --peer you ask as the folder's
owner, whom site/schema.json's policies do not restrict; with --peer they apply to you.

Examples:
  goop data --dir mypeer '{"op":"query","table":"games","limit":5}'
  goop data --peer ADDR '{"op":"insert","table":"notes","data":{"text":"hi"}}'"#;

#[derive(Subcommand)]
enum Command {
    /// Create a peer folder with a site from a template (see `goop templates`).
    Init {
        /// The folder to create (or an empty one to fill); refused if it has a goop.json.
        dir: PathBuf,
        /// The site to start from: starter, tictactoe or quiz (`goop templates` lists them).
        #[arg(long, default_value = goop::templates::DEFAULT, value_name = "NAME")]
        template: String,
    },
    /// List the site templates, or install one into a peer folder.
    Templates {
        #[command(subcommand)]
        action: Option<TemplatesAction>,
    },
    /// Print this peer's ID.
    Id {
        /// Peer folder (made by `goop init`).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run the peer: serve its scripts, data and site to other peers until Ctrl-C.
    Run {
        /// Peer folder (made by `goop init`).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Address to listen on (repeatable; default /ip4/0.0.0.0/tcp/4001).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<String>,
        /// Peer to dial at start, by address or by peer ID once a helper has found it
        /// (repeatable).
        #[arg(long, value_name = "MULTIADDR|PEER_ID")]
        connect: Vec<String>,
        /// Helper node (`goop relay`) to be reached through and find peers at, as
        /// MULTIADDR/p2p/ID (repeatable; added to p2p.relays).
        #[arg(long, value_name = "MULTIADDR")]
        relay: Vec<String>,
        /// Serve the web viewer on this IP:PORT (default viewer.addr, 127.0.0.1:8080), or "off".
        #[arg(long, value_name = "ADDR")]
        viewer: Option<String>,
    },
    /// Run a helper node for peers behind NATs (on a public server): circuit relay, rendezvous
    /// and AutoNAT, until Ctrl-C.
    Relay {
        /// Folder for the helper's identity (created, with its key, on first start).
        dir: PathBuf,
        /// Address to listen on (repeatable; default TCP and QUIC on port 4001 of every interface).
        #[arg(long, value_name = "MULTIADDR")]
        listen: Vec<String>,
        /// Answer AutoNAT probes of peers seen at private addresses (a LAN or a test lab; never on
        /// the internet).
        #[arg(long)]
        private_addresses: bool,
    },
    /// Call a data function and print the data protocol's JSON answer.
    Call {
        /// Peer folder (made by `goop init`): its scripts, or with --peer its identity.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Call the peer at this address (or this peer ID, found through p2p.relays) instead of
        /// this folder's scripts.
        #[arg(long, value_name = "MULTIADDR|PEER_ID")]
        peer: Option<String>,
        #[command(flatten)]
        caller: Caller,
        /// The data function: site/lua/functions/FUNCTION.lua (`goop list` lists them).
        function: String,
        /// Request params as JSON (default {}), e.g. '{"name":"Bo"}'.
        params: Option<String>,
    },
    /// Send a chat message and print the reply.
    Cmd {
        /// Peer folder (made by `goop init`): its scripts, or with --peer its identity.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Send it to the peer at this address (or this peer ID, found through p2p.relays)
        /// instead of this folder's scripts.
        #[arg(long, value_name = "MULTIADDR|PEER_ID")]
        peer: Option<String>,
        #[command(flatten)]
        caller: Caller,
        /// Seconds to wait for a remote reply.
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        wait: u64,
        /// A command, '!NAME ARGS' (runs site/lua/NAME.lua); with --peer, any other text is
        /// delivered as a message.
        message: String,
    },
    /// Send any data-protocol request and print the answer.
    #[command(after_help = DATA_REQUESTS)]
    Data {
        /// Peer folder (made by `goop init`): its database, or with --peer its identity.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Ask the peer at this address (or this peer ID, found through p2p.relays) instead of
        /// this folder's database.
        #[arg(long, value_name = "MULTIADDR|PEER_ID")]
        peer: Option<String>,
        /// The request, a JSON object with an "op" (below).
        request: String,
    },
    /// Print a file of a peer's site.
    Site {
        /// Peer folder (made by `goop init`) whose identity asks.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The peer to ask, by the address its `goop run` printed (or its peer ID, found through
        /// p2p.relays).
        #[arg(long, value_name = "MULTIADDR|PEER_ID")]
        peer: String,
        /// The file, relative to the peer's site/ (e.g. /index.html).
        path: String,
    },
    /// List the data functions (the `lua-list` answer).
    List {
        /// Peer folder (made by `goop init`).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Load every script and report which ones fail.
    Check {
        /// Peer folder (made by `goop init`).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A one-shot command prints a script's failure on stdout already; `goop run` logs it.
    let quiet_scripts = if matches!(cli.command, Command::Run { .. } | Command::Relay { .. }) {
        "warn"
    } else {
        "warn,goop::script=error"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(quiet_scripts)),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("goop: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(outcome) => {
            let mut out = std::io::stdout();
            let _ = out.write_all(outcome.stdout.as_bytes()).and_then(|_| out.flush());
            ExitCode::from(if outcome.success { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("goop: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_json(text: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).with_context(|| format!("invalid {what}"))
}

async fn remote(dir: &std::path::Path, peer: &str) -> anyhow::Result<Session> {
    Session::open(dir, peer).await.map_err(anyhow::Error::from)
}

/// A local command, answered by this folder's own peer.
fn local(dir: &std::path::Path, command: local::Command) -> anyhow::Result<Outcome> {
    goop::control::answer(dir, &command)
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    Ok(match cli.command {
        Command::Templates { action: None } => {
            let list = goop::templates::all()?;
            let width = list.iter().map(|t| t.manifest.name.len()).max().unwrap_or(0);
            let lines = list.iter().map(|t| {
                let m = &t.manifest;
                format!("{:width$}  {:10}  {}\n", m.name, m.tier.name(), m.description)
            });
            Outcome { stdout: lines.collect(), success: true }
        }
        Command::Templates { action: Some(TemplatesAction::Apply { name, dir }) } => {
            goop::config::PeerConfig::load(&dir)?;
            let done = goop::templates::install(&dir, &name)?;
            let mut stdout: String = done.written.iter().map(|p| format!("wrote {}\n", p.display())).collect();
            for kept in &done.backed_up {
                stdout.push_str(&format!("your previous version is in {}\n", kept.display()));
            }
            stdout.push_str(&format!("installed {name}; a running peer picks it up by itself\n"));
            Outcome { stdout, success: true }
        }
        Command::Init { dir, template } => {
            let done = goop::init::init(&dir, &template)?;
            let mut stdout: String = done.written.iter().map(|p| format!("created {}\n", p.display())).collect();
            if let Some(path) = done.gitignore_extended {
                stdout.push_str(&format!("added the peer's private files to {}\n", path.display()));
            }
            stdout.push_str(&done.next);
            Outcome { stdout, success: true }
        }
        Command::Id { dir } => {
            goop::config::PeerConfig::load(&dir)?;
            Outcome { stdout: format!("{}\n", goop::identity::peer_id(&dir)?), success: true }
        }
        Command::Relay { dir, listen, private_addresses } => {
            let shutdown = goop::run::shutdown_signal().context("cannot listen for Ctrl-C and SIGTERM")?;
            goop::relay::run(&dir, &listen, private_addresses, shutdown).await?;
            Outcome { stdout: String::new(), success: true }
        }
        Command::Run { dir, listen, connect, relay, viewer } => {
            goop::run::run(&dir, &listen, &connect, &relay, viewer.as_deref()).await?;
            Outcome { stdout: String::new(), success: true }
        }
        Command::Call { dir, peer, caller, function, params } => {
            let params = match params {
                Some(text) => parse_json(&text, "PARAMS_JSON")?,
                None => serde_json::json!({}),
            };
            match peer {
                Some(peer) => remote(&dir, &peer).await?.call(&function, params).await?,
                None => local(&dir, local::Command::Call { caller: caller.into(), function, params })?,
            }
        }
        Command::Cmd { dir, peer, caller, wait, message } => match peer {
            Some(peer) => remote(&dir, &peer).await?.cmd(&message, Duration::from_secs(wait)).await?,
            None => local(&dir, local::Command::Cmd { caller: caller.into(), message })?,
        },
        Command::Data { dir, peer, request } => {
            let request = parse_json(&request, "REQUEST_JSON")?;
            match peer {
                Some(peer) => remote(&dir, &peer).await?.data(&request).await?,
                None => local(&dir, local::Command::Data { request })?,
            }
        }
        Command::Site { dir, peer, path } => match remote(&dir, &peer).await?.site(&path).await? {
            Ok(bytes) => {
                let mut out = std::io::stdout();
                out.write_all(&bytes).and_then(|_| out.flush()).context("cannot write to stdout")?;
                Outcome { stdout: String::new(), success: true }
            }
            Err(refusal) => {
                eprintln!("goop: {path}: {refusal}");
                Outcome { stdout: String::new(), success: false }
            }
        },
        Command::List { dir } => local(&dir, local::Command::List)?,
        Command::Check { dir } => LocalPeer::open(&dir)?.check()?,
    })
}
