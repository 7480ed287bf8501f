//! When the open model's arrivals leave: a timer with microsecond resolution.
//!
//! tokio's timer rounds every deadline up to its 1 ms wheel, so an arrival due at 10.2 ms left
//! at 11 ms: up to 1 ms of schedule lag, all of it counted in the request's latency (that lag
//! is the generator's, and latency from the intended start honestly includes it). At
//! `-r 5000` against a target answering in 50 µs that made latency p50 ~13× service time.
//!
//! The choice, measured on the project's VM (BENCHMARKS.md, "Open model"):
//! - a `timerfd` (`CLOCK_MONOTONIC`, armed per arrival, registered with the runtime like a
//!   socket) wakes the dispatcher within tens of µs of the due time, and the runtime keeps
//!   running everything else while it waits. This is what [`ArrivalTimer`] does;
//! - `epoll_pwait2` would need a runtime of our own; a hand-run timer wheel still needs a
//!   wake-up source as fine as this one;
//! - kernel receive timestamps (`SO_TIMESTAMPNS`) would let answers be read in batches at the
//!   next arrival instead of when they come, saving a wake-up per request, but need a
//!   connection mode outside the runtime's readiness (and `recvmsg` with control messages):
//!   not done; the per-wake cost that decides it is in BENCHMARKS.md.
//!
//! An arrival due in less than [`SPIN_BELOW`] is not worth arming the timer (two syscalls and
//! a wake-up): the dispatcher lets the other ready tasks run until it is due instead, without
//! asking the runtime to poll for I/O each time (`yield_now` would: an `epoll_wait` per turn,
//! two per arrival at 100,000 a second); the runtime still polls every few dozen tasks, so
//! answers are read meanwhile. Measured (bench/open.sh): 5 µs lets high rates fall behind
//! sooner than 20 µs. A timerfd that cannot be created (not Linux, no fds left) falls back
//! to tokio's timer, and says so through [`ArrivalTimer::is_precise`].

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Arrivals due sooner than this are waited for by yielding to the runtime, not by a timer.
pub const SPIN_BELOW: Duration = Duration::from_micros(20);

/// Sleeps until an arrival is due, to the microsecond.
pub struct ArrivalTimer {
    /// The timerfd; `None` when none could be made (then tokio's 1 ms timer is used).
    fd: Option<AsyncFd<OwnedFd>>,
}

impl Default for ArrivalTimer {
    fn default() -> Self {
        ArrivalTimer::new()
    }
}

impl ArrivalTimer {
    /// A timer on this thread's runtime (call it inside one).
    pub fn new() -> ArrivalTimer {
        ArrivalTimer { fd: timerfd().ok() }
    }

    /// A timer on tokio's 1 ms wheel: what tests on tokio's paused clock use.
    #[cfg(test)]
    pub(crate) fn coarse() -> ArrivalTimer {
        ArrivalTimer { fd: None }
    }

    /// True when arrivals leave within microseconds of their due time (a timerfd).
    pub fn is_precise(&self) -> bool {
        self.fd.is_some()
    }

    /// Returns once `due` has come.
    pub async fn sleep_until(&self, due: Instant) {
        let Some(fd) = &self.fd else { return tokio::time::sleep_until(due).await };
        loop {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if left < SPIN_BELOW {
                yield_to_ready_tasks().await;
                continue;
            }
            if arm(fd.get_ref(), left).is_err() {
                return tokio::time::sleep_until(due).await;
            }
            match fd.readable().await {
                Ok(mut guard) => {
                    // Consume the expiration (or learn there was none yet) and forget the
                    // readiness either way: the next expiration is a new edge, so a stale
                    // "readable" never makes the next sleep arm the timer twice.
                    let mut expirations = [0u8; 8];
                    let _ = rustix::io::read(fd.get_ref(), &mut expirations);
                    guard.clear_ready();
                }
                Err(_) => return tokio::time::sleep_until(due).await,
            }
        }
    }
}

/// Lets every other task that is ready run once, then continues. Unlike `tokio::task::
/// yield_now`, which asks the runtime to poll for I/O first (an `epoll_wait` syscall per
/// call: at 100,000 arrivals a second, two per arrival), this only goes to the back of the
/// run queue; the runtime still polls for I/O every few dozen tasks, so answers are read
/// within microseconds.
async fn yield_to_ready_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

/// A non-blocking `CLOCK_MONOTONIC` timerfd registered with the runtime.
fn timerfd() -> io::Result<AsyncFd<OwnedFd>> {
    let fd = rustix::time::timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
    register(fd)
}

/// Registers the timerfd with the runtime. The `AsyncFd` owns the fd and never hands it out
/// mutably, so it stays the same open file until dropped: the safe constructor is sound here
/// (see `dial::tcp::register`).
#[allow(deprecated)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

/// Arms `fd` to expire once, `after` from now.
fn arm(fd: &OwnedFd, after: Duration) -> io::Result<()> {
    let value = Timespec { tv_sec: after.as_secs() as i64, tv_nsec: i64::from(after.subsec_nanos()) };
    let spec = Itimerspec { it_interval: Timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
    rustix::time::timerfd_settime(fd, TimerfdTimerFlags::empty(), &spec)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timer_is_armed_to_the_microsecond_not_the_millisecond() {
        // The raw timerfd, not registered with a runtime.
        let fd = rustix::time::timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK).unwrap();
        arm(&fd, Duration::from_micros(10_300)).unwrap();
        let left = rustix::time::timerfd_gettime(&fd).unwrap().it_value;
        let left = Duration::new(left.tv_sec as u64, left.tv_nsec as u32);
        // What is left is below 10.3 ms, not rounded up to 11 ms as a 1 ms wheel would be.
        assert!(left <= Duration::from_micros(10_300) && left > Duration::from_millis(9), "{left:?}");
    }

    #[test]
    fn sleeps_never_end_early_and_do_end() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let timer = ArrivalTimer::new();
            assert!(timer.is_precise(), "timerfd is available on Linux");
            for step in 1..=20u64 {
                // Deadlines that do not fall on a millisecond, some below the spin threshold.
                let due = Instant::now() + Duration::from_micros(step * 37);
                timer.sleep_until(due).await;
                assert!(Instant::now() >= due);
            }
        });
    }

    #[test]
    fn a_deadline_in_the_past_returns_at_once() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let timer = ArrivalTimer::new();
            let started = Instant::now();
            timer.sleep_until(started - Duration::from_millis(5)).await;
            timer.sleep_until(started).await;
            assert!(started.elapsed() < Duration::from_millis(50));
        });
    }

    #[tokio::test(start_paused = true)]
    async fn the_coarse_timer_follows_tokios_clock() {
        let timer = ArrivalTimer::coarse();
        let due = Instant::now() + Duration::from_secs(3600);
        timer.sleep_until(due).await;
        assert!(Instant::now() >= due);
    }
}
