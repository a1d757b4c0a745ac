//! Schedules: the scripts annotated `--- @every 30s` run their handler of one event, each on its
//! own period, from one timer thread. A run still going when the next is due is skipped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::script::{Origin, Script};

/// Longest the timer sleeps, so a reload that adds or changes a schedule is seen within it.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Runs scheduled scripts until dropped (see [`Engine::schedule`](crate::Engine::schedule)).
pub struct Schedule {
    stop: Option<mpsc::Sender<()>>,
    timer: Option<JoinHandle<()>>,
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.stop.take(); // wakes the timer, which then ends
        if let Some(timer) = self.timer.take() {
            let _ = timer.join();
        }
    }
}

/// One scheduled script: its version, period, next run, and whether a run is going.
struct Slot {
    id: u64,
    every: Duration,
    next: Instant,
    running: Arc<AtomicBool>,
}

/// Starts the timer. `scripts` gives the scheduled scripts now (`None` once the engine is gone);
/// `run` runs one on a thread of its own.
pub(crate) fn start(
    scripts: impl Fn() -> Option<Vec<Arc<Script>>> + Send + 'static,
    run: Arc<dyn Fn(&Script) + Send + Sync>,
) -> Schedule {
    let (stop, stopped) = mpsc::channel::<()>();
    let timer = std::thread::Builder::new().name("goop-schedule".into()).spawn(move || {
        let mut slots: HashMap<(Origin, String), Slot> = HashMap::new();
        while let Some(scripts) = scripts() {
            let now = Instant::now();
            slots.retain(|(origin, name), _| scripts.iter().any(|s| s.origin == *origin && s.name == *name));
            for script in scripts {
                let Some(every) = script.metadata.every else { continue };
                let slot = slots.entry((script.origin, script.name.clone())).or_insert_with(|| Slot {
                    id: script.id,
                    every,
                    next: now + every,
                    running: Arc::new(AtomicBool::new(false)),
                });
                if slot.id != script.id || slot.every != every {
                    // A new version starts its period afresh.
                    (slot.id, slot.every, slot.next) = (script.id, every, now + every);
                }
                if now < slot.next {
                    continue;
                }
                slot.next = now + every; // a late timer does not make up for missed runs
                if slot.running.swap(true, Ordering::AcqRel) {
                    tracing::debug!(target: "goop::script", "{}: still running, this run is skipped", script.name);
                    continue;
                }
                let (running, run) = (slot.running.clone(), run.clone());
                let spawned = std::thread::Builder::new().name("goop-scheduled".into()).spawn(move || {
                    run(&script);
                    running.store(false, Ordering::Release);
                });
                if let Err(e) = spawned {
                    slot.running.store(false, Ordering::Release);
                    tracing::warn!(target: "goop::script", "cannot start a scheduled run: {e}");
                }
            }
            let sleep = slots.values().map(|s| s.next.saturating_duration_since(now)).min().unwrap_or(MAX_SLEEP);
            if stopped.recv_timeout(sleep.min(MAX_SLEEP)) != Err(mpsc::RecvTimeoutError::Timeout) {
                break;
            }
        }
    });
    let timer = timer.map_err(|e| tracing::error!(target: "goop::script", "cannot start the schedule: {e}")).ok();
    Schedule { stop: Some(stop), timer }
}
