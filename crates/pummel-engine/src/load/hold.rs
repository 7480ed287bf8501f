//! The hold model (`pummel hold`): many connections opened at a paced rate and kept open until
//! the run ends — the connection stress test of a server.
//!
//! Each shard opens its share of the connections at its share of the open rate. Every held
//! connection is one small task (a held user) whose flow is one `hold` step (`exec::hold`):
//! connect, maybe send, then keep the connection in its mode. With `reopen`, a user opens
//! again after a close or a failure; re-opens go through the same pacing as the first opens,
//! so the target never sees more than the open rate. Connections that closed for good do not
//! end the run: it lasts its duration.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::engine::shard::Shard;
use crate::exec::{ScenarioRun, held_user};
use crate::plan::HoldLoad;

/// Hands out opening times `1/rate` apart, never in the past: a user reserves its time, then
/// sleeps until it.
pub(crate) struct Pacer {
    period: Duration,
    next: Cell<Instant>,
}

impl Pacer {
    /// Openings `1/rate` apart, the first one now.
    pub(crate) fn new(rate: f64) -> Pacer {
        Pacer { period: Duration::from_secs_f64(1.0 / rate), next: Cell::new(Instant::now()) }
    }

    /// The next opening time.
    pub(crate) fn reserve(&self) -> Instant {
        let at = self.next.get().max(Instant::now());
        self.next.set(at + self.period);
        at
    }
}

/// Runs this shard's share of the hold until the scenario stops.
pub(crate) async fn run(shard: &Rc<Shard>, run: &Rc<ScenarioRun>, load: &HoldLoad) {
    let mine = shard.share_of(load.connections as u64);
    if mine > 0 {
        let pacer = Rc::new(Pacer::new(load.open_rate * mine as f64 / load.connections as f64));
        let mut users = JoinSet::new();
        for _ in 0..mine {
            users.spawn_local(held(shard.clone(), run.clone(), pacer.clone(), load.reopen));
        }
        while users.join_next().await.is_some() {}
    }
    run.stop.cancelled().await;
}

/// One held connection, opened again after a close when `reopen` is set; ends when the run
/// stops.
async fn held(shard: Rc<Shard>, run: Rc<ScenarioRun>, pacer: Rc<Pacer>, reopen: bool) {
    loop {
        let at = pacer.reserve();
        tokio::select! {
            biased;
            () = run.stop.cancelled() => return,
            () = sleep_until(at) => {}
        }
        tokio::select! {
            biased;
            () = run.stop.cancelled() => return,
            () = held_user(&shard, &run, at) => {}
        }
        if !reopen {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn openings_are_paced_and_never_in_the_past() {
        let pacer = Pacer::new(100.0);
        let first = pacer.reserve();
        let second = pacer.reserve();
        assert_eq!(second - first, Duration::from_millis(10));
        tokio::time::advance(Duration::from_secs(1)).await;
        // Behind by a second: the next opening is now, not a burst of the missed ones.
        let late = pacer.reserve();
        assert!(late >= Instant::now());
        assert_eq!(pacer.reserve() - late, Duration::from_millis(10));
    }
}
