//! When open-model requests start.
//!
//! The schedule is pure arithmetic: given rate stages, the arrival process and which shard is
//! asking, it yields the intended start offsets (from the run's start) of that shard's requests.
//! Shards interleave so that, together, they produce exactly the requested rate: with uniform
//! arrivals, a shard's `n`-th slot is the plan's slot `stripe.item(n)` (`load::stripe`: every
//! `n`-th slot from slot `i` for shard `i` of `n` of the whole plan), so every process of every
//! segment together sends `rate × duration` requests no matter how many shards share it.
//! Poisson arrivals give each shard an independent Poisson process of its share of the rate
//! (`rate / stripe.spread()`), whose sum is a Poisson process of `rate`.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp};

use crate::load::stripe::Stripe;
use crate::plan::{Arrival, RateStage};

/// The intended start times of one shard's open-model requests.
#[derive(Debug)]
pub struct Arrivals {
    stages: Vec<RateStage>,
    arrival: Arrival,
    /// Which of the plan's slots are this shard's.
    stripe: Stripe,
    /// The plan's slots per slot of this shard (see [`Stripe::spread`]).
    spread: f64,
    /// Index of the current stage.
    stage: usize,
    /// Start of the current stage, seconds from the run's start.
    stage_start: f64,
    /// Uniform: index of the next slot of this shard within the stage.
    slot: u64,
    /// Poisson: time of the previous arrival, seconds from the run's start.
    last: f64,
    rng: SmallRng,
}

impl Arrivals {
    /// The arrivals of the shard whose stripe of the plan's slots is `stripe`.
    pub fn new(stages: &[RateStage], arrival: Arrival, stripe: &Stripe, seed: u64) -> Self {
        Arrivals {
            stages: stages.to_vec(),
            arrival,
            stripe: stripe.clone(),
            spread: stripe.spread(),
            stage: 0,
            stage_start: 0.0,
            slot: 0,
            last: 0.0,
            rng: SmallRng::seed_from_u64(seed ^ stripe.id().wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }

    /// The index of the stage the last returned arrival belongs to.
    pub fn current_stage(&self) -> usize {
        self.stage
    }

    fn next_in_stage(&mut self, stage: &RateStage) -> Option<f64> {
        let end = self.stage_start + stage.duration.as_secs_f64();
        if let Some(from) = stage.ramp_from {
            return self.next_in_ramp(stage, from, end);
        }
        let at = match self.arrival {
            Arrival::Uniform => {
                let global_slot = self.stripe.item(self.slot);
                self.slot += 1;
                self.stage_start + global_slot as f64 / stage.rate
            }
            Arrival::Poisson => {
                let per_shard = stage.rate / self.spread;
                let gap = Exp::new(per_shard).map(|e| e.sample(&mut self.rng)).unwrap_or(f64::INFINITY);
                self.last += gap;
                self.last
            }
        };
        (at < end).then_some(at)
    }
}

impl Arrivals {
    /// A linear ramp from `from` to `stage.rate` req/s: the expected count by time `t` into the
    /// stage is `N(t) = from·t + (rate − from)·t²/(2T)`. Uniform arrivals put slot `k` where
    /// `N(t) = k`; Poisson arrivals draw unit-rate gaps in count space and map them back through
    /// the inverse of `N` (time rescaling), which gives exactly the ramp's varying intensity.
    fn next_in_ramp(&mut self, stage: &RateStage, from: f64, end: f64) -> Option<f64> {
        let length = stage.duration.as_secs_f64();
        let count = match self.arrival {
            Arrival::Uniform => {
                let global_slot = self.stripe.item(self.slot);
                self.slot += 1;
                global_slot as f64
            }
            Arrival::Poisson => {
                let gap = Exp::new(1.0).map(|e| e.sample(&mut self.rng)).unwrap_or(f64::INFINITY);
                // `last` holds this shard's position in count space within the stage.
                self.last += gap;
                self.last * self.spread
            }
        };
        let slope = (stage.rate - from) / length.max(1e-9);
        let t = if slope.abs() < 1e-12 {
            if from <= 0.0 {
                return None;
            }
            count / from
        } else {
            let discriminant = from * from + 2.0 * slope * count;
            if discriminant < 0.0 {
                return None;
            }
            (-from + discriminant.sqrt()) / slope
        };
        let at = self.stage_start + t;
        (t >= 0.0 && at < end).then_some(at)
    }
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        while let Some(stage) = self.stages.get(self.stage).cloned() {
            if let Some(at) = self.next_in_stage(&stage) {
                return Some(Duration::from_secs_f64(at));
            }
            self.stage_start += stage.duration.as_secs_f64();
            self.stage += 1;
            self.slot = 0;
            // Levels keep Poisson time in `last`; ramps keep their count-space position.
            let next_is_ramp = self.stages.get(self.stage).is_some_and(|s| s.ramp_from.is_some());
            self.last = if next_is_ramp { 0.0 } else { self.stage_start };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(rate: f64, secs: f64) -> RateStage {
        RateStage::level(rate, Duration::from_secs_f64(secs))
    }

    #[test]
    fn uniform_shards_together_send_rate_times_duration() {
        for shards in 1..=5 {
            let total: usize = (0..shards)
                .map(|i| {
                    Arrivals::new(&[stage(2000.0, 3.0)], Arrival::Uniform, &Stripe::of_whole(shards, i), 1).count()
                })
                .sum();
            assert_eq!(total, 6000, "{shards} shards");
        }
    }

    #[test]
    fn poisson_arrivals_repeat_for_the_same_seed() {
        let take = |seed| {
            Arrivals::new(&[stage(500.0, 1.0)], Arrival::Poisson, &Stripe::of_whole(1, 0), seed).collect::<Vec<_>>()
        };
        assert_eq!(take(7), take(7));
        assert_ne!(take(7), take(8));
    }

    #[test]
    fn uniform_arrivals_are_evenly_spaced_and_interleaved() {
        let a: Vec<_> = Arrivals::new(&[stage(10.0, 1.0)], Arrival::Uniform, &Stripe::of_whole(2, 0), 1).collect();
        let b: Vec<_> = Arrivals::new(&[stage(10.0, 1.0)], Arrival::Uniform, &Stripe::of_whole(2, 1), 1).collect();
        assert_eq!(a.len(), 5);
        assert_eq!(a[1] - a[0], Duration::from_millis(200));
        assert_eq!(b[0], Duration::from_millis(100));
    }

    #[test]
    fn stages_follow_each_other() {
        let arrivals: Vec<_> =
            Arrivals::new(&[stage(10.0, 1.0), stage(100.0, 1.0)], Arrival::Uniform, &Stripe::of_whole(1, 0), 1)
                .collect();
        assert_eq!(arrivals.len(), 110);
        assert!(arrivals.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(arrivals[10], Duration::from_secs(1));
    }

    #[test]
    fn a_linear_ramp_sends_its_average_rate_rising_evenly() {
        let ramp = RateStage { rate: 200.0, duration: Duration::from_secs(10), ramp_from: Some(0.0) };
        for shards in 1..=3 {
            let all: Vec<Vec<Duration>> = (0..shards)
                .map(|i| {
                    Arrivals::new(std::slice::from_ref(&ramp), Arrival::Uniform, &Stripe::of_whole(shards, i), 1)
                        .collect()
                })
                .collect();
            let total: usize = all.iter().map(Vec::len).sum();
            // (0 + 200) / 2 × 10 s = 1,000 requests.
            assert!((999..=1001).contains(&total), "{shards} shards: {total}");
        }
        let arrivals: Vec<Duration> =
            Arrivals::new(std::slice::from_ref(&ramp), Arrival::Uniform, &Stripe::of_whole(1, 0), 1).collect();
        let in_second = |s: u64| arrivals.iter().filter(|a| a.as_secs() == s).count() as f64;
        // The rate at the middle of second s is 20·(s + 0.5).
        for s in [0, 4, 9] {
            assert!((in_second(s) - 20.0 * (s as f64 + 0.5)).abs() <= 1.0, "second {s}: {}", in_second(s));
        }
        let poisson: usize = (0..2)
            .map(|i| Arrivals::new(std::slice::from_ref(&ramp), Arrival::Poisson, &Stripe::of_whole(2, i), 5).count())
            .sum();
        assert!((900..=1100).contains(&poisson), "{poisson}");
        let down = RateStage { rate: 0.0, duration: Duration::from_secs(10), ramp_from: Some(100.0) };
        let n = Arrivals::new(&[down], Arrival::Uniform, &Stripe::of_whole(1, 0), 1).count();
        assert!((499..=501).contains(&n), "{n}");
    }

    #[test]
    fn poisson_averages_the_rate() {
        let total: usize = (0..2)
            .map(|i| Arrivals::new(&[stage(5000.0, 4.0)], Arrival::Poisson, &Stripe::of_whole(2, i), 7).count())
            .sum();
        // 20,000 expected; a Poisson count has sd ≈ 141, so ±2 % is more than 2.8 sd.
        assert!((19_600..=20_400).contains(&total), "{total}");
    }

    /// Segments of a plan run by processes of different thread counts stripe the arrivals
    /// (`load::stripe`): together they are exactly the whole schedule, for `i/N` (stripe
    /// `t·N + i` of `T·N`) and for the segments of a sequence alike.
    #[test]
    fn segments_with_different_thread_counts_deal_out_every_arrival_once() {
        let stages =
            [stage(300.0, 2.0), RateStage { rate: 50.0, duration: Duration::from_secs(2), ramp_from: Some(400.0) }];
        let whole: Vec<Duration> = Arrivals::new(&stages, Arrival::Uniform, &Stripe::of_whole(1, 0), 1).collect();
        for (parts, sequence) in [
            (vec![("1/2", 1), ("2/2", 3)], None),
            (vec![("0:1/4", 1), ("1/4:1/2", 3), ("1/2:1", 2)], Some("0,1/4,1/2,1")),
        ] {
            let mut all: Vec<Duration> = Vec::new();
            for (text, threads) in parts {
                let segment = crate::plan::Segment::parse(text, sequence).unwrap();
                for t in 0..threads {
                    all.extend(Arrivals::new(&stages, Arrival::Uniform, &Stripe::new(&segment, threads, t), 1));
                }
            }
            all.sort();
            assert_eq!(all, whole, "{sequence:?}");
        }
        // Segment 2 of 2 on three threads is stripes 1, 3 and 5 of 6.
        let mut by_hand: Vec<Duration> = Vec::new();
        let mut by_segment: Vec<Duration> = Vec::new();
        let second = crate::plan::Segment::parse("2/2", None).unwrap();
        for t in 0..3 {
            by_hand.extend(Arrivals::new(&stages, Arrival::Uniform, &Stripe::of_whole(6, t * 2 + 1), 1));
            by_segment.extend(Arrivals::new(&stages, Arrival::Uniform, &Stripe::new(&second, 3, t), 1));
        }
        assert_eq!(by_hand, by_segment);
    }
}
