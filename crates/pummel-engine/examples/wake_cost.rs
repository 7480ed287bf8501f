//! What one timer wake-up costs this machine: the open model's timer ([`ArrivalTimer`]) woken
//! RATE times a second for DURATION seconds, nothing else. `bench/open.sh` runs it pinned to
//! the generator's core: CPU per wake is the floor of CPU per request of any generator that
//! sends each arrival on time.
//!
//! Usage: `wake_cost [RATE] [SECONDS]` (defaults 5000, 5). Prints `wakes N cpu_seconds S
//! per_wake_us U late_p50_us L`.

use std::time::Duration;

use pummel_engine::load::timer::ArrivalTimer;
use tokio::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000.0);
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let wakes = (rate * seconds) as u64;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cpu = cpu_time::ProcessTime::now();
    let mut late = runtime.block_on(async {
        let timer = ArrivalTimer::new();
        let start = Instant::now();
        let mut late = Vec::with_capacity(wakes as usize);
        for n in 1..=wakes {
            let due = start + Duration::from_secs_f64(n as f64 / rate);
            timer.sleep_until(due).await;
            late.push(Instant::now().saturating_duration_since(due));
        }
        late
    });
    let spent = cpu.elapsed().as_secs_f64();
    late.sort();
    let p50 = late.get(late.len() / 2).copied().unwrap_or_default();
    println!(
        "wakes {wakes} cpu_seconds {spent:.3} per_wake_us {:.1} late_p50_us {:.0}",
        spent / wakes.max(1) as f64 * 1e6,
        p50.as_secs_f64() * 1e6
    );
    Ok(())
}
