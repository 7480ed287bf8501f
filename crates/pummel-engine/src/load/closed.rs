//! The closed model: each user of a scenario is one task that walks the flow again and again
//! (`iterations` times, or until the scenario ends), keeping its connection, its WebSocket
//! session and its variables across steps and iterations.
//!
//! User `k` of a scenario runs on one shard: users are taken a connection's worth at a time
//! (one user over HTTP/1.1, `streams` users over HTTP/2), connection `c` to the shard whose
//! stripe owns item `c` (`load::stripe`: `c mod shards` for the whole plan), so that HTTP/2
//! users who share a connection share a shard and a quick `--http2 -c C` opens exactly C
//! connections over every thread of every segment. With stages of users, a user
//! is active only in its windows ([`user_windows`]).

use std::rc::Rc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::engine::shard::Shard;
use crate::exec::{ScenarioRun, closed_user};
use crate::flow::UserStage;
use crate::load::stripe::Stripe;
use crate::plan::ClosedLoad;

/// Starts this shard's users of a closed scenario and waits until they are done.
pub(crate) async fn run(shard: &Rc<Shard>, run: &Rc<ScenarioRun>, closed: &ClosedLoad) {
    let scenario = run.scenario();
    let total = closed.connections as u64;
    let per_connection = scenario.users_per_connection() as u64;
    let mut users = JoinSet::new();
    let stripe = shard.stripe();
    for k in (0..total).filter(|&k| stripe.owns(connection_of(k, per_connection))) {
        let windows = user_windows(&scenario.user_stages, scenario.ramp_up, k, total);
        users.spawn_local(closed_user(shard.clone(), run.clone(), k, windows));
    }
    while users.join_next().await.is_some() {}
}

/// The connection user `k` shares, when `per_connection` users share one: the item whose
/// stripe runs the user.
pub(crate) fn connection_of(k: u64, per_connection: u64) -> u64 {
    k / per_connection.max(1)
}

/// How many of `total` users `stripe` runs.
pub(crate) fn users_on(total: u64, per_connection: u64, stripe: &Stripe) -> u64 {
    let per_connection = per_connection.max(1);
    let connections = total.div_ceil(per_connection);
    let mine = stripe.share(connections);
    // The last connection may be partly filled.
    let partial = connections * per_connection - total;
    let has_last = connections > 0 && stripe.owns(connections - 1);
    if has_last { mine * per_connection - partial } else { mine * per_connection }
}

/// When user `k` of a closed scenario of `total` users is active, from the run's start:
/// `[start, end)` windows, `end` `None` for "until the scenario ends". Without stages, user
/// `k` starts `k/total` into the ramp-up and stays; with stages, it is active while the
/// stage's number of users (rising or falling linearly on a ramp) is above `k`.
pub fn user_windows(stages: &[UserStage], ramp_up: Duration, k: u64, total: u64) -> Vec<(Duration, Option<Duration>)> {
    if stages.is_empty() {
        return vec![(ramp_up.mul_f64(k as f64 / total.max(1) as f64), None)];
    }
    let mut windows: Vec<(Duration, Option<Duration>)> = Vec::new();
    let mut t0 = Duration::ZERO;
    for stage in stages {
        let t1 = t0 + stage.duration;
        let from = stage.ramp_from.unwrap_or(stage.users) as f64;
        let to = stage.users as f64;
        let kf = k as f64;
        // The part of [t0, t1) where from + (to - from)·s > k, s = (t - t0)/duration.
        let active = if from == to {
            (kf < to).then_some((t0, t1))
        } else if to > from {
            (kf < to).then(|| (t0 + stage.duration.mul_f64(((kf - from) / (to - from)).clamp(0.0, 1.0)), t1))
        } else {
            (kf < from).then(|| (t0, t0 + stage.duration.mul_f64(((from - kf) / (from - to)).clamp(0.0, 1.0))))
        };
        if let Some((start, end)) = active.filter(|(s, e)| s < e) {
            match windows.last_mut() {
                Some((_, Some(last_end))) if *last_end == start => *last_end = end,
                _ => windows.push((start, Some(end))),
            }
        }
        t0 = t1;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_sharing_a_connection_share_a_shard() {
        let owner =
            |k, per, shards| (0..shards).find(|&i| Stripe::of_whole(shards, i).owns(connection_of(k, per))).unwrap();
        // 12 HTTP/2 users, 4 per connection, 2 shards: connections 0 and 2 on shard 0.
        let on = |k| owner(k, 4, 2);
        assert_eq!((0..12).map(on).collect::<Vec<_>>(), [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
        let users_of = |total, per, shards, i| users_on(total, per, &Stripe::of_whole(shards, i));
        assert_eq!((users_of(12, 4, 2, 0), users_of(12, 4, 2, 1)), (8, 4));
        // HTTP/1.1: every other user.
        assert_eq!((0..5).map(|k| owner(k, 1, 2)).collect::<Vec<_>>(), [0, 1, 0, 1, 0]);
        for (total, per, shards) in [(10u64, 3u64, 2usize), (7, 1, 3), (1, 100, 4), (100, 7, 3)] {
            let counted: u64 = (0..shards).map(|i| users_of(total, per, shards, i)).sum();
            assert_eq!(counted, total, "{total} users, {per} per connection, {shards} shards");
            for i in 0..shards {
                let owned = (0..total).filter(|&k| owner(k, per, shards) == i).count() as u64;
                assert_eq!(users_of(total, per, shards, i), owned);
            }
        }
        // Over segments of a sequence too: 3 threads of 1/4:1/2, 2 of 1/2:1, 1 of 0:1/4.
        let sequence = Some("0,1/4,1/2,1");
        let stripes: Vec<Stripe> = [("0:1/4", 1), ("1/4:1/2", 3), ("1/2:1", 2)]
            .iter()
            .flat_map(|&(text, threads)| {
                let segment = crate::plan::Segment::parse(text, sequence).unwrap();
                (0..threads).map(move |t| Stripe::new(&segment, threads, t))
            })
            .collect();
        for (total, per) in [(10u64, 3u64), (7, 1), (1, 100), (100, 7), (41, 4)] {
            assert_eq!(stripes.iter().map(|s| users_on(total, per, s)).sum::<u64>(), total);
            for s in &stripes {
                let owned = (0..total).filter(|&k| s.owns(connection_of(k, per))).count() as u64;
                assert_eq!(users_on(total, per, s), owned, "{total} users, {per} per connection, {s:?}");
            }
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn without_stages_users_start_along_the_ramp_up_and_stay() {
        assert_eq!(user_windows(&[], secs(10), 0, 10), vec![(secs(0), None)]);
        assert_eq!(user_windows(&[], secs(10), 5, 10), vec![(secs(5), None)]);
        assert_eq!(user_windows(&[], Duration::ZERO, 9, 10), vec![(secs(0), None)]);
    }

    #[test]
    fn user_stages_give_each_user_its_active_windows() {
        // 0 → 10 users over 10 s, 10 for 10 s, down to 0 over 10 s, then 4 for 10 s.
        let stages = [
            UserStage { users: 10, duration: secs(10), ramp_from: Some(0) },
            UserStage { users: 10, duration: secs(10), ramp_from: None },
            UserStage { users: 0, duration: secs(10), ramp_from: Some(10) },
            UserStage { users: 4, duration: secs(10), ramp_from: None },
        ];
        // User 0 joins at once, leaves when the ramp down passes 0 users (at the end), and is
        // back for the last level: windows touch at 30 s, so they merge.
        assert_eq!(user_windows(&stages, Duration::ZERO, 0, 10), vec![(secs(0), Some(secs(40)))]);
        // User 5 joins when the ramp reaches 5 users (5 s) and leaves when it falls to 5 (25 s).
        assert_eq!(user_windows(&stages, Duration::ZERO, 5, 10), vec![(secs(5), Some(secs(25)))]);
        // User 9: 9 s to 21 s only.
        assert_eq!(user_windows(&stages, Duration::ZERO, 9, 10), vec![(secs(9), Some(secs(21)))]);
        // User 3 leaves during the ramp down and comes back for the level of 4.
        assert_eq!(
            user_windows(&stages, Duration::ZERO, 3, 10),
            vec![(secs(3), Some(secs(27))), (secs(30), Some(secs(40)))]
        );
        // The number active at any time follows the stages.
        let active_at = |t: Duration| {
            (0..10)
                .filter(|&k| {
                    user_windows(&stages, Duration::ZERO, k, 10)
                        .iter()
                        .any(|(start, end)| *start <= t && end.is_none_or(|e| t < e))
                })
                .count()
        };
        assert_eq!(active_at(Duration::from_millis(2500)), 3);
        assert_eq!(active_at(secs(15)), 10);
        assert_eq!(active_at(Duration::from_millis(27500)), 3);
        assert_eq!(active_at(secs(35)), 4);
    }
}
