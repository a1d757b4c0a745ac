//! Events: every script defining the handler runs, in script-name order, each as its own
//! invocation under the usual limits; a consumable event stops at the first `true`.

mod common;

use common::{visitor, Site};
use std::time::Duration;

use goop_script::{Engine, Error, Event, Peer};
use serde_json::json;

fn engine_with(site: &Site, events: Vec<Event>) -> Engine {
    let mut config = site.config();
    config.events = events;
    Engine::new(config).expect("engine starts")
}

fn scripts_that_ran(fired: &goop_script::Fired) -> Vec<&str> {
    fired.runs.iter().map(|r| r.script.as_str()).collect()
}

#[test]
fn handlers_run_in_script_name_order_across_both_folders() {
    let site = Site::new();
    site.write("beta.lua", "function on_tick(n) return 'beta ' .. n end");
    site.write("alpha.lua", "function handle(a) return a end\nfunction on_tick(n) return 'alpha ' .. n end");
    site.write("functions/gamma.lua", "function on_tick(n) return 'gamma ' .. n end");
    site.write("quiet.lua", "function handle(a) return a end");
    let engine = engine_with(&site, vec![Event::new("on_tick")]);
    let fired = engine.fire("on_tick", &visitor(), &[json!(7)]).unwrap();
    assert_eq!(scripts_that_ran(&fired), ["alpha", "beta", "gamma"]);
    let results: Vec<_> = fired.runs.iter().map(|r| r.result.clone().unwrap()).collect();
    assert_eq!(results, [vec![json!("alpha 7")], vec![json!("beta 7")], vec![json!("gamma 7")]]);
    assert_eq!(fired.consumed_by, None);
    assert!(engine.handles("on_tick"));
}

#[test]
fn a_script_with_only_a_handler_loads_and_one_with_nothing_does_not() {
    let site = Site::new();
    site.write("ticker.lua", "function on_tick() end");
    site.write("helper.lua", "function format(x) return x end");
    let engine = engine_with(&site, vec![Event::new("on_tick")]);
    let scripts = engine.scripts();
    let ticker = scripts.iter().find(|s| s.name == "ticker").unwrap();
    assert!(ticker.loaded && ticker.error.is_none(), "{ticker:?}");
    let helper = scripts.iter().find(|s| s.name == "helper").unwrap();
    let error = helper.error.as_ref().unwrap();
    assert_eq!(error.message, "defines neither handle nor call (nor an event handler)");
    // Without the event declared, the ticker is not a script either.
    let bare = engine_with(&site, Vec::new());
    assert!(bare.scripts().iter().all(|s| !s.loaded));
}

#[test]
fn handlers_get_their_arguments_and_may_return_several_values() {
    let site = Site::new();
    site.write(
        "check.lua",
        "function before_insert(tbl, row)\n\
           if #row.body > 5 then return false, 'too long for ' .. tbl end\n\
           return { body = string.upper(row.body), by = goop.peer.id }\n\
         end",
    );
    site.write("silent.lua", "function before_insert() end");
    let engine = engine_with(&site, vec![Event::new("before_insert")]);
    let fired = engine.fire("before_insert", &visitor(), &[json!("notes"), json!({"body": "hi"})]).unwrap();
    assert_eq!(fired.runs[0].result, Ok(vec![json!({"body": "HI", "by": "12D3KooWVisitor"})]));
    assert_eq!(fired.runs[1].result, Ok(vec![]));
    let fired = engine.fire("before_insert", &visitor(), &[json!("notes"), json!({"body": "far too long"})]).unwrap();
    assert_eq!(fired.runs[0].result, Ok(vec![json!(false), json!("too long for notes")]));
}

#[test]
fn a_consumable_event_stops_at_the_first_true_and_a_plain_one_does_not() {
    let site = Site::new();
    site.write("a_guard.lua", "function on_action(a) return a == 'cheat' end\nfunction on_note(a) return true end");
    site.write("b_score.lua", "function on_action(a) return 'scored' end\nfunction on_note(a) return 'seen' end");
    let engine = engine_with(&site, vec![Event::consumable("on_action"), Event::new("on_note")]);
    let fired = engine.fire("on_action", &visitor(), &[json!("cheat")]).unwrap();
    assert_eq!((scripts_that_ran(&fired), fired.consumed_by.as_deref()), (vec!["a_guard"], Some("a_guard")));
    let fired = engine.fire("on_action", &visitor(), &[json!("jump")]).unwrap();
    assert_eq!((scripts_that_ran(&fired), fired.consumed_by.as_deref()), (vec!["a_guard", "b_score"], None));
    let fired = engine.fire("on_note", &visitor(), &[json!("x")]).unwrap();
    assert_eq!((scripts_that_ran(&fired), fired.consumed_by.as_deref()), (vec!["a_guard", "b_score"], None));
}

#[test]
fn each_handler_is_its_own_invocation_with_its_own_limits() {
    let site = Site::new();
    site.write("a_loop.lua", "function on_tick() while true do end end");
    site.write("b_bomb.lua", "function on_tick() local t = {} for i = 1, 1e8 do t[i] = i end end");
    site.write("c_raise.lua", "function on_tick() error('no thanks') end");
    site.write("d_leak.lua", "function on_tick() seen = (seen or 0) + 1 return seen end");
    site.write("e_peek.lua", "function on_tick() return seen == nil end");
    let engine = engine_with(&site, vec![Event::new("on_tick")]);
    for _ in 0..2 {
        let fired = engine.fire("on_tick", &visitor(), &[]).unwrap();
        assert_eq!(scripts_that_ran(&fired), ["a_loop", "b_bomb", "c_raise", "d_leak", "e_peek"]);
        assert!(matches!(fired.runs[0].result, Err(Error::Timeout { .. })), "{:?}", fired.runs[0].result);
        assert!(matches!(fired.runs[1].result, Err(Error::Memory { .. })), "{:?}", fired.runs[1].result);
        match &fired.runs[2].result {
            Err(Error::Runtime { message, .. }) => assert!(message.ends_with("no thanks"), "{message}"),
            other => panic!("{other:?}"),
        }
        // A global one handler sets is gone by its next run and never seen by another script.
        assert_eq!(fired.runs[3].result, Ok(vec![json!(1)]));
        assert_eq!(fired.runs[4].result, Ok(vec![json!(true)]));
    }
    let counted = engine.scripts().into_iter().find(|s| s.name == "c_raise").unwrap();
    assert_eq!((counted.invocations, counted.errors), (2, 2));
}

#[test]
fn an_undeclared_event_is_an_error_and_a_reload_updates_the_handlers() {
    let site = Site::new();
    site.write("ticker.lua", "function handle() return 'hi' end\nfunction on_tick() return 1 end");
    let engine = engine_with(&site, vec![Event::new("on_tick")]);
    assert_eq!(engine.fire("on_tock", &visitor(), &[]), Err(Error::UnknownEvent("on_tock".into())));
    assert_eq!(engine.fire("on_tick", &visitor(), &[]).unwrap().runs.len(), 1);
    site.write("ticker.lua", "function handle() return 'hi' end");
    engine.reload();
    assert!(!engine.handles("on_tick"));
    assert!(engine.fire("on_tick", &visitor(), &[]).unwrap().runs.is_empty());
}

#[test]
fn a_handler_cannot_return_what_json_cannot_hold() {
    let site = Site::new();
    site.write("bad.lua", "function on_tick() return print end");
    let engine = engine_with(&site, vec![Event::new("on_tick")]);
    let fired = engine.fire("on_tick", &visitor(), &[]).unwrap();
    assert!(matches!(fired.runs[0].result, Err(Error::BadResult { .. })), "{:?}", fired.runs[0].result);
}

/// A schedule's tests: `ticker.lua` counts its runs in kv; `!runs` reads them back.
fn scheduled(every: &str, body: &str) -> (Site, Engine) {
    let site = Site::new();
    site.write(
        "ticker.lua",
        &format!(
            "--- Ticks\n--- @every {every}\nfunction on_schedule()\n goop.kv.incr('runs')\n {body}\nend\n\
             function handle() return goop.json.encode({{ runs = goop.kv.get('runs') or 0, \
             overlaps = goop.kv.get('overlaps') or 0, who = goop.kv.get('who') }}) end"
        ),
    );
    let mut config = site.config();
    config.timeout = Duration::from_secs(5);
    config.events = vec![Event::new("on_schedule")];
    let engine = Engine::new(config).expect("engine starts");
    (site, engine)
}

fn runs(engine: &Engine) -> serde_json::Value {
    serde_json::from_str(&common::cmd(engine, "ticker", "").unwrap().unwrap()).unwrap()
}

#[test]
fn every_second_runs_about_once_a_second_as_the_peer_itself() {
    let (_site, engine) = scheduled("1s", "goop.kv.set('who', goop.peer.id)");
    let schedule = engine.schedule("on_schedule", Peer::new("12D3KooWSelf", "Host")).unwrap();
    std::thread::sleep(Duration::from_millis(4500));
    let seen = runs(&engine);
    // Due at 1, 2, 3 and 4 s; a busy machine may run late, never early or twice a period.
    let count = seen["runs"].as_i64().unwrap();
    assert!((2..=4).contains(&count), "{seen}");
    assert_eq!(seen["who"], "12D3KooWSelf");
    drop(schedule);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&engine)["runs"], count, "runs went on after the schedule was dropped");
}

#[test]
fn a_run_still_going_when_the_next_is_due_is_skipped_not_stacked() {
    // Each run takes 2.5 s of a 1 s period.
    let body = "if goop.kv.incr('active') > 1 then goop.kv.incr('overlaps') end\n\
                local t = os.clock() while os.clock() - t < 2.5 do end\n\
                goop.kv.incr('active', -1)";
    let (_site, engine) = scheduled("1s", body);
    let _schedule = engine.schedule("on_schedule", Peer::new("12D3KooWSelf", "Host")).unwrap();
    std::thread::sleep(Duration::from_millis(5500));
    let seen = runs(&engine);
    // Stacked, 5 runs would have started by 5.5 s; skipped, they start at about 1 s and 4 s.
    let count = seen["runs"].as_i64().unwrap();
    assert!((1..=2).contains(&count), "{seen}");
    assert_eq!(seen["overlaps"], 0, "{seen}");
}

#[test]
fn a_schedule_follows_reloads_and_needs_a_declared_event() {
    let (site, engine) = scheduled("1h", "");
    assert_eq!(engine.schedule("on_tock", Peer::default()).err(), Some(Error::UnknownEvent("on_tock".into())));
    let _schedule = engine.schedule("on_schedule", Peer::new("12D3KooWSelf", "Host")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&engine)["runs"], 0);
    // The owner shortens the period: the new version runs on it.
    let source = std::fs::read_to_string(site.path().join("ticker.lua")).unwrap();
    site.write("ticker.lua", &source.replace("@every 1h", "@every 1s"));
    engine.reload();
    std::thread::sleep(Duration::from_millis(3500));
    let count = runs(&engine)["runs"].as_i64().unwrap();
    assert!((1..=3).contains(&count), "{count}");
}

#[test]
fn fire_with_lets_the_host_chain_handlers_as_filters() {
    let site = Site::new();
    site.write("a_trim.lua", "function before_insert(row) return { body = row.body:sub(1, 5) } end");
    site.write("b_shout.lua", "function before_insert(row) return { body = row.body:upper() } end");
    site.write("c_refuse.lua", "function before_insert(row) if row.body == 'NOPE' then return false, 'no' end end");
    site.write("d_never.lua", "function before_insert(row) error('not reached') end");
    let engine = engine_with(&site, vec![Event::new("before_insert")]);
    let filter = |run: &goop_script::HandlerRun, args: &mut Vec<serde_json::Value>| match run.result.as_deref() {
        Ok([serde_json::Value::Bool(false), ..]) => std::ops::ControlFlow::Break(()),
        Ok([row @ serde_json::Value::Object(_), ..]) => {
            args[0] = row.clone();
            std::ops::ControlFlow::Continue(())
        }
        _ => std::ops::ControlFlow::Continue(()),
    };
    let fired = engine.fire_with("before_insert", &visitor(), vec![json!({"body": "hello world"})], filter).unwrap();
    assert_eq!(fired.runs[1].result, Ok(vec![json!({"body": "HELLO"})]));
    assert_eq!(fired.runs.len(), 4);
    let fired = engine.fire_with("before_insert", &visitor(), vec![json!({"body": "nope"})], filter).unwrap();
    assert_eq!((fired.runs.len(), fired.consumed_by.as_deref()), (3, Some("c_refuse")));
}

#[test]
fn a_closing_event_is_not_charged_to_the_callers_rate_limit() {
    let site = Site::new();
    site.write("presence.lua", "function on_join() return 'in' end\nfunction on_leave() return 'out' end");
    let mut config = site.config();
    config.rate_limit_per_peer = 1;
    config.events = vec![Event::new("on_join"), Event::closing("on_leave")];
    let engine = Engine::new(config).unwrap();
    let result = |name: &str| engine.fire(name, &visitor(), &[]).unwrap().runs[0].result.clone();
    assert_eq!(result("on_join"), Ok(vec![json!("in")]));
    assert!(matches!(result("on_join"), Err(Error::RateLimited(_))), "1 a minute for plain events");
    for _ in 0..3 {
        assert_eq!(result("on_leave"), Ok(vec![json!("out")]));
    }
}
