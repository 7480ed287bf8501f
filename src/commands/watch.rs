//! `pummel watch`: the target's side of a test, from /proc, once a second. One line per sample
//! (open fds against the limit, threads, CPU, memory, TCP sockets by state, the system's
//! listen-queue drops) and a line per warning as it begins; `--json` prints the samples as
//! JSON lines instead, the same objects that go into a results file's timeline.
//!
//! It stops after `--duration`, on Ctrl-C (exit 0 either way), or when the process exits
//! (exit 0, with a message); a process that cannot be found or read exits 3.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{ArgGroup, Args};
use pummel_engine::engine::RunControl;
use pummel_results::duration::parse_duration;
use pummel_system::watch::{TargetWatch, WatchError, WatchSample, listening_processes};

use super::{CliError, ExitStatus, install_interrupt_handler, print_stdout};

/// The shortest time between samples: /proc reads of a busy target cost milliseconds.
const MIN_EVERY: Duration = Duration::from_millis(100);
/// How often the wait between samples looks at Ctrl-C.
const POLL: Duration = Duration::from_millis(50);

/// Flags of `pummel watch`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["pid", "port"])))]
pub struct WatchArgs {
    /// The process to watch.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Watch the process listening on this TCP port (the busiest one, if several share it).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Time between samples.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub every: String,
    /// Stop after this long (default: until Ctrl-C or the process exits).
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Print each sample as one JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pummel watch`.
pub fn run(args: WatchArgs) -> Result<ExitStatus, CliError> {
    let usage = |e: anyhow::Error| CliError::usage(e);
    let every = parse_duration(&args.every).map_err(|e| usage(anyhow!("--every: {e}")))?;
    if every < MIN_EVERY {
        return Err(usage(anyhow!("--every {}: at least {}ms between samples", args.every, MIN_EVERY.as_millis())));
    }
    let duration =
        args.duration.as_deref().map(parse_duration).transpose().map_err(|e| usage(anyhow!("--duration: {e}")))?;

    let mut watch = start(&args)?;
    eprintln!(
        "watching PID {} ({}) every {}{}; Ctrl-C stops",
        watch.pid(),
        watch.name(),
        args.every,
        duration.map(|_| format!(" for {}", args.duration.as_deref().unwrap_or_default())).unwrap_or_default()
    );

    let control = RunControl::new();
    install_interrupt_handler(&control);
    let started = Instant::now();
    for tick in 1u32.. {
        let at = every.saturating_mul(tick);
        if duration.is_some_and(|d| at > d) || !wait_until(started + at, &control) {
            break;
        }
        match watch.sample() {
            Ok(sample) => print_stdout(&render(&sample, at, every, args.json)),
            Err(WatchError::Gone { pid }) => {
                eprintln!(
                    "PID {pid} ({}) exited; the watch ends after {:.1}s",
                    watch.name(),
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            Err(e) => return Err(CliError::internal(anyhow!(e).context(format!("watching PID {}", watch.pid())))),
        }
    }
    Ok(ExitStatus::Pass)
}

/// Finds the target; a missing or unreadable one cannot be watched (exit 3).
fn start(args: &WatchArgs) -> Result<TargetWatch, CliError> {
    let cannot = |e: WatchError| CliError::cannot_start(anyhow!(e));
    match (args.pid, args.port) {
        (Some(pid), _) => TargetWatch::for_pid(pid).map_err(cannot),
        (None, Some(port)) => {
            // What TargetWatch::for_listening_port does, keeping the list to name the others.
            let listeners = listening_processes(port).map_err(cannot)?;
            let busiest = listeners.first().ok_or_else(|| cannot(WatchError::NoListener { port }))?;
            let watch = TargetWatch::for_pid(busiest.pid).map_err(cannot)?;
            eprintln!("port {port} is served by PID {} ({})", watch.pid(), watch.name());
            let others: Vec<String> =
                listeners.iter().filter(|l| l.pid != watch.pid()).map(|l| l.pid.to_string()).collect();
            if !others.is_empty() {
                eprintln!(
                    "port {port} is also held by PID {} (the busiest is watched; use --pid to choose)",
                    others.join(", ")
                );
            }
            Ok(watch)
        }
        (None, None) => Err(CliError::usage(anyhow!("give --pid PID or --port PORT"))),
    }
}

/// Sleeps until `deadline`, looking at Ctrl-C; false when interrupted.
fn wait_until(deadline: Instant, control: &RunControl) -> bool {
    loop {
        if control.is_interrupted() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(POLL));
    }
}

/// The text printed for one sample: a JSON line, or the table line and its warnings.
fn render(sample: &WatchSample, at: Duration, every: Duration, json: bool) -> String {
    if json {
        // A sample holds only numbers and strings: serializing cannot fail.
        return serde_json::to_string(sample).map(|line| line + "\n").unwrap_or_default();
    }
    let mut out = line(sample, at, every);
    out.push('\n');
    for warning in &sample.warnings {
        let _ = writeln!(out, "warning: {}", warning.text);
    }
    out
}

/// `t=3s fds=5021/8192 (max fd 5020) threads=12 cpu=34% rss=210MiB tcp: established=5010 ...`
fn line(sample: &WatchSample, at: Duration, every: Duration) -> String {
    let t = if every.subsec_millis() == 0 { format!("{}s", at.as_secs()) } else { format!("{:.1}s", at.as_secs_f64()) };
    let limit = sample.fd_soft_limit.map_or_else(|| "unlimited".to_string(), |l| l.to_string());
    let max_fd = sample.max_fd.map_or_else(|| "none".to_string(), |fd| fd.to_string());
    let cpu = sample.cpu_percent.map_or_else(|| "-".to_string(), |cpu| format!("{cpu:.0}%"));
    let mut out = format!(
        "t={t} fds={}/{limit} (max fd {max_fd}) threads={} cpu={cpu} rss={} tcp:",
        sample.open_fds,
        sample.threads,
        mebibytes(sample.rss_bytes)
    );
    // The four states of the seed's table always; the others when they occur.
    for (index, (name, count)) in sample.tcp.named().into_iter().enumerate() {
        if index < 4 || count > 0 {
            let _ = write!(out, " {name}={count}");
        }
    }
    if sample.accept_queue > 0 {
        let _ = write!(out, " accept_queue={}", sample.accept_queue);
    }
    match sample.system_listen {
        Some(rates) => {
            let _ = write!(
                out,
                " | listen_overflows={:.0}/s listen_drops={:.0}/s syn_drops={:.0}/s",
                rates.listen_overflows_per_s, rates.listen_drops_per_s, rates.syn_queue_drops_per_s
            );
            if rates.syncookies_per_s > 0.0 {
                let _ = write!(out, " syncookies={:.0}/s", rates.syncookies_per_s);
            }
        }
        None => out.push_str(" | listen drops: unknown"),
    }
    out
}

/// `210MiB`, `3.5MiB`.
fn mebibytes(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 10.0 { format!("{mib:.0}MiB") } else { format!("{mib:.1}MiB") }
}

#[cfg(test)]
mod tests {
    use pummel_system::proc_text::tcp::TcpStates;
    use pummel_system::watch::{ListenRates, Warning, WarningKind};

    use super::*;

    fn sample() -> WatchSample {
        WatchSample {
            pid: 7,
            elapsed_ms: 3000,
            open_fds: 5021,
            max_fd: Some(5020),
            holds_epoll: false,
            fd_soft_limit: Some(8192),
            fd_hard_limit: Some(8192),
            threads: 12,
            cpu_percent: Some(34.4),
            rss_bytes: 210 * 1024 * 1024,
            tcp: TcpStates { established: 5010, time_wait: 3, listen: 2, syn_recv: 4, ..TcpStates::default() },
            accept_queue: 0,
            system_listen: Some(ListenRates::default()),
            system_listen_overflows: None,
            warnings: vec![Warning { kind: WarningKind::FdAboveSelectLimit, text: "fd numbers reached 5020".into() }],
        }
    }

    #[test]
    fn a_line_in_the_spirit_of_the_seed() {
        let text = render(&sample(), Duration::from_secs(3), Duration::from_secs(1), false);
        assert_eq!(
            text,
            "t=3s fds=5021/8192 (max fd 5020) threads=12 cpu=34% rss=210MiB tcp: established=5010 close_wait=0 \
             time_wait=3 listen=2 syn_recv=4 | listen_overflows=0/s listen_drops=0/s syn_drops=0/s\n\
             warning: fd numbers reached 5020\n"
        );
    }

    #[test]
    fn json_lines() {
        let text = render(&sample(), Duration::from_secs(3), Duration::from_secs(1), true);
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["tcp"]["established"], 5010);
        assert_eq!(value["warnings"][0]["kind"], "fd_above_select_limit");
    }

    #[test]
    fn fractions_of_seconds() {
        let mut unlimited = sample();
        unlimited.fd_soft_limit = None;
        unlimited.cpu_percent = None;
        let text = line(&unlimited, Duration::from_millis(1500), Duration::from_millis(500));
        assert!(text.starts_with("t=1.5s fds=5021/unlimited (max fd 5020) threads=12 cpu=- rss=210MiB"), "{text}");
    }
}
