//! The agent's side: dial the coordinator, prove the token, take a job, start at the agreed
//! instant, stream the shards' reports and heartbeats, stop when told.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpu_time::ProcessTime;
use pummel_engine::engine::RunControl;
use pummel_engine::engine::remote::WireReport;
use pummel_engine::observe::{SampleFailure, Sampler};
use pummel_engine::request_log::{LineSink, RequestLogTotals};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

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
    reader: Option<Reader>,
    writer: Option<Writer>,
    /// The coordinator's address, as dialed.
    pub coordinator: String,
}

impl Session {
    /// Dials `coordinator` (again and again for up to `wait`, since it may start later), and
    /// proves the token both ways. `stop` (Ctrl-C) gives up early.
    /// A `watch_only` agent sends no load; it watches the target for the coordinator
    /// ([`Session::watch`]).
    pub fn connect(
        coordinator: &str,
        token: &Token,
        name: &str,
        watch_only: bool,
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
                    watch_only,
                    cores: std::thread::available_parallelism().map_or(1, usize::from),
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
            reader.trust();
            let proof = token.proof(Role::Agent, &their_nonce, &our_nonce);
            writer.send(&Message::Proof { proof }).await?;
            Ok((reader, writer))
        })?;
        Ok(Session { runtime, reader: Some(reader), writer: Some(writer), coordinator: coordinator.to_string() })
    }

    /// Waits for the job (the coordinator sends it once every agent has joined); `stop`
    /// (Ctrl-C) gives up.
    pub fn job(&mut self, stop: &RunControl) -> Result<Job, ClusterError> {
        let cancel = stop.child_token();
        let (reader, _) = connection(&mut self.reader, &mut self.writer)?;
        self.runtime.block_on(async {
            tokio::select! {
                message = reader.expect("a job") => match message? {
                    Message::Job(job) => Ok(*job),
                    Message::Stop | Message::Finish => {
                        Err(ClusterError::Refused("the coordinator gave up before the start".into()))
                    }
                    other => Err(ClusterError::Protocol(format!("expected a job, got {other:?}"))),
                },
                () = cancel.cancelled() => Err(ClusterError::Timeout("interrupted".into())),
            }
        })
    }

    /// Tells the coordinator this agent cannot run the job, and why.
    pub fn refuse(mut self, reason: &str) {
        if let Some(writer) = self.writer.as_mut() {
            let _ = self.runtime.block_on(writer.send(&Message::Refused { reason: reason.to_string() }));
        }
    }

    /// Tells the coordinator the plan is built on `shards` shards, answers its clock probes, and
    /// gives the start instant on this machine's clock.
    pub fn ready(&mut self, shards: usize) -> Result<SystemTime, ClusterError> {
        let (reader, writer) = connection(&mut self.reader, &mut self.writer)?;
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

    /// Runs the job: `run` is handed the [`Outbox`] its reports (and request-log lines) go
    /// through; heartbeats go out every second meanwhile. A stop from the
    /// coordinator, or its loss (a closed connection, or no word for [`LOSS_AFTER`] while the job
    /// runs), interrupts `control` (this job's). Then waits for the
    /// coordinator's next word: another job, or the end (`process`, the agent's own control,
    /// ends the wait on Ctrl-C).
    pub fn run<T>(&mut self, control: &RunControl, process: &RunControl, run: impl FnOnce(&Outbox) -> T) -> (T, Next) {
        let (Some(mut reader), Some(writer)) = (self.reader.take(), self.writer.take()) else {
            // Gone already: an outbox whose every send fails.
            let (queue, _) = unbounded_channel();
            return (run(&Outbox { queue }), Next::End(Ended::Lost("the connection was gone before the job".into())));
        };
        let cpu_at_start = ProcessTime::now();
        let (queue, queued) = unbounded_channel();
        let writing = self.runtime.spawn(protocol::write_all(writer, queued));
        let heartbeat_queue = queue.clone();
        let heartbeat = self.runtime.spawn(async move {
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
        let job_done = tokio_util::sync::CancellationToken::new();
        let job_over = job_done.clone();
        let listening = self.runtime.spawn(async move {
            // While the job runs, the coordinator's heartbeats come every second: silence (a
            // partition closes nothing), a closed connection or garbage ends both the job and
            // the listening, so that no agent goes on loading the target on its own after its
            // coordinator gave up on it. A stop ends the job; a job or the end, the listening.
            // Once the job is done the coordinator may take its time (a search's cooldown).
            loop {
                let next = if job_over.is_cancelled() {
                    reader.next().await
                } else {
                    match tokio::time::timeout(LOSS_AFTER, reader.next()).await {
                        Ok(next) => next,
                        Err(_) if job_over.is_cancelled() => continue,
                        Err(_) => {
                            stopper.interrupt();
                            let silence = format!("no word from the coordinator for {} s", LOSS_AFTER.as_secs());
                            return (None, Next::End(Ended::Lost(silence)));
                        }
                    }
                };
                match next {
                    Ok(Some(Message::Stop)) => stopper.interrupt(),
                    Ok(Some(Message::Heartbeat { .. })) => {}
                    Ok(Some(Message::Job(job))) => return (Some(reader), Next::Job(*job)),
                    Ok(Some(Message::Finish)) => return (Some(reader), Next::End(Ended::Finished)),
                    other => {
                        stopper.interrupt();
                        let why = match other {
                            Ok(None) => "the coordinator closed the connection".to_string(),
                            Err(e) => e.to_string(),
                            Ok(Some(message)) => format!("an unexpected message from the coordinator: {message:?}"),
                        };
                        return (None, Next::End(Ended::Lost(why)));
                    }
                }
            }
        });
        let outbox = Outbox { queue: queue.clone() };
        let outcome = run(&outbox);
        job_done.cancel();
        drop(outbox);
        heartbeat.abort();
        let cpu_us = cpu_at_start.elapsed().as_micros() as u64;
        let _ = queue.send(Message::Done { cpu_us });
        drop(queue);
        let ended = process.child_token();
        let next = self.runtime.block_on(async {
            // The heartbeat's queue goes with its task; then the writer has sent everything.
            let _ = heartbeat.await;
            self.writer =
                tokio::time::timeout(Duration::from_secs(10), writing).await.ok().and_then(Result::ok).flatten();
            tokio::select! {
                answer = listening => match answer {
                    Ok((reader, next)) => {
                        self.reader = reader;
                        next
                    }
                    Err(_) => Next::End(Ended::Lost("the listening task failed".into())),
                },
                () = ended.cancelled() => Next::End(Ended::Interrupted),
            }
        });
        (outcome, next)
    }
}

/// Where a running job's messages go to the coordinator; clones share the one connection.
#[derive(Debug, Clone)]
pub struct Outbox {
    queue: UnboundedSender<Message>,
}

impl Outbox {
    /// Sends one shard report; false once the coordinator is gone.
    pub fn report(&self, report: WireReport) -> bool {
        self.queue.send(Message::Report(Box::new(report))).is_ok()
    }

    /// Where the job's request log writes (`--log-requests`): its lines go to the coordinator,
    /// which writes every agent's into its one file.
    pub fn request_log(&self) -> Box<dyn LineSink> {
        Box::new(RemoteLog { queue: self.queue.clone(), text: String::new() })
    }

    /// Sends what the job's request log wrote and left out, after its last lines.
    pub fn request_log_totals(&self, totals: RequestLogTotals) {
        let _ = self.queue.send(Message::LogTotals(Box::new(totals)));
    }
}

/// Lines batched for the coordinator: sent at each flush (the writer flushes once a second) or
/// when a batch grows past [`LOG_BATCH`], so a frame stays small.
struct RemoteLog {
    queue: UnboundedSender<Message>,
    text: String,
}

/// The most bytes of request-log lines held before they are sent.
const LOG_BATCH: usize = 64 * 1024;

impl LineSink for RemoteLog {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        self.text.push_str(line);
        self.text.push('\n');
        if self.text.len() >= LOG_BATCH {
            LineSink::flush(self)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.text.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(&mut self.text);
        self.queue
            .send(Message::LogLines { text })
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the coordinator is gone"))
    }
}

/// The two halves of the connection, while it lasts.
fn connection<'a>(
    reader: &'a mut Option<Reader>,
    writer: &'a mut Option<Writer>,
) -> Result<(&'a mut Reader, &'a mut Writer), ClusterError> {
    match (reader.as_mut(), writer.as_mut()) {
        (Some(reader), Some(writer)) => Ok((reader, writer)),
        _ => Err(ClusterError::Protocol("the connection to the coordinator is gone".into())),
    }
}

/// What an agent does after a job.
#[derive(Debug)]
pub enum Next {
    /// Run this job (a search's next step).
    Job(Job),
    /// Nothing more: exit, for this reason.
    End(Ended),
}

/// Why an agent has no more work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The coordinator said the run is over.
    Finished,
    /// The coordinator is gone (closed, silent, or sent garbage), and why: the agent stopped
    /// loading the target on its own.
    Lost(String),
    /// The agent's own Ctrl-C.
    Interrupted,
}

impl Session {
    /// A watch-only agent's whole part: waits for the coordinator's word, says what it watches,
    /// and answers every ask with a sample of `target`, until the coordinator says stop or goes
    /// away; `stop` (Ctrl-C) ends it too.
    pub fn watch(self, target: Box<dyn Sampler>, stop: &RunControl) -> Result<(), ClusterError> {
        let Session { runtime, reader, writer, .. } = self;
        let (Some(mut reader), Some(mut writer)) = (reader, writer) else {
            return Err(ClusterError::Protocol("the connection to the coordinator is gone".into()));
        };
        let cancel = stop.child_token();
        let target = Arc::new(Mutex::new(target));
        runtime.block_on(async move {
            let begin = tokio::select! {
                message = reader.expect("the coordinator's word to watch") => message?,
                () = cancel.cancelled() => return Ok(()),
            };
            match begin {
                Message::Watch => {}
                Message::Stop => return Ok(()),
                other => return Err(ClusterError::Protocol(format!("expected the word to watch, got {other:?}"))),
            }
            let (pid, name) = {
                let target = target.lock().map_err(|_| ClusterError::Protocol("the watch failed".into()))?;
                (target.pid(), target.name().to_string())
            };
            writer.send(&Message::Watching { pid, name }).await?;
            loop {
                let message = tokio::select! {
                    message = reader.next() => message?,
                    () = cancel.cancelled() => return Ok(()),
                };
                let second = match message {
                    Some(Message::WatchAsk { second }) => second,
                    Some(Message::Stop) | None => return Ok(()),
                    Some(other) => return Err(ClusterError::Protocol(format!("expected an ask, got {other:?}"))),
                };
                // Reading /proc takes a few milliseconds, up to tens at many sockets: off the
                // runtime's thread.
                let sampling = target.clone();
                let sampled = tokio::task::spawn_blocking(move || match sampling.lock() {
                    Ok(mut target) => target.sample(),
                    Err(_) => Err(SampleFailure { text: "the watch failed".into(), gone: true }),
                })
                .await
                .unwrap_or_else(|e| Err(SampleFailure { text: e.to_string(), gone: true }));
                let answer = match sampled {
                    Ok(sample) => {
                        Message::WatchAnswer { second, sample: Some(Box::new(sample)), failure: None, gone: false }
                    }
                    Err(f) => Message::WatchAnswer { second, sample: None, failure: Some(f.text), gone: f.gone },
                };
                writer.send(&answer).await?;
            }
        })
    }
}
