//! `pummel demo`: the main job on a built-in target, with nothing to set up.
//!
//! Starts a sink in-process on a free loopback port and runs a short stepped open-model test
//! against it (200, 1,000 and 5,000 req/s), showing the live view, the summary and the per-step
//! table a user would otherwise assemble by hand, and writes the results document.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::anyhow;
use pummel_engine::engine::{self, RunControl};
use pummel_engine::measure::summary::summarize;
use pummel_engine::plan::{Arrival, Load, OpenLoad, Plan, QuickRun, RateStage, RequestSpec, StatusSet, Stop, Target};
use pummel_results::duration::parse_duration;
use pummel_results::expr::Expr;
use pummel_sink::{Delay, SinkConfig};

use super::{CliError, ExitStatus, install_interrupt_handler, print_stdout};
use crate::cli::DemoArgs;
use crate::output::progress::Progress;
use crate::output::summary::stages_table;

/// The demo's steps, requests per second.
const STEPS: [f64; 3] = [200.0, 1000.0, 5000.0];

/// Runs `pummel demo`.
pub fn run(args: DemoArgs) -> Result<ExitStatus, CliError> {
    let step = parse_duration(&args.step).map_err(|e| CliError::usage(anyhow!("--step: {e}")))?;
    if step.is_zero() || step > Duration::from_secs(60) {
        return Err(CliError::usage(anyhow!("--step must be between 1s and 60s")));
    }
    let config =
        SinkConfig { delay: Delay::Range(Duration::from_millis(1), Duration::from_millis(3)), ..SinkConfig::default() };
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sink = pummel_sink::start(loopback, config).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    let url = format!("http://{}/demo", sink.local_addr());
    let plan = demo_plan(&url, step)?;
    super::run::warn_about_limits(&plan, args.display);

    print_stdout(&format!(
        "pummel demo: a built-in target answers on {url} after 1-3 ms;\n\
         pummel offers {} req/s for {} s each and measures what happens.\n\n",
        STEPS.map(|s| format!("{s:.0}")).join(", then "),
        step.as_secs()
    ));
    let control = RunControl::new();
    install_interrupt_handler(&control);
    let mut progress = Progress::new(args.display, format!("GET {url}"), plan.planned_duration())?;
    let mut last_rate = None;
    let outcome = engine::run(&plan, &control, |entry| {
        if entry.target_rate != last_rate {
            last_rate = entry.target_rate;
            if let Some(rate) = entry.target_rate {
                progress.note(&format!("-- step: {rate:.0} req/s"));
            }
        }
        progress.second(entry);
    })
    .map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    sink.shutdown();

    let status = super::run::finish(
        &plan,
        &outcome,
        args.display,
        super::run::OutputFiles { results: Some(&args.output), junit: None, suite: "pummel demo" },
    )?;
    if !args.display.json {
        let summary = summarize(&plan, &outcome);
        print_stdout(&format!("\nPer step\n{}", stages_table(&summary)));
    }
    Ok(status)
}

fn demo_plan(url: &str, step: Duration) -> Result<Plan, CliError> {
    let target = Target::resolve(url).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    let threshold = Expr::parse("error_rate<1%").map_err(|e| CliError::internal(anyhow!(e)))?;
    let quick = QuickRun {
        request: RequestSpec { method: "GET".into(), headers: Vec::new(), body: Vec::new() },
        load: Load::Open(OpenLoad {
            stages: STEPS.iter().map(|&rate| RateStage::level(rate, step)).collect(),
            arrival: Arrival::Uniform,
            max_connections: 1000,
            max_inflight: None,
        }),
        http2: None,
    };
    let scenarios = quick.scenarios(&target, true, false, None).map_err(|e| CliError::internal(anyhow!(e)))?;
    let mut plan = Plan::new(target, scenarios, Stop { duration: None, requests: None });
    // The sink runs in this process too: one generator thread leaves it a core.
    plan.threads = 1;
    plan.timeout = Duration::from_secs(5);
    plan.connect_timeout = Duration::from_secs(2);
    plan.ok_status = StatusSet::default();
    plan.thresholds = vec![threshold];
    plan.validate().map_err(|e| CliError::internal(anyhow!(e)))?;
    Ok(plan)
}
