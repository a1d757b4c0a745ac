//! Invocation cost: pooled VM with a fresh environment per call, against a fresh VM per call;
//! and a loop of 100,000 steps, for what counting steps costs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use goop_script::{Config, Engine, Peer};
use serde_json::json;

const TRIVIAL: &str = "function handle(args) return 'You said: ' .. args end";

fn engine_over(dir: &std::path::Path) -> Engine {
    let mut c = Config::new(dir);
    c.hot_reload = false;
    c.rate_limit_per_peer = 0;
    c.rate_limit_global = 0;
    c.local = Peer::new("12D3KooWSelf", "Host");
    Engine::new(c).expect("engine starts")
}

fn invoke(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("echo.lua"), TRIVIAL).expect("write");
    std::fs::write(dir.path().join("fail.lua"), "function handle(args) error('bad input: ' .. args) end")
        .expect("write");
    std::fs::write(
        dir.path().join("trim.lua"),
        r#"function string.trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
        function handle(args) return args:trim() end"#,
    )
    .expect("write");
    std::fs::create_dir(dir.path().join("functions")).expect("mkdir");
    std::fs::write(
        dir.path().join("functions/score.lua"),
        r#"function call(r)
            local total, right = 0, 0
            for q, a in pairs(r.params.answers) do
                total = total + 1
                if a == r.params.key[q] then right = right + 1 end
            end
            return { score = right, total = total, detail = { passed = right * 2 >= total, tags = { "quiz", "v1" } } }
        end"#,
    )
    .expect("write");
    // 100,000 loop turns: a step each, so the cost of counting steps shows per step.
    std::fs::write(
        dir.path().join("functions/loop.lua"),
        "function call() local x = 0 for i = 1, 100000 do x = x + i end return x end",
    )
    .expect("write");
    let engine = engine_over(dir.path());
    let caller = Peer::new("12D3KooWVisitor", "Ann");
    let params = json!({
        "answers": { "q1": "B", "q2": "A", "q3": "D", "q4": "C" },
        "key": { "q1": "B", "q2": "C", "q3": "D", "q4": "C" },
    });

    c.bench_function("trivial handle (pooled VM, fresh env)", |b| {
        b.iter(|| engine.run_command(&caller, black_box("echo"), black_box("hi")).expect("call"))
    });
    // The spec's scripts call error() on bad input: that path must keep its VM.
    c.bench_function("handle that calls error() (pooled VM kept)", |b| {
        b.iter(|| engine.run_command(&caller, black_box("fail"), black_box("hi")).expect_err("fails"))
    });
    // A call that adds a helper to `string` pays for its additions table and their unlinking.
    c.bench_function("handle that adds string.trim and calls s:trim()", |b| {
        b.iter(|| engine.run_command(&caller, black_box("trim"), black_box(" hi ")).expect("call"))
    });
    c.bench_function("data call, nested params and result", |b| {
        b.iter(|| engine.call(&caller, black_box("score"), black_box(&params)).expect("call"))
    });
    c.bench_function("data call, 100,000-turn loop", |b| {
        b.iter(|| engine.call(&caller, black_box("loop"), black_box(&json!({}))).expect("call"))
    });

    // The Go design's model: a fresh sandboxed VM per call, API injected, chunk run, handle called.
    let bytecode = goop_script::mlua::chunk::Compiler::new().compile(TRIVIAL).expect("compile");
    c.bench_function("trivial handle (fresh VM per call, baseline)", |b| {
        b.iter(|| {
            let (lua, globals) = goop_script::sandbox::new_state().expect("lua");
            let goop = lua.create_table().expect("table");
            goop.set("json", goop_script::api::json::module(&lua).expect("json")).expect("set");
            globals.set("goop", goop).expect("set");
            lua.sandbox(true).expect("sandbox");
            lua.load(&bytecode[..]).set_mode(goop_script::mlua::chunk::ChunkMode::Binary).exec().expect("run");
            let handle: goop_script::mlua::Function = lua.globals().get("handle").expect("handle");
            black_box(handle.call::<String>("hi").expect("call"))
        })
    });

    let many = tempfile::tempdir().expect("temp dir");
    for i in 0..100 {
        let src = format!("--- Script {i}\nlocal n = {i}\nfunction handle(a) return a .. n end\nfunction call(r) return {{ n = n }} end");
        std::fs::write(many.path().join(format!("s{i}.lua")), src).expect("write");
    }
    c.bench_function("load 100 scripts", |b| b.iter(|| black_box(engine_over(many.path()))));
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = invoke
}
criterion_main!(benches);
