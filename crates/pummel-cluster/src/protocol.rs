//! The messages a coordinator and its agents exchange, and their framing.
//!
//! The conversation: the agent says [`Message::Hello`]; the coordinator answers
//! [`Message::Challenge`] with its proof; the agent answers [`Message::Proof`] (`auth`). Once N
//! agents are in, each gets a [`Message::Job`], answers [`Message::Ready`] (or
//! [`Message::Refused`]), a few [`Message::Ping`]/[`Message::Pong`] rounds measure its clock,
//! and [`Message::Start`] gives the instant. Then the agent sends [`Message::Report`]s and a
//! [`Message::Heartbeat`] every second, and [`Message::Done`] at the end; the coordinator sends
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
/// heartbeats during the run, and an agent stops when they cease.)
pub const PROTOCOL_VERSION: u32 = 2;

/// The largest message accepted: a plan with its feeder files must fit.
pub const MAX_MESSAGE: usize = 256 * 1024 * 1024;

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
    /// This agent's part: `i/N`, 1-based.
    pub segment: String,
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
    let codec = || LengthDelimitedCodec::builder().max_frame_length(MAX_MESSAGE).new_codec();
    (Reader(FramedRead::new(read, codec())), Writer(FramedWrite::new(write, codec())))
}

impl Reader {
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

/// Microseconds since the Unix epoch, now.
pub fn unix_us_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}
