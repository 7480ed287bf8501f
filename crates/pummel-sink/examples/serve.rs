//! Runs the sink on 127.0.0.1:18090 for a bounded time, for throughput checks with wrk:
//!
//! ```text
//! cargo build --release -p pummel-sink --example serve
//! taskset -c 0 target/release/examples/serve 10 &          # seconds [threads] [delay]
//! taskset -c 1 wrk -t1 -c50 -d5s http://127.0.0.1:18090/
//! ```
//!
//! It prints the sink's counters when the time is up.

use std::process::ExitCode;
use std::time::Duration;

use pummel_sink::{Delay, SinkConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serve <seconds> [threads] [delay, e.g. 20ms or 10ms..50ms]";
    let Some(seconds) = args.first().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let threads = match args.get(1).map(|s| s.parse::<usize>()) {
        None => 1,
        Some(Ok(threads)) => threads,
        Some(Err(_)) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let delay = match args.get(2).map(|s| s.parse::<Delay>()) {
        None => Delay::None,
        Some(Ok(delay)) => delay,
        Some(Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let config = SinkConfig { threads, delay, ..SinkConfig::default() };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 18090));
    let sink = match pummel_sink::start(addr, config) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("serve: {e}: {}", std::error::Error::source(&e).map_or(String::new(), |s| s.to_string()));
            return ExitCode::from(3);
        }
    };
    eprintln!("sink listening on {} for {seconds} s", sink.local_addr());
    std::thread::sleep(Duration::from_secs(seconds));
    let stats = sink.stats();
    sink.shutdown();
    println!("{:?}", stats.snapshot());
    ExitCode::SUCCESS
}
