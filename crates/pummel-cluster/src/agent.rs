//! The agent's side: dial the coordinator, prove the token, take a job, start at the agreed
//! instant, stream the shards' reports and heartbeats, stop when told.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpu_time::ProcessTime;
use pummel_engine::engine::RunControl;
use pummel_engine::engine::remote::WireReport;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::unbounded_channel;

use crate::ClusterError;
use crate::auth::{Role, Token, nonce};
use crate::coordinator::LOSS_AFTER;
use crate::protocol::{self, Job, Message, PROTOCOL_VERSION, Reader, Writer, unix_us_now};

/// How often an agent says it is alive, and a coordinator too once the run started (each side
/// gives up on the other after [`LOSS_AFTER`]).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// Between two attempts to reach a coordinator that is not listening yet.
const REDIAL: Duration = Duration::from_millis(250);

/// An agent's conversation with its coordinator.
pub struct Session {
    runtime: Runtime,
    reader: Reader,
    writer: Writer,
    /// The coordinator's address, as dialed.
    pub coordinator: String,
}

impl Session {
    /// Dials `coordinator` (again and again for up to `wait`, since it may start later), and
    /// proves the token both ways. `stop` (Ctrl-C) gives up early.
    pub fn connect(
        coordinator: &str,
        token: &Token,
        name: &str,
        wait: Duration,
        stop: &RunControl,
    ) -> Result<Session, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pummel-agent")
            .enable_all()
            .build()
            .map_err(ClusterError::io("cannot start the agent's runtime"))?;
        let cancel = stop.child_token();
        let (reader, writer) = runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            let stream = loop {
                match tokio::net::TcpStream::connect(coordinator).await {
                    Ok(stream) => break stream,
                    Err(e) if tokio::time::Instant::now() >= deadline => {
                        return Err(ClusterError::Io {
                            context: format!(
                                "cannot reach the coordinator at {coordinator} within {}s",
                                wait.as_secs()
                            ),
                            source: e,
                        });
                    }
                    Err(_) => tokio::select! {
                        () = tokio::time::sleep(REDIAL) => {}
                        () = cancel.cancelled() => return Err(ClusterError::Timeout("interrupted".into())),
                    },
                }
            };
            let (mut reader, mut writer) = protocol::split(stream);
            let our_nonce = nonce();
            writer
                .send(&Message::Hello {
                    protocol: PROTOCOL_VERSION,
                    version: pummel_engine::VERSION.to_string(),
                    name: name.to_string(),
                    nonce: our_nonce.clone(),
                })
                .await?;
            let challenge = tokio::time::timeout(Duration::from_secs(10), reader.expect("the coordinator's challenge"))
                .await
                .map_err(|_| ClusterError::Timeout(format!("{coordinator} did not answer as a pummel coordinator")))?;
            let (their_nonce, proof) = match challenge {
                Ok(Message::Challenge { protocol, nonce, proof }) if protocol == PROTOCOL_VERSION => (nonce, proof),
                Ok(Message::Challenge { protocol, .. }) => {
                    return Err(ClusterError::Refused(format!(
                        "the coordinator speaks protocol version {protocol}, this agent {PROTOCOL_VERSION}"
                    )));
                }
                Ok(other) => return Err(ClusterError::Protocol(format!("the coordinator sent {other:?}"))),
                Err(ClusterError::Refused(reason)) => {
                    return Err(ClusterError::Refused(format!("the coordinator refused this agent: {reason}")));
                }
                Err(e) => return Err(e),
            };
            // Nothing from a peer that cannot prove it knows the token is ever run.
            if !token.verify(Role::Coordinator, &our_nonce, &their_nonce, &proof) {
                let _ = writer.send(&Message::Refused { reason: "wrong token".into() }).await;
                return Err(ClusterError::Refused(format!(
                    "{coordinator} does not know the token: refusing to take work from it"
                )));
            }
            let proof = token.proof(Role::Agent, &their_nonce, &our_nonce);
            writer.send(&Message::Proof { proof }).await?;
            Ok((reader, writer))
        })?;
        Ok(Session { runtime, reader, writer, coordinator: coordinator.to_string() })
    }

    /// Waits for the job (the coordinator sends it once every agent has joined); `stop`
    /// (Ctrl-C) gives up.
    pub fn job(&mut self, stop: &RunControl) -> Result<Job, ClusterError> {
        let cancel = stop.child_token();
        let reader = &mut self.reader;
        self.runtime.block_on(async {
            tokio::select! {
                message = reader.expect("a job") => match message? {
                    Message::Job(job) => Ok(*job),
                    Message::Stop => Err(ClusterError::Refused("the coordinator gave up before the start".into())),
                    other => Err(ClusterError::Protocol(format!("expected a job, got {other:?}"))),
                },
                () = cancel.cancelled() => Err(ClusterError::Timeout("interrupted".into())),
            }
        })
    }

    /// Tells the coordinator this agent cannot run the job, and why.
    pub fn refuse(mut self, reason: &str) {
        let writer = &mut self.writer;
        let _ = self.runtime.block_on(writer.send(&Message::Refused { reason: reason.to_string() }));
    }

    /// Tells the coordinator the plan is built on `shards` shards, answers its clock probes, and
    /// gives the start instant on this machine's clock.
    pub fn ready(&mut self, shards: usize) -> Result<SystemTime, ClusterError> {
        let (reader, writer) = (&mut self.reader, &mut self.writer);
        self.runtime.block_on(async {
            writer.send(&Message::Ready { shards }).await?;
            loop {
                match reader.expect("the start").await? {
                    Message::Ping { round } => writer.send(&Message::Pong { round, unix_us: unix_us_now() }).await?,
                    Message::Start { at_unix_us } => return Ok(UNIX_EPOCH + Duration::from_micros(at_unix_us)),
                    Message::Stop => {
                        return Err(ClusterError::Refused("the coordinator gave up before the start".into()));
                    }
                    other => return Err(ClusterError::Protocol(format!("expected the start, got {other:?}"))),
                }
            }
        })
    }

    /// Runs the job: `run` is handed a function that sends one report (false once the
    /// coordinator is gone); heartbeats go out every second meanwhile. A stop from the
    /// coordinator, or its loss (a closed connection, or no word for [`LOSS_AFTER`]),
    /// interrupts `control`.
    pub fn run<T>(self, control: &RunControl, run: impl FnOnce(&mut dyn FnMut(WireReport) -> bool) -> T) -> T {
        let Session { runtime, mut reader, writer, .. } = self;
        let cpu_at_start = ProcessTime::now();
        let (queue, queued) = unbounded_channel();
        let writing = runtime.spawn(write_all(writer, queued));
        let heartbeat_queue = queue.clone();
        let heartbeat = runtime.spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tick.tick().await;
                let cpu_us = cpu_at_start.elapsed().as_micros() as u64;
                if heartbeat_queue.send(Message::Heartbeat { cpu_us }).is_err() {
                    return;
                }
            }
        });
        let stopper = control.clone();
        let listening = runtime.spawn(async move {
            // Anything but the coordinator's heartbeats (a stop, a closed connection, garbage, or
            // silence: a partition closes nothing) ends the run here, so that no agent goes on
            // loading the target on its own after its coordinator gave up on it.
            loop {
                match tokio::time::timeout(LOSS_AFTER, reader.next()).await {
                    Ok(Ok(Some(Message::Stop))) | Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(Some(_))) => {}
                }
            }
            stopper.interrupt();
        });
        let report_queue = queue.clone();
        let mut forward = move |report: WireReport| report_queue.send(Message::Report(Box::new(report))).is_ok();
        let outcome = run(&mut forward);
        heartbeat.abort();
        let cpu_us = cpu_at_start.elapsed().as_micros() as u64;
        let _ = queue.send(Message::Done { cpu_us });
        drop(queue);
        drop(forward);
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
        });
        listening.abort();
        runtime.shutdown_timeout(Duration::from_millis(200));
        outcome
    }
}

/// Sends what is queued, in order, until every sender is gone.
async fn write_all(mut writer: Writer, mut queue: tokio::sync::mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = queue.recv().await {
        if writer.send(&message).await.is_err() {
            return;
        }
    }
}
