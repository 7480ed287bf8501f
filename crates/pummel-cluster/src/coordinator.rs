//! The coordinator's side: gathering agents, starting them together, relaying their reports to
//! the collector, and noticing a lost one.

use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pummel_engine::engine::remote::{Inbound, RemoteShards};
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
    reader: Reader,
    writer: Writer,
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

    /// Waits until `wanted` agents joined, at most `wait`; `stop` (Ctrl-C) gives up early.
    pub fn gather(
        &self,
        wanted: usize,
        wait: Duration,
        stop: &CancellationToken,
        mut on_event: impl FnMut(Event),
    ) -> Result<Vec<Joined>, ClusterError> {
        self.runtime.block_on(async {
            let (done_tx, mut done_rx) = unbounded_channel();
            let deadline = tokio::time::Instant::now() + wait;
            let mut joined = Vec::new();
            while joined.len() < wanted {
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
                        Ok((reader, writer, name, version)) => {
                            joined.push(Joined { name: name.clone(), address, version, reader, writer });
                            on_event(Event::Joined { name, address, count: joined.len(), wanted });
                        }
                        Err(e) => on_event(Event::Refused { address, reason: e.to_string() }),
                    },
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(ClusterError::Timeout(format!(
                            "{} of {wanted} agents joined within {}s (--agents-timeout)",
                            joined.len(),
                            wait.as_secs()
                        )));
                    }
                    () = stop.cancelled() => {
                        return Err(ClusterError::Timeout(format!("interrupted while {} of {wanted} agents had joined", joined.len())));
                    }
                }
            }
            Ok(joined)
        })
    }

    /// Gives each agent its job (`job(i)`), waits until every one is ready, measures their
    /// clocks and starts them together. The reports go to the collector through the returned
    /// [`RemoteShards`]; [`Relay::finish`] gives the per-agent figures after the run.
    pub fn start(
        self,
        agents: Vec<Joined>,
        job: impl Fn(usize) -> Job,
        on_loss: OnLoss,
        stop: CancellationToken,
    ) -> Result<(RemoteShards, Relay), ClusterError> {
        let runtime = self.runtime;
        let count = agents.len();
        let jobs: Vec<Job> = (0..count).map(&job).collect();
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
                    let _ = agent.writer.send(&Message::Stop).await;
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
        let mut first_shard = 0;
        let mut writers = Vec::new();
        let mut tasks = Vec::new();
        for (index, agent) in ready.into_iter().enumerate() {
            figures.lock().expect("figures lock").push(AgentFigures {
                name: agent.name.clone(),
                address: agent.address.to_string(),
                segment: format!("{}/{count}", index + 1),
                shards: agent.shards,
                clock_offset_ms: agent.offset_us as f64 / 1000.0,
                round_trip_ms: agent.round_trip.as_secs_f64() * 1000.0,
                ..AgentFigures::default()
            });
            let (writer_tx, writer_rx) = unbounded_channel();
            runtime.spawn(write_all(agent.writer, writer_rx));
            writers.push(writer_tx);
            let relay = AgentRelay {
                index,
                name: agent.name,
                first_shard,
                shards: agent.shards,
                inbox: inbox_tx.clone(),
                cpu: cpu.clone(),
                figures: figures.clone(),
                on_loss,
                start,
            };
            first_shard += agent.shards;
            tasks.push(runtime.spawn(relay.run(agent.reader)));
        }
        drop(inbox_tx);
        // An abort rule or Ctrl-C cancels `stop`: every agent is told at once.
        let stop_watch = stop.clone();
        let stop_writers = writers.clone();
        runtime.spawn(async move {
            stop_watch.cancelled().await;
            for writer in &stop_writers {
                let _ = writer.send(Message::Stop);
            }
        });
        // A heartbeat every second tells the agents the coordinator is there: one cut off from
        // it (a partition closes nothing) stops after `LOSS_AFTER` of silence instead of
        // loading the target on its own until its plan ends.
        let beat_writers = writers.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(crate::agent::HEARTBEAT);
            loop {
                tick.tick().await;
                for writer in &beat_writers {
                    let _ = writer.send(Message::Heartbeat { cpu_us: 0 });
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
        };
        Ok((shards, Relay { runtime, tasks, figures, _writers: writers }))
    }
}

/// The relays of a started run; [`Relay::finish`] after the collector returned.
pub struct Relay {
    runtime: Runtime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    figures: Arc<Mutex<Vec<AgentFigures>>>,
    _writers: Vec<UnboundedSender<Message>>,
}

impl Relay {
    /// Waits for every relay to end and gives each agent's figures, in segment order.
    pub fn finish(self) -> Vec<AgentFigures> {
        let Relay { runtime, tasks, figures, _writers } = self;
        runtime.block_on(async {
            for task in tasks {
                let _ = task.await;
            }
        });
        drop(_writers);
        runtime.shutdown_timeout(Duration::from_secs(1));
        figures.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// The coordinator's side of the handshake: the agent's hello, our challenge and proof, its
/// proof.
async fn handshake(
    stream: tokio::net::TcpStream,
    token: &Token,
) -> Result<(Reader, Writer, String, String), ClusterError> {
    let (mut reader, mut writer) = protocol::split(stream);
    let Message::Hello { protocol, version, name, nonce: agent_nonce } = reader.expect("the agent's hello").await?
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
    Ok((reader, writer, name, version))
}

/// An agent with its job accepted and its clock measured.
struct Prepared {
    name: String,
    address: SocketAddr,
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
        reader: agent.reader,
        writer: agent.writer,
        shards,
        offset_us,
        round_trip,
    })
}

/// Sends what the relay and the stop watch queue, in order, until every sender is gone.
async fn write_all(mut writer: Writer, mut queue: tokio::sync::mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = queue.recv().await {
        if writer.send(&message).await.is_err() {
            return;
        }
    }
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
}

impl AgentRelay {
    async fn run(self, mut reader: Reader) {
        let mut finished = vec![false; self.shards];
        let mut lag = pummel_results::histogram::new_histogram();
        let mut busy = Vec::new();
        let (mut sent, mut ok, mut failed) = (0, 0, 0);
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
            f.lost = lost;
        }
    }

    fn record_cpu(&self, cpu_us: u64) {
        if let Ok(mut cpu) = self.cpu.lock() {
            cpu[self.index] = cpu_us;
        }
    }
}
