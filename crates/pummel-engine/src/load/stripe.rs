//! Which of a plan's items (open-model arrivals, users, connections) one shard takes.
//!
//! The plan's segment ([`Segment`]) owns some of the globally numbered items, its `j`-th being
//! [`Segment::item`]`(j)`; the segment's process stripes those over its threads, thread `t` of
//! `T` taking the items `j` with `j mod T = t`. So every item is taken by one thread of one
//! segment, whatever thread count each segment's process runs, and a thread's `n`-th item is
//! `item(n·T + t)`: O(1), no allocation, as the open model's arrival path needs. With `--segment
//! i/N` this is stripe `t·N + i − 1` of `T·N`, as it always was.

use crate::plan::Segment;

/// One shard's stripe of the plan's items: thread `thread` of `threads` of `segment`.
#[derive(Debug, Clone)]
pub struct Stripe {
    segment: Segment,
    thread: u64,
    threads: u64,
}

impl Stripe {
    /// Thread `thread` (0-based) of the `threads` that run `segment`.
    pub fn new(segment: &Segment, threads: usize, thread: usize) -> Stripe {
        let threads = threads.max(1) as u64;
        Stripe { segment: segment.clone(), thread: (thread as u64).min(threads - 1), threads }
    }

    /// Thread `thread` of `threads` of the whole plan.
    pub fn of_whole(threads: usize, thread: usize) -> Stripe {
        Stripe::new(&Segment::whole(), threads, thread)
    }

    /// The global number of this stripe's `n`-th item (0-based).
    pub fn item(&self, n: u64) -> u64 {
        self.segment.item(n * self.threads + self.thread)
    }

    /// True when global item `g` is this stripe's.
    pub fn owns(&self, g: u64) -> bool {
        self.segment.local(g).is_some_and(|j| j % self.threads == self.thread)
    }

    /// How many of the items `0..total` are this stripe's (every stripe of every segment adds
    /// up to `total`).
    pub fn share(&self, total: u64) -> u64 {
        self.segment.thread_share(total, self.threads as usize, self.thread as usize)
    }

    /// The plan's items per item of this stripe, on average (`threads / length`; `T·N` for
    /// `i/N`): a rate of the plan divided by it is this stripe's.
    pub fn spread(&self) -> f64 {
        let length = self.segment.length();
        (length.denom() as f64 * self.threads as f64) / length.numer().max(1) as f64
    }

    /// A number no other stripe of the plan has (its first item): what its random draws are
    /// seeded apart by.
    pub fn id(&self) -> u64 {
        self.item(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(text: &str, sequence: Option<&str>) -> Segment {
        Segment::parse(text, sequence).unwrap()
    }

    /// With `i/N`, thread `t` of `T` is stripe `t·N + i − 1` of `T·N`.
    #[test]
    fn parts_stripe_as_they_always_did() {
        for (n, threads) in [(1u64, 1usize), (2, 3), (3, 2), (4, 4)] {
            for i in 0..n {
                let seg = segment(&format!("{}/{n}", i + 1), None);
                for t in 0..threads {
                    let stripe = Stripe::new(&seg, threads, t);
                    let (s, stripes) = (t as u64 * n + i, threads as u64 * n);
                    assert!((0..40).all(|k| stripe.item(k) == k * stripes + s));
                    assert!((0..200).all(|g| stripe.owns(g) == (g % stripes == s)));
                    assert_eq!(stripe.spread(), stripes as f64);
                    assert_eq!(stripe.id(), s);
                }
            }
        }
    }

    /// Every item is one thread's of one segment, whatever the threads of each segment; each
    /// stripe's items rise and its share counts them.
    #[test]
    fn stripes_of_a_sequence_partition_the_items() {
        let sequence = Some("0,1/4,1/2,1");
        let stripes: Vec<Stripe> = [("0:1/4", 1), ("1/4:1/2", 3), ("1/2:1", 2)]
            .iter()
            .flat_map(|&(text, threads)| {
                let seg = segment(text, sequence);
                (0..threads).map(move |t| Stripe::new(&seg, threads, t))
            })
            .collect();
        let total = 1000;
        let mut seen = vec![0u32; total as usize];
        for stripe in &stripes {
            let share = stripe.share(total);
            let items: Vec<u64> = (0..share).map(|n| stripe.item(n)).collect();
            assert!(items.windows(2).all(|w| w[0] < w[1]));
            assert!(stripe.item(share) >= total);
            for &g in &items {
                assert!(stripe.owns(g));
                seen[g as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "every item exactly once");
        assert_eq!(stripes.iter().map(|s| s.share(total)).sum::<u64>(), total);
    }
}
