//! The `pummel` binary: a thin layer of commands, terminal output and exit codes over the
//! `pummel-engine` library and the `pummel-sink` server.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::ExitStatus;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() { ExitStatus::Usage.into() } else { ExitStatus::Pass.into() };
        }
    };
    let result = match cli.command {
        Command::Run(args) => commands::run::run(*args),
        Command::Check(args) => commands::check::run(args),
        Command::Sink(args) => commands::sink::run(*args),
        Command::Demo(args) => commands::demo::run(args),
        Command::FindLimit(args) => commands::find_limit::run(*args),
        Command::Report(args) => commands::report::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Watch(args) => commands::watch::run(args),
        Command::Hold(args) => commands::hold::run(*args),
        Command::Proxy(args) => commands::proxy::run(*args),
        Command::Convert(args) => commands::convert::run(args),
        Command::Agent(args) => commands::agent::run(args),
        Command::K8s(args) => commands::k8s::run(args),
    };
    match result {
        Ok(status) => status.into(),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            failure.status.into()
        }
    }
}
