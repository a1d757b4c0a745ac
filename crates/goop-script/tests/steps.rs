//! The step budget: a call stops after `max_steps` safepoints (calls, returns, loop iterations),
//! at the same point on every run whatever the machine's load, and each call has its own.

mod common;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use goop_script::mlua::{Lua, Table};
use goop_script::{Config, Engine, Error, HostModule, Scope};
use serde_json::json;

/// `goop.probe.mark(n)`: the script reports how far it got, so a test sees where it stopped.
struct Probe(Arc<AtomicU64>);

impl HostModule for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn scope(&self) -> Scope {
        Scope::All
    }
    fn build(&self, lua: &Lua) -> goop_script::mlua::Result<Table> {
        let mark = self.0.clone();
        let t = lua.create_table()?;
        t.set(
            "mark",
            lua.create_function(move |_, n: u64| {
                mark.store(n, Ordering::Relaxed);
                Ok(())
            })?,
        )?;
        Ok(t)
    }
}

/// An engine over `site` with `goop.probe`, and the probe's last mark.
fn probed(config: Config) -> (Engine, Arc<AtomicU64>) {
    let mark = Arc::new(AtomicU64::new(0));
    let engine = Engine::with_modules(config, vec![Arc::new(Probe(mark.clone()))]).unwrap();
    (engine, mark)
}

/// Each turn is two steps: the loop's back-edge and the call to `mark`.
const LOOP_BOMB: &str = "function call() local n = 0 while true do n = n + 1 goop.probe.mark(n) end end";

/// 10,000 records sorted by a field with a Lua comparator, the top three returned.
const HEAVY: &str = r#"function call()
    local rows = {}
    for i = 1, 10000 do rows[i] = { id = i, score = (i * 7919) % 10007, name = "player " .. i } end
    table.sort(rows, function(a, b) return a.score > b.score end)
    return { rows[1].id, rows[2].id, rows[3].id }
end"#;

#[test]
fn a_loop_bomb_stops_with_steps_at_the_limit() {
    let site = Site::new();
    site.write("functions/bomb.lua", LOOP_BOMB);
    // pcall catches the first failure; every later safepoint fails again.
    site.write("functions/hold.lua", "function call() while true do pcall(function() while true do end end) end end");
    let mut config = site.config();
    config.max_steps = 10_000;
    config.timeout = Duration::from_secs(30);
    let (engine, mark) = probed(config);

    let start = Instant::now();
    let err = call(&engine, "bomb", json!({})).unwrap_err();
    assert_eq!(err, Error::Steps { script: "bomb".into(), limit: 10_000 });
    assert_eq!(err.to_string(), "script bomb ran past its step budget of 10000 steps");
    // 10,000 steps at two a turn: the same on every machine.
    assert_eq!(mark.load(Ordering::Relaxed), 5_000);
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());

    assert_eq!(call(&engine, "hold", json!({})).unwrap_err(), Error::Steps { script: "hold".into(), limit: 10_000 });
}

#[test]
fn the_same_input_stops_at_the_same_step_on_every_run_even_under_load() {
    let site = Site::new();
    // Work that depends on the input (a sort by a Lua comparator), then a loop that never ends.
    site.write(
        "functions/work.lua",
        r#"function call(r)
            local words = {}
            for i = 1, r.params.n do words[i] = string.format("w%05d", (i * 7919) % r.params.n) end
            table.sort(words, function(a, b) return a < b end)
            local i = 0
            while true do
                i = i + 1
                goop.probe.mark(i)
                local _ = words[i % #words + 1]:find("9")
            end
        end"#,
    );
    let mut config = site.config();
    config.max_steps = 300_000;
    config.timeout = Duration::from_secs(60);
    let (engine, mark) = probed(config);
    let stopped_at = |n: u32| {
        let err = call(&engine, "work", json!({ "n": n })).unwrap_err();
        assert_eq!(err, Error::Steps { script: "work".into(), limit: 300_000 });
        mark.load(Ordering::Relaxed)
    };

    let quiet: Vec<u64> = (0..5).map(|_| stopped_at(5000)).collect();
    let burning = Arc::new(AtomicBool::new(true));
    let burners: Vec<_> = (0..2)
        .map(|_| {
            let burning = burning.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while burning.load(Ordering::Relaxed) {
                    x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let loaded: Vec<u64> = (0..5).map(|_| stopped_at(5000)).collect();
    burning.store(false, Ordering::Relaxed);
    burners.into_iter().for_each(|b| b.join().unwrap());

    // (With a 200 ms deadline and no budget, this input stopped anywhere from 69,877 to
    // 178,135 turns in 5 runs.)
    assert!(quiet.iter().chain(&loaded).all(|&turns| turns == 33_637), "quiet {quiet:?}, loaded {loaded:?}");
    // Another input is other work: it stops elsewhere, again the same on every run.
    assert_eq!(stopped_at(2000), 75_733);
    assert_eq!(stopped_at(2000), 75_733);
}

#[test]
fn a_heavy_legitimate_call_fits_the_default_budget_a_hundred_times_over() {
    let site = Site::new();
    site.write("functions/top.lua", HEAVY);
    let default = site.config().max_steps;
    assert_eq!(default, 50_000_000);
    assert_eq!(call(&site.engine(), "top", json!({})).unwrap(), json!([1040, 2080, 3120]));
    // The call takes 429,369 steps (each comparison is three): a hundredth of the default is
    // enough, 400,000 is not.
    for (budget, passes) in [(default / 100, true), (400_000, false)] {
        let mut config = site.config();
        config.max_steps = budget;
        let out = call(&Engine::new(config).unwrap(), "top", json!({}));
        assert_eq!(out.is_ok(), passes, "{budget} steps: {out:?}");
    }
}

#[test]
fn the_default_budget_stops_a_loop_bomb_and_0_leaves_it_to_the_timeout() {
    let site = Site::new();
    site.write("functions/bomb.lua", LOOP_BOMB);
    let mut config = site.config();
    config.timeout = Duration::from_secs(60);
    let (engine, mark) = probed(config);
    assert_eq!(
        call(&engine, "bomb", json!({})).unwrap_err(),
        Error::Steps { script: "bomb".into(), limit: 50_000_000 }
    );
    assert_eq!(mark.load(Ordering::Relaxed), 25_000_000);

    let mut config = site.config();
    config.max_steps = 0;
    config.timeout = Duration::from_millis(300);
    let (engine, mark) = probed(config);
    let start = Instant::now();
    let err = call(&engine, "bomb", json!({})).unwrap_err();
    assert_eq!(err, Error::Timeout { script: "bomb".into(), limit: Duration::from_millis(300) });
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(mark.load(Ordering::Relaxed) > 0);
}

#[test]
fn each_call_has_a_budget_of_its_own() {
    let site = Site::new();
    // 60,000 loop steps: three fifths of the budget, so a second call on a shared count would fail.
    site.write("functions/most.lua", "function call() local x = 0 for i = 1, 60000 do x = x + i end return x end");
    site.write("functions/bomb.lua", LOOP_BOMB);
    site.write("busy.lua", "function handle() for i = 1, 60000 do end return 'done' end");
    let mut config = site.config();
    config.max_steps = 100_000;
    config.workers = 1;
    let (engine, _) = probed(config);
    for round in 0..5 {
        assert_eq!(call(&engine, "most", json!({})).unwrap(), json!(1_800_030_000u64), "round {round}");
        assert_eq!(cmd(&engine, "busy", "").unwrap().as_deref(), Some("done"), "round {round}");
    }
    // A call that ran out takes its VM with it; the next starts with a full budget.
    assert!(matches!(call(&engine, "bomb", json!({})), Err(Error::Steps { limit: 100_000, .. })));
    assert_eq!(call(&engine, "most", json!({})).unwrap(), json!(1_800_030_000u64));
}
