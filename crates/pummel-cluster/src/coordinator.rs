//! The coordinator's side: gathering agents, starting them together, relaying their reports to
//! the collector, and noticing a lost one.

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pummel_engine::engine::remote::{Inbound, RemoteShards};
use pummel_engine::observe::{SampleFailure, Sampler};
use pummel_engine::request_log::RequestLogTotals;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

use crate::ClusterError;
use crate::auth::{Role, Token, nonce};
use crate::protocol::{self, Job, Message, PROTOCOL_VERSION, Reader, Writer, unix_us_now};

/// An agent that has said nothing (not even a heartbeat) for this long is lost; so is, for an
/// agent, a coordinator.
pub const LOSS_AFTER: Duration = Duration::from_secs(3);
/// How long an agent may take to prove itself once connected.
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// How long an agent may take to build its plan.
const READY_TIME: Duration = Duration::from_secs(120);
/// Clock probes per agent; the one with the shortest round trip counts.
const CLOCK_ROUNDS: u32 = 5;
/// How far ahead of the last agent being told the start is: time for the message to arrive.
const START_LEAD: Duration = Duration::from_millis(800);

/// What to do when an agent is lost mid-run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLoss {
    /// End the run (every other agent stops); the results are partial.
    #[default]
    Abort,
    /// Go on with the others; the results are partial and say which agent was lost.
    Continue,
}

/// A coordinator listening for its agents.
pub struct Coordinator {
    runtime: Runtime,
    listener: TcpListener,
    token: Token,
    address: SocketAddr,
}

/// An agent that joined and proved it knows the token.
pub struct Joined {
    /// Its name.
    pub name: String,
    /// Where it connected from.
    pub address: SocketAddr,
    /// pummel's version on it.
    pub version: String,
    /// It watches the target instead of sending load (`pummel agent --watch-only`).
    pub watch_only: bool,
    /// The CPUs it may use, as it said.
    pub cores: usize,
    reader: Reader,
    writer: Writer,
}

/// The agents of a run: those that send load, and the one that watches the target, if wanted.
pub struct Gathered {
    /// The load agents, in the order they joined (agent i runs segment i+1).
    pub agents: Vec<Joined>,
    /// The watch-only agent.
    pub watcher: Option<Joined>,
}

/// Something worth telling the user while agents join.
#[derive(Debug, Clone)]
pub enum Event {
    /// An agent joined (how many have, of how many).
    Joined {
        /// Its name.
        name: String,
        /// Where from.
        address: SocketAddr,
        /// Agents in so far.
        count: usize,
        /// Agents wanted.
        wanted: usize,
    },
    /// The watch-only agent joined.
    Watcher {
        /// Its name.
        name: String,
        /// Where from.
        address: SocketAddr,
    },
    /// A peer was refused (wrong token, other protocol, run full).
    Refused {
        /// Where from.
        address: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// How one agent fared: the per-agent breakdown of a run's results.
#[derive(Debug, Clone, Default)]
pub struct AgentFigures {
    /// Its name.
    pub name: String,
    /// Where it connected from.
    pub address: String,
    /// Its part of the plan, `i/N`.
    pub segment: String,
    /// Shards (threads) it ran.
    pub shards: usize,
    /// Its clock minus the coordinator's, milliseconds (measured before the start).
    pub clock_offset_ms: f64,
    /// The shortest round trip of the clock probes, milliseconds: the offset's uncertainty is
    /// half of it.
    pub round_trip_ms: f64,
    /// Requests it sent.
    pub sent: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Its schedule lag p99 (open model), milliseconds: how late it sent.
    pub lag_p99_ms: Option<f64>,
    /// The median over its shard-seconds of how busy a shard's thread was, percent of a core.
    pub thread_busy_median_percent: Option<f64>,
    /// CPU seconds it used.
    pub cpu_seconds: f64,
    /// What its request log wrote and left out (`--log-requests`), as it said at its end.
    pub request_log: Option<RequestLogTotals>,
    /// When it was lost (seconds from the start) and why; `None` if it finished.
    pub lost: Option<(f64, String)>,
}

impl Coordinator {
    /// Listens on `address` for agents that know `token`.
    pub fn bind(address: &str, token: Token) -> Result<Coordinator, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pummel-coordinator")
            .enable_all()
            .build()
            .map_err(ClusterError::io("cannot start the coordinator's runtime"))?;
        let listener = runtime
            .block_on(TcpListener::bind(address))
            .map_err(ClusterError::io(format!("cannot listen for agents on {address}")))?;
        let address = listener.local_addr().map_err(ClusterError::io("cannot read the listening address"))?;
        Ok(Coordinator { runtime, listener, token, address })
    }

    /// The address agents dial (the bound port when 0 was asked).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Waits until `wanted` agents joined, and a watch-only agent too when `watcher` is set, at
    /// most `wait`; `stop` (Ctrl-C) gives up early.
    pub fn gather(
        &self,
        wanted: usize,
        watcher: bool,
        wait: Duration,
        stop: &CancellationToken,
        mut on_event: impl FnMut(Event),
    ) -> Result<Gathered, ClusterError> {
        self.runtime.block_on(async {
            let (done_tx, mut done_rx) = unbounded_channel();
            let deadline = tokio::time::Instant::now() + wait;
            let mut agents = Vec::new();
            let mut watch = None;
            while agents.len() < wanted || (watcher && watch.is_none()) {
                tokio::select! {
                    accepted = self.listener.accept() => {
                        let Ok((stream, address)) = accepted else { continue };
                        let token = self.token.clone();
                        let done = done_tx.clone();
                        tokio::spawn(async move {
                            let outcome = tokio::time::timeout(HANDSHAKE_TIME, handshake(stream, &token))
                                .await
                                .unwrap_or_else(|_| Err(ClusterError::Timeout("no proof in time".into())));
                            let _ = done.send((address, outcome));
                        });
                    }
                    Some((address, outcome)) = done_rx.recv() => match outcome {
                        Ok(mut joined) => {
                            let surplus = if joined.watch_only {
                                (!watcher || watch.is_some()).then_some("no (further) watch-only agent is wanted")
                            } else {
                                (agents.len() >= wanted).then_some("the run has all its agents")
                            };
                            if let Some(reason) = surplus {
                                let _ = joined.writer.send(&Message::Refused { reason: reason.into() }).await;
                                on_event(Event::Refused { address, reason: format!("agent {}: {reason}", joined.name) });
                                continue;
                            }
                            let name = joined.name.clone();
                            if joined.watch_only {
                                watch = Some(joined);
                                on_event(Event::Watcher { name, address });
                            } else {
                                agents.push(joined);
                                on_event(Event::Joined { name, address, count: agents.len(), wanted });
                            }
                        }
                        Err(e) => on_event(Event::Refused { address, reason: e.to_string() }),
                    },
                    () = tokio::time::sleep_until(deadline) => {
                        let watching = if watcher && watch.is_none() { " and no watch-only agent" } else { "" };
                        return Err(ClusterError::Timeout(format!(
                            "{} of {wanted} agents{watching} joined within {}s (--agents-timeout)",
                            agents.len(),
                            wait.as_secs()
                        )));
                    }
                    () = stop.cancelled() => {
                        return Err(ClusterError::Timeout(format!(
                            "interrupted while {} of {wanted} agents had joined",
                            agents.len()
                        )));
                    }
                }
            }
            Ok(Gathered { agents, watcher: watch })
        })
    }

    /// Gives each agent its job (`job(i)`), waits until every one is ready, measures their
    /// clocks and starts them together. The reports go to the collector through the returned
    /// [`RemoteShards`]; [`Relay::finish`] gives the per-agent figures after the run, and the
    /// agents back for another job (a search's next step) or [`Coordinator::release`].
    pub fn start(
        &self,
        gathered: Gathered,
        job: impl Fn(usize) -> Job,
        on_loss: OnLoss,
        stop: CancellationToken,
        request_log: Option<SharedLog>,
    ) -> Result<(RemoteShards, Relay), ClusterError> {
        let runtime = &self.runtime;
        let Gathered { agents, watcher } = gathered;
        let watch = match watcher {
            Some(watcher) => Some(runtime.block_on(RemoteSampler::start(watcher))?),
            None => None,
        };
        let count = agents.len();
        let jobs: Vec<Job> = (0..count).map(&job).collect();
        let segments: Vec<String> = jobs.iter().map(|j| j.segment.clone()).collect();
        // Every agent builds its plan and measures its clock at the same time.
        let prepared = runtime.block_on(async {
            let tasks: Vec<_> =
                agents.into_iter().zip(jobs).map(|(agent, job)| tokio::spawn(prepare(agent, job))).collect();
            let mut prepared = Vec::new();
            for task in tasks {
                prepared.push(task.await.map_err(|e| ClusterError::Protocol(e.to_string()))?);
            }
            Ok::<_, ClusterError>(prepared)
        })?;
        let mut ready = Vec::with_capacity(count);
        let mut refusal = None;
        for outcome in prepared {
            match outcome {
                Ok(agent) => ready.push(agent),
                Err(e) => refusal = refusal.or(Some(e)),
            }
        }
        if let Some(e) = refusal {
            runtime.block_on(async {
                for agent in &mut ready {
                    let _ = agent.writer.send(&Message::Finish).await;
                }
            });
            return Err(e);
        }
        let slowest = ready.iter().map(|a| a.round_trip).max().unwrap_or_default();
        let start_unix_us = unix_us_now() + (START_LEAD + slowest).as_micros() as u64;
        let started_at = UNIX_EPOCH + Duration::from_micros(start_unix_us);
        let start = Instant::now() + started_at.duration_since(SystemTime::now()).unwrap_or_default();
        runtime.block_on(async {
            for agent in &mut ready {
                let at = (start_unix_us as i64 + agent.offset_us).max(0) as u64;
                agent.writer.send(&Message::Start { at_unix_us: at }).await?;
            }
            Ok::<_, ClusterError>(())
        })?;

        let (inbox_tx, inbox) = RemoteShards::channel();
        let cpu: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; count]));
        let figures: Arc<Mutex<Vec<AgentFigures>>> = Arc::new(Mutex::new(Vec::with_capacity(count)));
        let done = CancellationToken::new();
        let mut first_shard = 0;
        let mut shards_of = Vec::with_capacity(count);
        let mut relay = Relay {
            handle: runtime.handle().clone(),
            readers: Vec::new(),
            writers: Vec::new(),
            queues: Vec::new(),
            who: Vec::new(),
            figures: figures.clone(),
            done: done.clone(),
        };
        for (index, agent) in ready.into_iter().enumerate() {
            figures.lock().expect("figures lock").push(AgentFigures {
                name: agent.name.clone(),
                address: agent.address.to_string(),
                segment: segments.get(index).cloned().unwrap_or_default(),
                shards: agent.shards,
                clock_offset_ms: agent.offset_us as f64 / 1000.0,
                round_trip_ms: agent.round_trip.as_secs_f64() * 1000.0,
                ..AgentFigures::default()
            });
            let (queue, queued) = unbounded_channel();
            relay.writers.push(runtime.spawn(protocol::write_all(agent.writer, queued)));
            relay.queues.push(queue);
            relay.who.push((agent.name.clone(), agent.address, agent.version.clone(), agent.cores));
            shards_of.push((agent.name.clone(), agent.shards));
            let agent_relay = AgentRelay {
                index,
                name: agent.name,
                first_shard,
                shards: agent.shards,
                inbox: inbox_tx.clone(),
                cpu: cpu.clone(),
                figures: figures.clone(),
                on_loss,
                start,
                request_log: request_log.clone(),
            };
            first_shard += agent.shards;
            relay.readers.push(runtime.spawn(agent_relay.run(agent.reader)));
        }
        drop(inbox_tx);
        // An abort rule or Ctrl-C cancels `stop`: every agent is told at once.
        let stop_queues = relay.queues.clone();
        let stop_watch = stop.clone();
        let run_over = done.clone();
        runtime.spawn(async move {
            tokio::select! {
                () = stop_watch.cancelled() => {
                    for queue in &stop_queues {
                        let _ = queue.send(Message::Stop);
                    }
                }
                () = run_over.cancelled() => {}
            }
        });
        // A heartbeat every second tells the agents the coordinator is there: one cut off from
        // it (a partition closes nothing) stops after `LOSS_AFTER` of silence instead of
        // loading the target on its own until its plan ends. It ends with the run, so that the
        // writers' queues close and the agents come back for another job.
        let beat_queues = relay.queues.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(crate::agent::HEARTBEAT);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = done.cancelled() => return,
                }
                for queue in &beat_queues {
                    let _ = queue.send(Message::Heartbeat { cpu_us: 0 });
                }
            }
        });
        let cpu_clock = cpu.clone();
        let shards = RemoteShards {
            shards: first_shard,
            start,
            started_at,
            inbox,
            stop,
            cpu: Box::new(move || Duration::from_micros(cpu_clock.lock().map(|c| c.iter().sum()).unwrap_or(0))),
            watch: watch.map(|w| Box::new(w) as Box<dyn Sampler>),
            agents: shards_of,
        };
        Ok((shards, relay))
    }

    /// Tells `agents` the work is over: they exit.
    pub fn release(&self, agents: Vec<Joined>) {
        self.runtime.block_on(async {
            for mut agent in agents {
                let _ = agent.writer.send(&Message::Finish).await;
            }
        });
    }
}

/// The relays of a started run; [`Relay::finish`] after the collector returned.
pub struct Relay {
    handle: tokio::runtime::Handle,
    /// Each agent's relay, giving its reader back unless the agent was lost.
    readers: Vec<tokio::task::JoinHandle<Option<Reader>>>,
    /// Each agent's writer task, giving the writer back once its queue closes.
    writers: Vec<tokio::task::JoinHandle<Option<Writer>>>,
    queues: Vec<UnboundedSender<Message>>,
    /// Each agent's name, address, version and cores, in segment order.
    who: Vec<(String, SocketAddr, String, usize)>,
    figures: Arc<Mutex<Vec<AgentFigures>>>,
    /// Ends the stop watch.
    done: CancellationToken,
}

impl Relay {
    /// Waits for every relay to end; gives each agent's figures, in segment order, and the
    /// agents that were not lost, ready for another job.
    pub fn finish(self) -> (Vec<AgentFigures>, Vec<Joined>) {
        let Relay { handle, readers, writers, queues, who, figures, done } = self;
        let agents = handle.block_on(async move {
            let mut back = Vec::new();
            for reader in readers {
                back.push(reader.await.ok().flatten());
            }
            done.cancel();
            drop(queues);
            let mut agents = Vec::new();
            for ((reader, writer), (name, address, version, cores)) in back.into_iter().zip(writers).zip(who) {
                if let (Some(reader), Ok(Some(writer))) = (reader, writer.await) {
                    agents.push(Joined { name, address, version, watch_only: false, cores, reader, writer });
                }
            }
            agents
        });
        (figures.lock().map(|f| f.clone()).unwrap_or_default(), agents)
    }
}

/// The coordinator's side of the handshake: the agent's hello, our challenge and proof, its
/// proof.
async fn handshake(stream: tokio::net::TcpStream, token: &Token) -> Result<Joined, ClusterError> {
    let address = stream.peer_addr().map_err(ClusterError::io("cannot read the agent's address"))?;
    let (mut reader, mut writer) = protocol::split(stream);
    let Message::Hello { protocol, version, name, nonce: agent_nonce, watch_only, cores } =
        reader.expect("the agent's hello").await?
    else {
        return Err(ClusterError::Protocol("the peer did not start with a hello".into()));
    };
    if protocol != PROTOCOL_VERSION {
        let reason = format!(
            "protocol version {protocol} (pummel {version}); this coordinator speaks version {PROTOCOL_VERSION} (pummel {})",
            pummel_engine::VERSION
        );
        let _ = writer.send(&Message::Refused { reason: reason.clone() }).await;
        return Err(ClusterError::Refused(format!("agent {name}: {reason}")));
    }
    let our_nonce = nonce();
    let proof = token.proof(Role::Coordinator, &agent_nonce, &our_nonce);
    writer.send(&Message::Challenge { protocol: PROTOCOL_VERSION, nonce: our_nonce.clone(), proof }).await?;
    let Message::Proof { proof } = reader.expect("the agent's proof").await? else {
        return Err(ClusterError::Protocol(format!("agent {name} sent no proof")));
    };
    if !token.verify(Role::Agent, &our_nonce, &agent_nonce, &proof) {
        let _ = writer.send(&Message::Refused { reason: "wrong token".into() }).await;
        return Err(ClusterError::Refused(format!("agent {name}: wrong token")));
    }
    reader.trust();
    Ok(Joined { name, address, version, watch_only, cores, reader, writer })
}

/// An agent with its job accepted and its clock measured.
struct Prepared {
    name: String,
    address: SocketAddr,
    version: String,
    cores: usize,
    reader: Reader,
    writer: Writer,
    shards: usize,
    offset_us: i64,
    round_trip: Duration,
}

/// Sends the job, waits for ready, probes the clock.
async fn prepare(mut agent: Joined, job: Job) -> Result<Prepared, ClusterError> {
    let name = agent.name.clone();
    agent.writer.send(&Message::Job(Box::new(job))).await?;
    let answer = tokio::time::timeout(READY_TIME, agent.reader.expect("ready"))
        .await
        .map_err(|_| ClusterError::Timeout(format!("agent {name} was not ready within {}s", READY_TIME.as_secs())))?;
    let shards = match answer {
        Ok(Message::Ready { shards }) if shards > 0 => shards,
        Ok(other) => return Err(ClusterError::Protocol(format!("agent {name} answered the job with {other:?}"))),
        Err(ClusterError::Refused(reason)) => {
            return Err(ClusterError::Refused(format!("agent {name} cannot run the job: {reason}")));
        }
        Err(e) => return Err(e),
    };
    let mut best: Option<(Duration, i64)> = None;
    for round in 0..CLOCK_ROUNDS {
        let sent_us = unix_us_now();
        let sent = Instant::now();
        agent.writer.send(&Message::Ping { round }).await?;
        let Message::Pong { round: answered, unix_us } = agent.reader.expect("a clock probe's answer").await? else {
            return Err(ClusterError::Protocol(format!("agent {name} did not answer a clock probe")));
        };
        let trip = sent.elapsed();
        if answered != round {
            return Err(ClusterError::Protocol(format!("agent {name} answered clock probe {answered}, not {round}")));
        }
        let midpoint = sent_us as i64 + (trip.as_micros() / 2) as i64;
        let offset = unix_us as i64 - midpoint;
        if best.is_none_or(|(t, _)| trip < t) {
            best = Some((trip, offset));
        }
    }
    let (round_trip, offset_us) = best.unwrap_or_default();
    Ok(Prepared {
        name,
        address: agent.address,
        version: agent.version,
        cores: agent.cores,
        reader: agent.reader,
        writer: agent.writer,
        shards,
        offset_us,
        round_trip,
    })
}

/// One agent's reports on their way to the collector.
struct AgentRelay {
    index: usize,
    name: String,
    first_shard: usize,
    shards: usize,
    inbox: Sender<Inbound>,
    cpu: Arc<Mutex<Vec<u64>>>,
    figures: Arc<Mutex<Vec<AgentFigures>>>,
    on_loss: OnLoss,
    start: Instant,
    request_log: Option<SharedLog>,
}

/// The coordinator's request log (`--log-requests`), shared by the agents' relays.
pub type SharedLog = Arc<Mutex<LogFile>>;

/// The one file every agent's request-log lines go into, whole lines at a time (an agent
/// sends only whole lines), in the order they arrive.
#[derive(Debug)]
pub struct LogFile {
    out: std::io::BufWriter<std::fs::File>,
    error: Option<String>,
}

impl LogFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &std::path::Path) -> std::io::Result<SharedLog> {
        let out = std::io::BufWriter::new(std::fs::File::create(path)?);
        Ok(Arc::new(Mutex::new(LogFile { out, error: None })))
    }

    /// Appends lines; after a failed write, nothing more is written.
    fn append(&mut self, text: &str) {
        use std::io::Write as _;
        if self.error.is_none()
            && let Err(e) = self.out.write_all(text.as_bytes())
        {
            self.error = Some(e.to_string());
        }
    }

    /// Flushes the file: why it could not be written in full, if it could not.
    pub fn finish(log: &SharedLog) -> Option<String> {
        use std::io::Write as _;
        let mut file = log.lock().ok()?;
        let flushed = file.out.flush();
        if let (None, Err(e)) = (&file.error, flushed) {
            file.error = Some(e.to_string());
        }
        file.error.clone()
    }
}

impl AgentRelay {
    async fn run(self, mut reader: Reader) -> Option<Reader> {
        let mut finished = vec![false; self.shards];
        let mut lag = pummel_results::histogram::new_histogram();
        let mut busy = Vec::new();
        let (mut sent, mut ok, mut failed) = (0, 0, 0);
        let mut log_totals = None;
        let lost = loop {
            let message = match tokio::time::timeout(LOSS_AFTER, reader.next()).await {
                Err(_) => break Some(format!("no word from it for {}s", LOSS_AFTER.as_secs())),
                Ok(Err(e)) => break Some(e.to_string()),
                Ok(Ok(None)) => {
                    break finished.iter().any(|f| !f).then(|| "its connection closed before it finished".to_string());
                }
                Ok(Ok(Some(message))) => message,
            };
            match message {
                Message::Report(wire) => {
                    let inbound = match Inbound::decode(*wire, self.first_shard, self.shards) {
                        Ok(inbound) => inbound,
                        Err(e) => break Some(format!("a broken report: {e}")),
                    };
                    let (s, o, f) = inbound.counts();
                    sent += s;
                    ok += o;
                    failed += f;
                    if let Some(histogram) = inbound.schedule_lag() {
                        let _ = lag.add(histogram);
                    }
                    busy.extend(inbound.thread_busy());
                    if inbound.is_final() {
                        if let Some(shard) = inbound.shard().checked_sub(self.first_shard) {
                            finished[shard] = true;
                        }
                    }
                    if self.inbox.send(inbound).is_err() {
                        break None;
                    }
                }
                Message::Heartbeat { cpu_us } => self.record_cpu(cpu_us),
                Message::LogLines { text } => self.write_log(&text),
                Message::LogTotals(totals) => log_totals = Some(*totals),
                Message::Done { cpu_us } => {
                    self.record_cpu(cpu_us);
                    break finished.iter().any(|f| !f).then(|| "it ended before every shard finished".to_string());
                }
                Message::Refused { reason } => break Some(reason),
                other => break Some(format!("an unexpected message: {other:?}")),
            }
        };
        let lost = lost.map(|why| (self.start.elapsed().as_secs_f64(), why));
        if let Some((_, why)) = &lost {
            let reason = format!("agent {} lost: {why}", self.name);
            let mut abort = (self.on_loss == OnLoss::Abort).then_some(reason);
            for (shard, done) in finished.iter().enumerate() {
                if !done {
                    let _ = self.inbox.send(Inbound::gone(self.first_shard + shard, abort.take()));
                }
            }
        }
        busy.sort_by(f64::total_cmp);
        if let Ok(mut figures) = self.figures.lock()
            && let Some(f) = figures.get_mut(self.index)
        {
            f.sent = sent;
            f.ok = ok;
            f.failed = failed;
            f.lag_p99_ms = (!lag.is_empty()).then(|| lag.value_at_quantile(0.99) as f64 / 1000.0);
            f.thread_busy_median_percent = busy.get(busy.len() / 2).map(|b| b * 100.0);
            f.cpu_seconds = self.cpu.lock().map(|c| c[self.index]).unwrap_or(0) as f64 / 1e6;
            f.lost = lost.clone();
            f.request_log = log_totals;
        }
        lost.is_none().then_some(reader)
    }

    /// Appends an agent's lines to the coordinator's log; a write that fails is the
    /// coordinator's own error, said with the totals (see `Cluster`), and the lines are lost.
    fn write_log(&self, text: &str) {
        if let Some(log) = &self.request_log
            && let Ok(mut file) = log.lock()
        {
            file.append(text);
        }
    }

    fn record_cpu(&self, cpu_us: u64) {
        if let Ok(mut cpu) = self.cpu.lock() {
            cpu[self.index] = cpu_us;
        }
    }
}

/// How long the coordinator waits for a watch-only agent's sample before the second is a gap.
const WATCH_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// The target watched by a watch-only agent: each sample asked for over the wire.
struct RemoteSampler {
    asks: UnboundedSender<u64>,
    answers: std::sync::mpsc::Receiver<(u64, Result<pummel_system::watch::WatchSample, SampleFailure>)>,
    asked: u64,
    pid: u32,
    name: String,
}

impl RemoteSampler {
    /// Tells the watcher to start and relays asks and answers on the runtime until the
    /// sampler is dropped (the run's end), then tells it to stop.
    async fn start(mut watcher: Joined) -> Result<RemoteSampler, ClusterError> {
        let agent = watcher.name.clone();
        watcher.writer.send(&Message::Watch).await?;
        let (pid, name) = match watcher.reader.expect("what the watch agent watches").await {
            Ok(Message::Watching { pid, name }) => (pid, name),
            Ok(other) => return Err(ClusterError::Protocol(format!("watch agent {agent} answered {other:?}"))),
            Err(ClusterError::Refused(reason)) => {
                return Err(ClusterError::Refused(format!("watch agent {agent} cannot watch: {reason}")));
            }
            Err(e) => return Err(e),
        };
        let (asks, mut asked) = unbounded_channel::<u64>();
        let (answer, answers) = std::sync::mpsc::channel();
        let Joined { mut reader, mut writer, .. } = watcher;
        tokio::spawn(async move {
            let gone = |text: String| SampleFailure { text, gone: true };
            while let Some(second) = asked.recv().await {
                if writer.send(&Message::WatchAsk { second }).await.is_err() {
                    let _ = answer.send((second, Err(gone(format!("watch agent {agent} is gone")))));
                    return;
                }
                // An answer to an earlier ask that came late is passed on and told apart there.
                let reply = match reader.next().await {
                    Ok(Some(Message::WatchAnswer { second, sample, failure, gone: ended })) => match sample {
                        Some(sample) => (second, Ok(*sample)),
                        None => (second, Err(SampleFailure { text: failure.unwrap_or_default(), gone: ended })),
                    },
                    Ok(Some(other)) => (second, Err(gone(format!("watch agent {agent} sent {other:?}")))),
                    Ok(None) | Err(_) => (second, Err(gone(format!("watch agent {agent} is gone")))),
                };
                let ended = matches!(&reply.1, Err(f) if f.gone);
                if answer.send(reply).is_err() || ended {
                    return;
                }
            }
            let _ = writer.send(&Message::Stop).await;
        });
        Ok(RemoteSampler { asks, answers, asked: 0, pid, name })
    }
}

impl Sampler for RemoteSampler {
    fn sample(&mut self) -> Result<pummel_system::watch::WatchSample, SampleFailure> {
        self.asked += 1;
        let gone = || SampleFailure { text: "the watch agent is gone".into(), gone: true };
        self.asks.send(self.asked).map_err(|_| gone())?;
        let deadline = Instant::now() + WATCH_ANSWER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok((second, result)) if second == self.asked => return result,
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(SampleFailure {
                        text: format!("no answer from the watch agent within {} s", WATCH_ANSWER_WAIT.as_secs()),
                        gone: false,
                    });
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(gone()),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn name(&self) -> &str {
        &self.name
    }
}
