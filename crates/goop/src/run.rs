//! `goop run`: assembles a peer from its folder — config, identity, store, engine, node — and
//! serves until Ctrl-C or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use goop_script::{Engine, HostModule, Peer};
use libp2p::Multiaddr;
use serde_json::Value;

use crate::config::PeerConfig;
use crate::control::{Control, RunLock, Running};
use crate::group::module::GroupModule;
use crate::group::{Groups, Links};
use crate::http::{HttpModule, HttpPolicy};
use crate::identity;
use crate::local::LocalPeer;
use crate::node::services::{DataStore, Services};
use crate::node::{Node, NodeConfig, Target};
use crate::protocol::site::Site;
use crate::site_module::SiteModule;
use crate::store::{ConfigModule, DbModule, ExprModule, OrmModule, Store};
use crate::template_module::TemplateModule;
use crate::viewer::{self, origin::Hosts, Viewer};

/// How long `--connect` keeps trying a peer (a bare peer ID waits for a helper to find it).
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a peer listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/4001";

impl DataStore for Store {
    fn data_request(&self, caller: &str, request: &Value) -> Value {
        Store::data_request(self, caller, request)
    }
    fn save_message(&self, from: &str, label: &str, content: &str) -> Result<(), String> {
        Store::save_message(self, from, label, content).map_err(|e| e.to_string())
    }
    fn schema_error(&self) -> Option<String> {
        Store::schema_error(self).map(|e| e.to_string())
    }
    fn spelling(&self, table: &str) -> Result<Option<(String, Vec<String>)>, String> {
        Store::spelling(self, table).map_err(|e| e.to_string())
    }
}

/// The script engine of the peer in `dir`, with the host modules its config enables
/// (`goop.db`, `goop.orm`, `goop.expr`, `goop.config`, `goop.site` and `goop.template` always, `goop.http` unless `lua.http_enabled` is false).
pub fn engine(
    dir: &Path,
    config: &PeerConfig,
    local: Peer,
    store: &Store,
    groups: &Arc<Groups>,
) -> Result<Arc<Engine>, goop_script::Error> {
    let mut modules: Vec<Arc<dyn HostModule>> = vec![
        Arc::new(DbModule::new(store.clone())),
        Arc::new(OrmModule::new(store.clone())),
        Arc::new(ExprModule),
        Arc::new(ConfigModule::new(store.clone())),
        Arc::new(GroupModule::new(groups.clone())),
        Arc::new(SiteModule::new(site(dir, config))),
        Arc::new(TemplateModule::load(dir)),
    ];
    if config.lua.http_enabled {
        modules.push(Arc::new(HttpModule::new(HttpPolicy { allow_loopback: config.lua.http_allow_loopback })));
    }
    let engine = Arc::new(Engine::with_modules(config.engine_config(dir, local), modules)?);
    groups.set_engine(&engine);
    Ok(engine)
}

/// The serving parts of the peer in `dir`, as the config says, and its store.
pub fn services(dir: &Path, config: &PeerConfig, local: Peer) -> anyhow::Result<(Services, Store)> {
    let store = Store::open(dir, &local.id).context("cannot open the peer's database")?;
    if let Some(e) = store.schema_error() {
        tracing::warn!("{}", crate::store::not_applied(&e));
    }
    let groups = Groups::new();
    let engine = if config.lua.enabled { Some(engine(dir, config, local, &store, &groups)?) } else { None };
    Ok((services_with(dir, config, engine, store.clone(), groups), store))
}

/// The serving parts of the peer in `dir` around an engine and store already opened.
pub fn services_with(
    dir: &Path,
    config: &PeerConfig,
    engine: Option<Arc<Engine>>,
    store: Store,
    groups: Arc<Groups>,
) -> Services {
    Services { engine, store: Arc::new(store), site: site(dir, config), groups }
}

/// The site the peer in `dir` serves, and its script folder that stays private.
fn site(dir: &Path, config: &PeerConfig) -> Site {
    Site { root: dir.join("site"), scripts: dir.join(&config.lua.script_dir) }
}

/// Runs the peer in `dir` until it is told to stop. `viewer` overrides `viewer.addr`
/// ("off" turns the viewer off).
pub async fn run(
    dir: &Path,
    listen: &[String],
    connect: &[String],
    relays: &[String],
    viewer: Option<&str>,
) -> anyhow::Result<()> {
    let shutdown = shutdown_signal().context("cannot listen for Ctrl-C and SIGTERM")?;
    let config = PeerConfig::load(dir)?;
    let key = identity::load(dir)?;
    let mut lock = RunLock::acquire(dir)?;
    let id = key.public().to_peer_id();
    let local = Peer::new(id.to_string(), config.profile.label.clone());
    let (services, store) = {
        let (dir, config, local) = (dir.to_path_buf(), config.clone(), local.clone());
        tokio::task::spawn_blocking(move || services(&dir, &config, local)).await??
    };
    let services = Arc::new(services);
    let schedule = match &services.engine {
        Some(engine) => Some(engine.schedule(crate::events::SCHEDULE, local.clone())?),
        None => None,
    };
    if services.engine.is_none() {
        tracing::warn!("lua scripting is disabled; set lua.enabled in goop.json to serve scripts");
    }
    let defaulted = listen.is_empty();
    let listen: Vec<Multiaddr> = if defaulted { vec![DEFAULT_LISTEN.to_string()] } else { listen.to_vec() }
        .iter()
        .map(|a| a.parse().with_context(|| format!("--listen {a:?} is not a multiaddr")))
        .collect::<anyhow::Result<_>>()?;
    let relays = config
        .p2p
        .relays
        .iter()
        .chain(relays)
        .map(|a| crate::config::check_relay(a).map_err(|e| anyhow::anyhow!("--relay: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let listen = crate::node::with_quic(&listen);
    let node_config = NodeConfig {
        listen,
        fallback_port: defaulted,
        mdns: config.p2p.mdns,
        label: config.profile.label.clone(),
        relays,
    };
    let node = Node::start_with(key, node_config, config.p2p.limits(), Some(services.clone()))?;
    admit_group_members(&node, &services.groups)?;
    let viewer_addr = match viewer {
        Some("off") => None,
        Some(addr) => {
            Some((addr.parse().with_context(|| format!("--viewer {addr:?} is not an IP:PORT address"))?, false))
        }
        None if config.viewer.enabled => Some((config.viewer.addr.parse()?, true)),
        None => None,
    };
    let mut viewer_url = None;
    let viewer_task = match viewer_addr {
        Some((addr, fallback)) => {
            let listener =
                viewer::bind(addr, fallback).await.with_context(|| format!("viewer: cannot listen on {addr}"))?;
            let port = listener.local_addr()?.port();
            let hosts = Hosts { port };
            let url = format!("http://localhost:{port}/");
            say(&format!("viewer {url}  (your site: {})", hosts.site_url(&id)));
            viewer_url = Some(url);
            let me = local.clone();
            let links = Links::new(me.clone(), services.groups.clone(), node.streams());
            let streams = Default::default();
            let state =
                Arc::new(Viewer { node: node.clone(), services: services.clone(), store, me, hosts, links, streams });
            Some(tokio::spawn(async move {
                if let Err(e) = viewer::serve(listener, state).await {
                    tracing::error!("viewer stopped: {e}");
                }
            }))
        }
        None => None,
    };

    // The owner's local commands now reach this peer instead of opening the folder again.
    let control = Control::serve(Arc::new(LocalPeer::new(dir, local, services)))
        .context("cannot open the socket for local commands")?;
    lock.publish(&Running { pid: std::process::id(), viewer: viewer_url, control: control.socket.clone() })
        .with_context(|| format!("cannot write {}", dir.join(crate::control::LOCK_FILE).display()))?;

    let mut addrs = node.watch_addrs();
    let printer = tokio::spawn(async move {
        let mut printed = 0;
        loop {
            let now: Vec<Multiaddr> = addrs.borrow_and_update().clone();
            for addr in &now[printed.min(now.len())..] {
                say(&format!("listening {addr}/p2p/{id}"));
            }
            printed = now.len();
            if addrs.changed().await.is_err() {
                break;
            }
        }
    });
    for addr in config.p2p.bootstrap.iter().chain(connect) {
        let node = node.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            let dialed = match addr.parse::<Target>() {
                Ok(target) => match tokio::time::timeout(CONNECT_WAIT, node.connect(&target)).await {
                    Ok(connected) => connected.map_err(|e| e.to_string()),
                    Err(_) => Err("not found in time".to_string()),
                },
                Err(e) => Err(e),
            };
            match dialed {
                Ok(peer) => tracing::info!("connected to {peer} at {addr}"),
                Err(e) => tracing::warn!("cannot connect to {addr}: {e}"),
            }
        });
    }
    shutdown.await;
    tracing::info!("stopping");
    printer.abort();
    if let Some(task) = viewer_task {
        task.abort();
    }
    drop(control);
    drop(schedule);
    drop(node);
    drop(lock);
    Ok(())
}

/// Prints one line for whoever started the peer. Nobody may be reading any more (a script that
/// took the first lines and closed the pipe): that is no reason to stop serving.
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Hands every member stream that reaches this peer to its groups.
fn admit_group_members(node: &Node, groups: &Arc<Groups>) -> anyhow::Result<()> {
    let mut members = node.streams().accept(crate::group::PROTOCOL).context("cannot accept group members")?;
    let (node, groups) = (node.clone(), groups.clone());
    tokio::spawn(async move {
        while let Some((peer, stream)) = futures::StreamExt::next(&mut members).await {
            groups.admit(Peer::new(peer.to_string(), node.label_of(&peer)), stream);
        }
    });
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when it
/// is first awaited, so a signal sent while the peer starts still stops it cleanly.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
