//! `pummel-faults`: the fault timeline of a run (issue 13, part 2).
//!
//! A plan's `[[fault]]` tables (or `--fault` words on the command line) say what to do to the
//! target and when: make a proxy the run started itself go down or turn toxic, stop a process
//! with SIGSTOP (SIGCONT when the fault ends), kill it and restart it, or run a command and its
//! undo. [`Running`] carries them out on a thread of its own beside the load, on the run's
//! clock, and undoes whatever it started on every way out: the fault's own end, the run's end,
//! an abort rule, Ctrl-C (the run's stop), an error or a panic (its `Drop`), and a second Ctrl-C
//! that exits at once ([`undo_now`]). Process faults act only on the PIDs named, or on the
//! processes listening on the port named.
//!
//! Files, one job each: `spec` (what a fault is, validated), `words` (the `--fault` grammar and
//! the one builder plan files share), `steady` (what steady state means, as the user
//! defines it), `process` (signals, commands, ports), `run` (the
//! executor and its undo list).

mod process;
mod run;
mod spec;
mod steady;
mod words;

pub use run::{Running, StartError, undo_now};
pub use spec::{Action, Fault, FaultPlan, ProcessTarget, ProxyDef, ProxyEffect};
pub use steady::parse_steady_state;
pub use words::{FaultFields, FieldError, parse_fault};
