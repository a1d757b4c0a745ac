//! One folder, one running peer: `goop run` locks its folder, and the owner's local commands on
//! a running folder are answered by that peer, not by a second copy of its scripts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{folder, goop, run, stdout};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[test]
fn a_second_run_on_the_same_folder_is_refused_and_names_the_first() {
    let dir = folder("Host");
    let first = run(dir.path());
    let second = goop(&["run", "--dir", dir_arg(dir.path()), "--listen", "/ip4/127.0.0.1/tcp/0", "--viewer", "off"]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let message = stderr(&second);
    assert!(message.contains("is already served by goop run"), "{message}");
    assert!(message.contains(&format!("pid {}", first.child.id())), "{message}");
    assert!(message.contains(&format!("viewer http://localhost:{}/", first.viewer_port)), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn the_folder_is_free_again_after_a_stop_or_a_kill() {
    let dir = folder("Host");
    // SIGKILL: the OS drops the lock with the process.
    let mut killed = run(dir.path());
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let socket_home = control_socket(dir.path()).parent().unwrap().to_path_buf();
    assert!(socket_home.exists(), "a killed peer cannot clean up");
    // The next run takes the folder and removes what the killed one left.
    let mut next = run(dir.path());
    assert!(!socket_home.exists(), "{} left behind", socket_home.display());
    assert_eq!(stdout(&goop(&["cmd", "--dir", dir_arg(dir.path()), "!echo hi"])), "You said: hi\n");
    // SIGTERM: the peer stops cleanly and says nothing is running any more.
    let pid = next.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    while next.child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "goop run did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("run.lock")).unwrap(), "");
    let _again = run(dir.path());
}

#[test]
fn local_commands_get_the_running_peers_answers() {
    let dir = folder("Host");
    let function = dir.path().join("site/lua/functions/hello.lua");
    std::fs::write(&function, "function call(request) return 'version 1' end\n").unwrap();
    let peer = run(dir.path());
    // A save that does not compile: the running peer keeps version 1 (a fresh copy of the folder
    // would have no `hello` at all).
    std::fs::write(&function, "function call(request) return 'version 2' \n").unwrap();
    std::thread::sleep(Duration::from_secs(1)); // past the reload debounce
    let call = goop(&["call", "--dir", dir_arg(dir.path()), "hello"]);
    assert_eq!(stdout(&call), "{\"ok\":true,\"result\":\"version 1\"}\n", "{}", stderr(&call));
    assert!(call.status.success());
    let list = goop(&["list", "--dir", dir_arg(dir.path())]);
    assert!(stdout(&list).contains("\"name\":\"hello\""), "{}", stdout(&list));

    // The same process answers: the peer's kv counter and the local command's are one.
    std::fs::write(
        dir.path().join("site/lua/count.lua"),
        "function handle(args) return tostring(goop.kv.incr('n')) end\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    for expected in 1..=3 {
        let out = goop(&["cmd", "--dir", dir_arg(dir.path()), "!count"]);
        assert_eq!(stdout(&out), format!("{expected}\n"), "{}", stderr(&out));
    }
    // `goop data` as the owner goes through it too, and `--as` still picks the caller.
    let data = goop(&["data", "--dir", dir_arg(dir.path()), r#"{"op":"lua-call","function":"hello"}"#]);
    assert_eq!(stdout(&data), "{\"ok\":true,\"result\":\"version 1\"}\n");
    std::fs::write(&function, "function call(request) return goop.peer.id end\n").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let visitor = "12D3KooWvisitor";
    let call = goop(&["call", "--dir", dir_arg(dir.path()), "--as", visitor, "hello"]);
    assert_eq!(stdout(&call), format!("{{\"ok\":true,\"result\":\"{visitor}\"}}\n"), "{}", stderr(&call));
    drop(peer);

    // Stopped: the folder answers for itself again.
    std::fs::write(&function, "function call(request) return 'version 2' \n").unwrap();
    let call = goop(&["call", "--dir", dir_arg(dir.path()), "hello"]);
    assert_eq!(call.status.code(), Some(1));
    assert!(!stdout(&call).contains("version 1"), "{}", stdout(&call));
}

/// The control socket the running (or killed) peer of `dir` wrote into its lock file.
fn control_socket(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(dir.join("run.lock")).unwrap();
    let running: serde_json::Value = serde_json::from_str(&text).unwrap();
    running["control"].as_str().unwrap().into()
}

#[cfg(unix)]
#[test]
fn only_the_owner_can_reach_the_control_socket() {
    use std::os::unix::fs::PermissionsExt;
    let dir = folder("Host");
    let _peer = run(dir.path());
    let home = control_socket(dir.path()).parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{} has mode {mode:o}", home.display());
}
