//! Rate limits per caller per script, per-script overrides, and the global cap.

mod common;
use common::*;
use goop_script::{Engine, Error, Peer};

fn engine(site: &Site, per_peer: u32, global: u32) -> Engine {
    let mut c = site.config();
    c.rate_limit_per_peer = per_peer;
    c.rate_limit_global = global;
    Engine::new(c).unwrap()
}

fn run(engine: &Engine, who: &str, name: &str) -> Result<Option<String>, Error> {
    engine.run_command(&Peer::new(who, ""), name, "")
}

#[test]
fn per_caller_limit_applies_per_script() {
    let site = Site::new();
    site.write("a.lua", "function handle() return 'a' end");
    site.write("b.lua", "function handle() return 'b' end");
    let engine = engine(&site, 3, 0);
    for _ in 0..3 {
        run(&engine, "P1", "a").unwrap();
    }
    assert!(matches!(run(&engine, "P1", "a"), Err(Error::RateLimited(_))));
    run(&engine, "P1", "b").expect("another script has its own budget");
    run(&engine, "P2", "a").expect("another caller has its own budget");
    // The peer itself is not limited per caller.
    for _ in 0..10 {
        run(&engine, "12D3KooWSelf", "a").unwrap();
    }
}

#[test]
fn rate_limit_annotation_overrides_the_default() {
    let site = Site::new();
    site.write("tight.lua", "--- Tight\n--- @rate_limit 1\nfunction handle() return 'x' end");
    site.write("free.lua", "--- Free\n--- @rate_limit 0\nfunction handle() return 'x' end");
    let engine = engine(&site, 3, 0);
    run(&engine, "P", "tight").unwrap();
    let err = run(&engine, "P", "tight").unwrap_err();
    assert_eq!(err.to_string(), "rate limited: at most 1 calls per minute to tight");
    for _ in 0..50 {
        run(&engine, "P", "free").unwrap();
    }
}

#[test]
fn global_limit_caps_all_callers_together() {
    let site = Site::new();
    site.write("a.lua", "function handle() return 'a' end");
    let engine = engine(&site, 0, 4);
    for i in 0..4 {
        run(&engine, &format!("P{i}"), "a").unwrap();
    }
    assert!(matches!(run(&engine, "P9", "a"), Err(Error::RateLimited(_))));
}
