//! The machine's side of a load test, read from Linux `/proc` with no agent on the target:
//!
//! - [`watch`]: a target process watched once per second (open fds against its limit, threads,
//!   CPU, memory, its TCP sockets by state, the system's listen-queue drops), with warnings for
//!   the ways servers break under many connections (fd limit, the select() ceiling at fd 1024,
//!   sockets left in CLOSE_WAIT, listen-queue overflows).
//! - [`doctor`]: the system limits a load test runs into (open files, ephemeral ports, listen
//!   backlogs, conntrack), each explained with the exact command that fixes it.
//!
//! Both are libraries first: `pummel watch` and `pummel doctor` print what they return, and
//! `run` / `hold` call [`watch::TargetWatch::sample`] once a second and
//! [`doctor::quick_check`] at start. The text formats of `/proc` are parsed in [`proc_text`],
//! small pure functions tested on fixed sample text.

pub mod doctor;
pub mod proc_text;
pub mod watch;
