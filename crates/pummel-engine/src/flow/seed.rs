//! Reproducible randomness: a run's one seed, and every random choice drawn from it.
//!
//! A run has one seed (`--seed N`, `seed = N` in a plan, or a fresh one written in its results),
//! and everything random in it derives from that seed: Poisson arrivals per scenario and shard,
//! each virtual user's own generator ([`user_rng`]: its think times, `choose` branches, random
//! feeder rows, and the plan functions `random_int`, `random_string` and `uuid` its templates
//! call). A user's generator depends only on the seed, its scenario and its number, never on
//! timing or on the other users, so the same seed gives every user the same sequence of
//! requests, run after run.
//!
//! Templates are rendered by functions that cannot take a generator as an argument (minijinja
//! calls them by name), so a render borrows the user's generator for its duration
//! ([`rendering_with`]) through a thread-local slot: each shard renders on its own thread, one
//! render at a time, with no await inside.

use std::cell::RefCell;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

thread_local! {
    /// The generator of the user whose templates are being rendered on this thread.
    static RENDER_RNG: RefCell<Option<SmallRng>> = const { RefCell::new(None) };
}

/// A seed for a run that was given none.
pub fn fresh_seed() -> u64 {
    rand::rng().random()
}

/// Mixes `values` into `seed` (SplitMix64 finalizer on each step): nearby inputs give
/// unrelated outputs, so users 1 and 2 do not draw related sequences.
pub fn mix(seed: u64, values: &[u64]) -> u64 {
    values.iter().fold(seed, |acc, v| splitmix(acc ^ splitmix(*v)))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of user `user` of scenario `scenario` in a run seeded with `seed`.
pub fn user_rng(seed: u64, scenario: usize, user: u64) -> SmallRng {
    SmallRng::seed_from_u64(mix(seed, &[scenario as u64, user]))
}

/// Runs `render` with `rng` as the source of the plan functions' randomness, and hands the
/// generator back, advanced by what the render drew.
pub fn rendering_with<R>(rng: SmallRng, render: impl FnOnce() -> R) -> (R, SmallRng) {
    let previous = RENDER_RNG.with(|slot| slot.borrow_mut().replace(rng));
    let result = render();
    let back = RENDER_RNG.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), previous));
    // The slot held our generator for the whole render, so it is there to take back.
    (result, back.unwrap_or_else(|| SmallRng::seed_from_u64(0)))
}

/// Draws from the generator of the render under way, or from the thread's own outside one
/// (a render that no user asked for: unseeded).
pub(crate) fn draw<R>(f: impl FnOnce(&mut dyn RngCore) -> R) -> R {
    RENDER_RNG.with(|slot| match slot.borrow_mut().as_mut() {
        Some(rng) => f(rng),
        None => f(&mut rand::rng()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_draws_the_same_sequence_for_the_same_seed() {
        let draw_ten = |seed, user| {
            let mut rng = user_rng(seed, 0, user);
            (0..10).map(|_| rng.random::<u32>()).collect::<Vec<_>>()
        };
        assert_eq!(draw_ten(7, 3), draw_ten(7, 3));
        assert_ne!(draw_ten(7, 3), draw_ten(7, 4), "another user");
        assert_ne!(draw_ten(7, 3), draw_ten(8, 3), "another seed");
        assert_ne!(user_rng(7, 0, 1).random::<u64>(), user_rng(7, 1, 1).random::<u64>(), "another scenario");
    }

    #[test]
    fn a_render_draws_from_the_users_generator_and_advances_it() {
        let (first, rng) = rendering_with(user_rng(1, 0, 0), || draw(|r| r.next_u64()));
        let (second, _) = rendering_with(rng, || draw(|r| r.next_u64()));
        let mut replay = user_rng(1, 0, 0);
        assert_eq!((first, second), (replay.next_u64(), replay.next_u64()));
        // Outside a render the slot is empty again.
        assert!(RENDER_RNG.with(|slot| slot.borrow().is_none()));
    }
}
