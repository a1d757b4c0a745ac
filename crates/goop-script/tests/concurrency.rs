//! Calls run in parallel on the worker pool; a full pool makes callers wait, then say busy.

mod common;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use goop_script::mlua::{Lua, Table};
use goop_script::{Engine, Error, HostModule, Scope};

/// `goop.slow.wait(secs)`: a host call that blocks, like a slow HTTP request.
struct Slow;
impl HostModule for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn scope(&self) -> Scope {
        Scope::All
    }
    fn build(&self, lua: &Lua) -> goop_script::mlua::Result<Table> {
        let t = lua.create_table()?;
        t.set(
            "wait",
            lua.create_function(|_, secs: f64| {
                std::thread::sleep(Duration::from_secs_f64(secs));
                Ok(())
            })?,
        )?;
        Ok(t)
    }
}

fn engine(site: &Site, workers: usize, busy_wait: Duration) -> Arc<Engine> {
    site.write("slow.lua", "function handle() goop.slow.wait(1.5) return 'slow' end");
    site.write("fast.lua", "function handle() return 'fast' end");
    let mut c = site.config();
    c.timeout = Duration::from_secs(10);
    c.workers = workers;
    c.busy_wait = busy_wait;
    Arc::new(Engine::with_modules(c, vec![Arc::new(Slow)]).unwrap())
}

#[test]
fn a_slow_host_call_does_not_stall_other_calls() {
    let site = Site::new();
    let engine = engine(&site, 4, Duration::from_secs(5));
    let e = engine.clone();
    let slow = std::thread::spawn(move || cmd(&e, "slow", "").unwrap());
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(cmd(&engine, "fast", "").unwrap().as_deref(), Some("fast"));
    }
    assert!(start.elapsed() < Duration::from_millis(1200), "fast calls waited {:?}", start.elapsed());
    assert!(!slow.is_finished(), "the slow call should still be running");
    assert_eq!(slow.join().unwrap().as_deref(), Some("slow"));
}

#[test]
fn a_full_pool_answers_busy_after_a_bounded_wait() {
    let site = Site::new();
    let engine = engine(&site, 1, Duration::from_millis(200));
    let e = engine.clone();
    let slow = std::thread::spawn(move || cmd(&e, "slow", "").unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    // Another caller: the visitor's own second call would meet its per-caller share first.
    let other = goop_script::Peer::new("12D3KooWOther", "Bo");
    assert_eq!(engine.run_command(&other, "fast", ""), Err(Error::Busy));
    assert!(start.elapsed() >= Duration::from_millis(150), "gave up too early: {:?}", start.elapsed());
    slow.join().unwrap();
    assert_eq!(cmd(&engine, "fast", "").unwrap().as_deref(), Some("fast"), "the worker came back");
}

#[test]
fn many_threads_share_the_pool() {
    let site = Site::new();
    site.write("functions/sq.lua", "function call(r) return { v = r.params.n * r.params.n } end");
    let mut c = site.config();
    c.workers = 3;
    let engine = Arc::new(Engine::new(c).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for n in 0..200 {
                    let v = call(&engine, "sq", serde_json::json!({ "n": n + t })).unwrap();
                    assert_eq!(v["v"], (n + t) * (n + t));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_waiting_caller_gets_the_worker_as_soon_as_it_is_free() {
    let site = Site::new();
    let engine = engine(&site, 1, Duration::from_secs(20));
    let e = engine.clone();
    let slow = std::thread::spawn(move || cmd(&e, "slow", "").unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(cmd(&engine, "fast", "").unwrap().as_deref(), Some("fast"));
    // The slow call holds the only worker ~1.2 s more; the waiter must be woken when it is
    // returned, not at the end of its 20 s wait.
    assert!(start.elapsed() < Duration::from_secs(10), "waited {:?} for a free worker", start.elapsed());
    slow.join().unwrap();
}
