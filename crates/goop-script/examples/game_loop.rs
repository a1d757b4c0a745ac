//! A host that is not goop: a tiny game loop embedding the engine. Scripts react to `on_tick`
//! each frame and to the consumable `on_action` (the first script returning `true` takes the
//! action), and reach the game through a host module of its own, `goop.game`.
//!
//! Run it with `cargo run -p goop-script --example game_loop`.

use std::sync::{Arc, Mutex};

use goop_script::mlua::{Lua, Table};
use goop_script::{Config, Engine, Event, HostModule, Peer, Scope};
use serde_json::json;

/// `goop.game.say(text)`: scripts talk to the game's log.
struct Game {
    log: Arc<Mutex<Vec<String>>>,
}

impl HostModule for Game {
    fn name(&self) -> &str {
        "game"
    }
    fn scope(&self) -> Scope {
        Scope::All
    }
    fn build(&self, lua: &Lua) -> goop_script::mlua::Result<Table> {
        let log = self.log.clone();
        let game = lua.create_table()?;
        game.set(
            "say",
            lua.create_function(move |_, text: String| {
                log.lock().unwrap_or_else(|p| p.into_inner()).push(text);
                Ok(())
            })?,
        )?;
        Ok(game)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scripts = tempfile::tempdir()?;
    // Handlers run in script-name order: the door sees an action before the scorer does.
    std::fs::write(
        scripts.path().join("door.lua"),
        r#"
        function on_action(player, action)
            if action == "open" then
                goop.game.say(player.name .. " opens the door")
                return true -- consumed: nobody else handles this action
            end
        end
        "#,
    )?;
    std::fs::write(
        scripts.path().join("scorer.lua"),
        r#"
        function on_action(player, action)
            goop.game.say(player.name .. " scores for " .. action)
        end
        function on_tick(frame)
            if frame % 2 == 0 then goop.game.say("tick " .. frame) end
        end
        "#,
    )?;

    let log = Arc::new(Mutex::new(Vec::new()));
    let mut config = Config::new(scripts.path());
    config.hot_reload = false;
    config.events = vec![Event::new("on_tick"), Event::consumable("on_action")];
    let engine = Engine::with_modules(config, vec![Arc::new(Game { log: log.clone() })])?;

    let player = Peer::new("player-1", "Ann");
    let actions = ["jump", "open", "duck"];
    for frame in 0..4 {
        engine.fire("on_tick", &player, &[json!(frame)])?;
        if let Some(action) = actions.get(frame) {
            let fired = engine.fire("on_action", &player, &[json!({ "name": "Ann" }), json!(action)])?;
            if let Some(by) = fired.consumed_by {
                println!("frame {frame}: {action} taken by {by}.lua");
            }
        }
    }
    for line in log.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        println!("{line}");
    }
    Ok(())
}
