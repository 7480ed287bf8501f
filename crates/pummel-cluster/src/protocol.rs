//! The messages a coordinator and its agents exchange, and their framing.
//!
//! The conversation: the agent says [`Message::Hello`]; the coordinator answers
//! [`Message::Challenge`] with its proof; the agent answers [`Message::Proof`] (`auth`). Once N
//! agents are in, each gets a [`Message::Job`], answers [`Message::Ready`] (or
//! [`Message::Refused`]), a few [`Message::Ping`]/[`Message::Pong`] rounds measure its clock,
//! and [`Message::Start`] gives the instant. Then the agent sends [`Message::Report`]s and a
//! [`Message::Heartbeat`] every second (with a request log, [`Message::LogLines`] and at the end
//! [`Message::LogTotals`]), and [`Message::Done`] at the end; the coordinator sends
//! a [`Message::Heartbeat`] every second too, and may send [`Message::Stop`] at any time. Either
//! side that hears nothing from the other for `coordinator::LOSS_AFTER` gives up on it.

use futures_util::{SinkExt, StreamExt};
use pummel_engine::engine::remote::WireReport;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::ClusterError;

/// The protocol's version: both sides must speak the same one. (2: the coordinator sends
/// heartbeats during the run, and an agent stops when they cease. 3: agents send their
/// request-log lines and totals.)
pub const PROTOCOL_VERSION: u32 = 3;

/// The largest message accepted from a peer that proved it knows the token: a plan with its
/// feeder files must fit.
pub const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// The largest message accepted before that: a hello or a proof is a few hundred bytes, and a
/// stranger must not make us buffer more.
pub const MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;

/// One message of the conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// The agent's first words: who it is and its half of the challenge.
    Hello {
        /// [`PROTOCOL_VERSION`] of the agent.
        protocol: u32,
        /// pummel's version of the agent.
        version: String,
        /// The agent's name (`--name`, or its host name and PID).
        name: String,
        /// A fresh random nonce, hex.
        nonce: String,
        /// An agent that sends no load but watches the target on its machine
        /// (`pummel agent --watch-only`).
        #[serde(default)]
        watch_only: bool,
        /// The CPUs the agent may use: what `--agent-weights cores` weighs it by.
        #[serde(default)]
        cores: usize,
    },
    /// The coordinator's nonce, and its proof that it knows the token.
    Challenge {
        /// [`PROTOCOL_VERSION`] of the coordinator.
        protocol: u32,
        /// A fresh random nonce, hex.
        nonce: String,
        /// HMAC of both nonces under the token (`auth::proof`), hex.
        proof: String,
    },
    /// The agent's proof that it knows the token.
    Proof {
        /// HMAC of both nonces under the token, hex.
        proof: String,
    },
    /// Either side refuses to go on, and says why; the connection closes.
    Refused {
        /// Why, for a person to read.
        reason: String,
    },
    /// What to run.
    Job(Box<Job>),
    /// The agent built its plan and is ready to start.
    Ready {
        /// How many shards (threads) it runs.
        shards: usize,
    },
    /// A clock probe.
    Ping {
        /// The round.
        round: u32,
    },
    /// The answer to a clock probe, sent at once.
    Pong {
        /// The round it answers.
        round: u32,
        /// The agent's wall clock when it answered, microseconds since the Unix epoch.
        unix_us: u64,
    },
    /// When to start, on the agent's own clock.
    Start {
        /// Microseconds since the Unix epoch, agent's clock.
        at_unix_us: u64,
    },
    /// One report of one of the agent's shards.
    Report(Box<WireReport>),
    /// The agent is alive (or, from the coordinator, the coordinator is: `cpu_us` is 0).
    Heartbeat {
        /// The agent's CPU time since it got its job, microseconds.
        cpu_us: u64,
    },
    /// Stop sending now (an abort rule, Ctrl-C at the coordinator).
    Stop,
    /// No more jobs: the agent may exit.
    Finish,
    /// To a watch-only agent: start watching.
    Watch,
    /// A watch-only agent watches this process.
    Watching {
        /// Its PID.
        pid: u32,
        /// Its name.
        name: String,
    },
    /// To a watch-only agent: sample the target now (the run's second `second` just ended).
    WatchAsk {
        /// The second, counted from the start.
        second: u64,
    },
    /// A watch-only agent's sample of a second, or why it has none.
    WatchAnswer {
        /// The second asked for.
        second: u64,
        /// The sample.
        sample: Option<Box<pummel_system::watch::WatchSample>>,
        /// Why there is no sample.
        failure: Option<String>,
        /// The target is gone: no more samples will come.
        gone: bool,
    },
    /// Lines of the agent's request log (`--log-requests`), whole JSON lines each ending in a
    /// newline, for the coordinator's one file; sent about once a second.
    LogLines {
        /// The lines.
        text: String,
    },
    /// What the agent's request log wrote and left out, sent once after its last lines.
    LogTotals(Box<pummel_engine::request_log::RequestLogTotals>),
    /// Every shard of the agent has reported its end.
    Done {
        /// The agent's CPU time since it got its job, microseconds.
        cpu_us: u64,
    },
}

/// The part of a plan an agent runs, and what it needs to build it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The subcommand and its arguments, as the coordinator's user typed them (without the
    /// coordinator's own flags): the agent builds its plan from them the same way.
    pub args: Vec<String>,
    /// The files the arguments and the plan refer to.
    pub files: Vec<ShippedFile>,
    /// This agent's part: `i/N`, 1-based, or `FROM:TO` of [`Job::segment_sequence`].
    pub segment: String,
    /// The sequence a `FROM:TO` part is a segment of (unequal parts, `--agent-weights`).
    #[serde(default)]
    pub segment_sequence: Option<String>,
    /// A step of a capacity search (`find-limit`): run the search's step at this rate.
    #[serde(default)]
    pub step_rate: Option<f64>,
    /// What the coordinator's setup phase exported (`export = [...]`): the load reads it.
    #[serde(default)]
    pub exports: std::collections::BTreeMap<String, Vec<String>>,
}

/// A file of the coordinator's, shipped to an agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShippedFile {
    /// How the plan or the command line refers to it.
    pub reference: String,
    /// Its bytes, base64.
    pub base64: String,
}

/// A message stream: the reading half of a connection.
pub struct Reader(FramedRead<OwnedReadHalf, LengthDelimitedCodec>);

/// The writing half of a connection.
pub struct Writer(FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>);

/// Splits a connection into its message reader and writer.
pub fn split(stream: TcpStream) -> (Reader, Writer) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let codec = |max| LengthDelimitedCodec::builder().max_frame_length(max).new_codec();
    (Reader(FramedRead::new(read, codec(MAX_HANDSHAKE_MESSAGE))), Writer(FramedWrite::new(write, codec(MAX_MESSAGE))))
}

impl Reader {
    /// Accepts messages up to [`MAX_MESSAGE`]: once the peer proved it knows the token.
    pub fn trust(&mut self) {
        self.0.decoder_mut().set_max_frame_length(MAX_MESSAGE);
    }

    /// The next message; `None` when the peer closed the connection.
    pub async fn next(&mut self) -> Result<Option<Message>, ClusterError> {
        match self.0.next().await {
            None => Ok(None),
            Some(Err(e)) => Err(ClusterError::Protocol(format!("cannot read a message: {e}"))),
            Some(Ok(frame)) => serde_json::from_slice(&frame)
                .map(Some)
                .map_err(|e| ClusterError::Protocol(format!("malformed message: {e}"))),
        }
    }

    /// The next message, which must be there.
    pub async fn expect(&mut self, waiting_for: &str) -> Result<Message, ClusterError> {
        match self.next().await? {
            Some(Message::Refused { reason }) => Err(ClusterError::Refused(reason)),
            Some(message) => Ok(message),
            None => {
                Err(ClusterError::Protocol(format!("the peer closed the connection while we waited for {waiting_for}")))
            }
        }
    }
}

impl Writer {
    /// Sends `message`.
    pub async fn send(&mut self, message: &Message) -> Result<(), ClusterError> {
        let bytes = serde_json::to_vec(message).map_err(|e| ClusterError::Protocol(e.to_string()))?;
        self.0.send(tokio_util::bytes::Bytes::from(bytes)).await.map_err(ClusterError::io("cannot send a message"))
    }
}

/// Sends what is queued, in order, until every sender is gone; gives the writer back then
/// (`None` once a send failed), for the next job on the same connection.
pub(crate) async fn write_all(
    mut writer: Writer,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Message>,
) -> Option<Writer> {
    while let Some(message) = queue.recv().await {
        if writer.send(&message).await.is_err() {
            return None;
        }
    }
    Some(writer)
}

/// Microseconds since the Unix epoch, now.
pub fn unix_us_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dialing = TcpStream::connect(listener.local_addr().unwrap());
        let (accepted, dialed) = tokio::join!(listener.accept(), dialing);
        (accepted.unwrap().0, dialed.unwrap())
    }

    #[tokio::test]
    async fn messages_cross_and_a_closed_peer_is_none() {
        let (a, b) = pair().await;
        let (_, mut writer) = split(a);
        let (mut reader, _) = split(b);
        writer.send(&Message::Heartbeat { cpu_us: 7 }).await.unwrap();
        assert!(matches!(reader.next().await.unwrap(), Some(Message::Heartbeat { cpu_us: 7 })));
        drop(writer);
        assert!(reader.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stranger_cannot_make_us_buffer_a_big_message_and_garbage_is_an_error() {
        let (a, mut b) = pair().await;
        let (mut reader, _) = split(a);
        // A length prefix of 1 MiB before the handshake: refused without reading it.
        b.write_all(&(1024u32 * 1024).to_be_bytes()).await.unwrap();
        assert!(reader.next().await.is_err());

        let (a, mut b) = pair().await;
        let (mut reader, _) = split(a);
        let junk = b"not json";
        b.write_all(&(junk.len() as u32).to_be_bytes()).await.unwrap();
        b.write_all(junk).await.unwrap();
        let error = reader.next().await.unwrap_err().to_string();
        assert!(error.contains("malformed"), "{error}");
    }

    #[tokio::test]
    async fn a_trusted_peer_may_send_a_plan_sized_message() {
        let (a, b) = pair().await;
        let (_, mut writer) = split(a);
        let (mut reader, _) = split(b);
        reader.trust();
        let big = Job {
            args: vec!["x".repeat(200_000)],
            files: Vec::new(),
            segment: "1/1".into(),
            segment_sequence: None,
            step_rate: None,
            exports: Default::default(),
        };
        writer.send(&Message::Job(Box::new(big))).await.unwrap();
        assert!(matches!(reader.next().await.unwrap(), Some(Message::Job(job)) if job.args[0].len() == 200_000));
    }
}
