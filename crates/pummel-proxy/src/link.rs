//! One proxied connection: the client, its upstream, and the two directions between them.
//!
//! Each direction runs one of two loops. With no toxic on its side it is a plain copy: wait
//! until the source is readable, read into a buffer allocated on first use, write it all to the
//! other side, count the bytes; a short read is taken as "nothing more for now" (see
//! `read_some`), which saves a syscall per chunk. This is the path a benchmark measures, so it is written on the
//! sockets' own readiness (`readable` + `try_read`, `try_write` + `writable`) rather than
//! through `copy_bidirectional`: the loop must also wake when a toxic is added (a `Notify`
//! that stays registered across reads), and a connection that never sends costs no buffer.
//! With toxics, the direction reads chunks into a [`Pipeline`] and writes what it says is due,
//! when it is due. A change of toxics reaches a live connection at once: both loops wait on
//! the proxy's [`ToxicBoard`] beside their socket.
//!
//! Ends: a source's end of stream is passed on as a half-close (the other direction goes on,
//! as in any TCP proxy); a toxic's close or reset, a failed read or write, or the proxy going
//! down ends both sides. A reset sets `SO_LINGER` to 0 on both sockets, so both peers get an RST.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Event, Pipeline};
use crate::stats::ProxyStats;
use crate::toxic::{Stream, Toxic};

/// Bytes read at once.
const CHUNK: usize = 16 * 1024;
/// Bytes a direction holds in its toxics (delayed, throttled) before it stops reading: the
/// sender then feels backpressure, as through a slow network.
const MAX_BUFFERED: usize = 4 * 1024 * 1024;
/// How long the upstream gets to accept a connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The toxics of one proxy as its live connections see them.
#[derive(Debug, Default)]
pub(crate) struct ToxicBoard {
    /// Upstream toxics, then downstream ones, each list in the order they were added.
    current: RwLock<Arc<[Vec<Arc<Toxic>>; 2]>>,
    /// Bumped at each change, so that a loop can tell whether it missed one.
    generation: AtomicU64,
    changed: Notify,
}

impl ToxicBoard {
    /// Publishes a new set of toxics to every connection.
    pub fn publish(&self, toxics: [Vec<Arc<Toxic>>; 2]) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(toxics);
        self.generation.fetch_add(1, Ordering::Release);
        drop(current);
        self.changed.notify_waiters();
    }

    fn load(&self, stream: Stream) -> (u64, Vec<Arc<Toxic>>) {
        let generation = self.generation.load(Ordering::Acquire);
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (generation, current[stream.index()].clone())
    }
}

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The source ended its stream and the end was passed on.
    Eof,
    /// The connection is over: close both sides.
    Close,
    /// A toxic reset the connection: reset both sides.
    Reset,
}

/// Serves one accepted client until either side ends it, a toxic does, or `kill` fires (the
/// proxy went down or pummel is stopping).
pub(crate) async fn serve(
    client: TcpStream,
    upstream: Arc<str>,
    board: Arc<ToxicBoard>,
    stats: Arc<ProxyStats>,
    kill: CancellationToken,
) {
    let _open = stats.accepted();
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&*upstream));
    let server = tokio::select! {
        () = kill.cancelled() => return,
        connected = connect => match connected {
            Ok(Ok(server)) => server,
            _ => {
                stats.upstream_failed();
                return;
            }
        },
    };
    let _ = server.set_nodelay(true);
    let up = pump(&client, &server, Stream::Upstream, &board, &stats);
    let down = pump(&server, &client, Stream::Downstream, &board, &stats);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let end = loop {
        tokio::select! {
            () = kill.cancelled() => break End::Close,
            end = &mut up, if !up_done => match end {
                End::Eof => up_done = true,
                other => break other,
            },
            end = &mut down, if !down_done => match end {
                End::Eof => down_done = true,
                other => break other,
            },
        }
        if up_done && down_done {
            break End::Eof;
        }
    };
    if end == End::Reset {
        for socket in [&client, &server] {
            let _ = SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
    }
    // Dropping the sockets closes them (or resets them, with the linger above).
}

/// Moves one direction from `src` to `dst` until it ends.
async fn pump(src: &TcpStream, dst: &TcpStream, stream: Stream, board: &ToxicBoard, stats: &ProxyStats) -> End {
    let changed = board.changed.notified();
    tokio::pin!(changed);
    changed.as_mut().enable();
    let (mut seen, toxics) = board.load(stream);
    let mut pipeline = (!toxics.is_empty()).then(|| Pipeline::new(&toxics, Instant::now()));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = BytesMut::new();
    let mut source_ended = false;
    loop {
        // A change published since the last look (the notification may have been missed
        // while this loop was writing).
        if board.generation.load(Ordering::Acquire) != seen {
            let (generation, toxics) = board.load(stream);
            seen = generation;
            match &mut pipeline {
                Some(p) => p.update(&toxics, Instant::now()),
                None if !toxics.is_empty() => pipeline = Some(Pipeline::new(&toxics, Instant::now())),
                None => {}
            }
        }
        let Some(p) = &mut pipeline else {
            // No toxic: the plain copy.
            tokio::select! {
                biased;
                () = &mut changed => {
                    changed.set(board.changed.notified());
                    changed.as_mut().enable();
                    continue;
                }
                ready = src.readable() => if ready.is_err() {
                    return End::Close;
                },
            }
            if buf.is_empty() {
                buf = vec![0; CHUNK];
            }
            match read_some(src, &mut buf) {
                Ok(0) => {
                    let _ = SockRef::from(dst).shutdown(std::net::Shutdown::Write);
                    return End::Eof;
                }
                Ok(n) => {
                    if write_all(dst, &buf[..n]).await.is_err() {
                        return End::Close;
                    }
                    stats.add_bytes(stream, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return End::Close,
            }
            continue;
        };
        // Toxics: write what is due, then wait for the next due time, data or a change.
        let now = Instant::now();
        p.advance(now);
        while let Some(event) = p.pop_due(now) {
            match event {
                Event::Data(data) => {
                    if write_all(dst, &data).await.is_err() {
                        return End::Close;
                    }
                    stats.add_bytes(stream, data.len());
                }
                Event::Eof => {
                    let _ = SockRef::from(dst).shutdown(std::net::Shutdown::Write);
                    return End::Eof;
                }
                Event::Close => return End::Close,
                Event::Reset => return End::Reset,
            }
        }
        if p.is_empty() {
            // The last toxic went and took nothing with it: back to the plain copy.
            pipeline = None;
            continue;
        }
        let wake = p.next_wake();
        let read = !source_ended && p.buffered() < MAX_BUFFERED;
        tokio::select! {
            biased;
            () = &mut changed => {
                changed.set(board.changed.notified());
                changed.as_mut().enable();
            }
            () = tokio::time::sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            ready = src.readable(), if read => {
                if ready.is_err() {
                    p.push(Event::Close, Instant::now());
                    source_ended = true;
                    continue;
                }
                chunk.reserve(CHUNK);
                match src.try_read_buf(&mut chunk) {
                    Ok(0) => {
                        p.push(Event::Eof, Instant::now());
                        source_ended = true;
                    }
                    Ok(_) => p.push(Event::Data(chunk.split().freeze()), Instant::now()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        p.push(Event::Close, Instant::now());
                        source_ended = true;
                    }
                }
            }
        }
    }
}

/// Reads what the socket holds into `buf`. A read that did not fill `buf` took everything
/// the socket had, so it also marks the socket not readable (as a read that would block
/// does): the loop then waits for the next data instead of paying one more read to learn
/// there is none — a third of the syscalls of a small request. This is safe because tokio's
/// `try_io` clears the readiness it saw *before* the read: data that arrives after the read
/// brings a new readiness event, which wakes the loop again.
fn read_some(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut got = 0;
    let result = src.try_io(tokio::io::Interest::READABLE, || {
        got = (&*SockRef::from(src)).read(buf)?;
        if got > 0 && got < buf.len() { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(got) }
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// Writes all of `data`, waiting for the socket to take it.
async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::Instant;

    use crate::collection::{Proxies, ProxySpec};
    use crate::toxic::{Stream, Toxic, ToxicKind};

    /// An echo server on loopback; returns its address.
    async fn echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn proxy_to(upstream: String) -> (Proxies, String) {
        let proxies = Proxies::new(None);
        let spec = ProxySpec {
            name: "echo".into(),
            listen: "127.0.0.1:0".into(),
            upstream,
            enabled: true,
            toxics: Vec::new(),
        };
        let info = proxies.create(spec).await.unwrap();
        (proxies, info.listen)
    }

    /// Sends `text` and reads it back; returns how long that took.
    async fn round_trip(stream: &mut TcpStream, text: &[u8]) -> Duration {
        let started = Instant::now();
        stream.write_all(text).await.unwrap();
        let mut back = vec![0u8; text.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, text);
        started.elapsed()
    }

    /// On tokio's paused clock: a latency toxic delays each answer by exactly its latency, and
    /// adding or removing it acts on a connection that is already open.
    #[tokio::test(start_paused = true)]
    async fn latency_applies_at_once_to_a_live_connection() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let mut client = TcpStream::connect(&listen).await.unwrap();
        assert!(round_trip(&mut client, b"a").await < Duration::from_millis(1));
        let toxic = Toxic::new(ToxicKind::Latency { latency: 20, jitter: 0 }, Stream::Downstream);
        proxies.add_toxic("echo", toxic).await.unwrap();
        let took = round_trip(&mut client, b"b").await;
        assert!(took >= Duration::from_millis(20) && took < Duration::from_millis(22), "{took:?}");
        let upstream = Toxic::new(ToxicKind::Latency { latency: 30, jitter: 0 }, Stream::Upstream);
        proxies.add_toxic("echo", upstream).await.unwrap();
        let took = round_trip(&mut client, b"c").await;
        assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(52), "{took:?}");
        proxies.reset().await.unwrap();
        assert!(round_trip(&mut client, b"d").await < Duration::from_millis(1));
    }

    /// On tokio's paused clock: 10 KB/s moves 30,000 bytes in 3 s.
    #[tokio::test(start_paused = true)]
    async fn bandwidth_paces_a_large_transfer() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let toxic = Toxic::new(ToxicKind::Bandwidth { rate: 10 }, Stream::Downstream);
        proxies.add_toxic("echo", toxic).await.unwrap();
        let mut client = TcpStream::connect(&listen).await.unwrap();
        let payload = vec![7u8; 30_000];
        let took = round_trip(&mut client, &payload).await;
        assert!(took >= Duration::from_millis(2990) && took < Duration::from_millis(3100), "{took:?}");
    }

    /// On tokio's paused clock: a timeout toxic drops what the client sends and closes the
    /// connection once nothing came for its timeout.
    #[tokio::test(start_paused = true)]
    async fn timeout_drops_data_then_closes() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let toxic = Toxic::new(ToxicKind::Timeout { timeout: 100 }, Stream::Upstream);
        proxies.add_toxic("echo", toxic).await.unwrap();
        let mut client = TcpStream::connect(&listen).await.unwrap();
        let started = Instant::now();
        client.write_all(b"lost").await.unwrap();
        let mut buf = [0u8; 8];
        let read = client.read(&mut buf).await;
        assert!(matches!(read, Ok(0)), "{read:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100) && took < Duration::from_millis(102), "{took:?}");
    }

    /// On tokio's paused clock: slow_close holds the server's close back by its delay, the
    /// data before it is not held.
    #[tokio::test(start_paused = true)]
    async fn slow_close_delays_the_end_of_stream() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let toxic = Toxic::new(ToxicKind::SlowClose { delay: 200 }, Stream::Downstream);
        proxies.add_toxic("echo", toxic).await.unwrap();
        let mut client = TcpStream::connect(&listen).await.unwrap();
        assert!(round_trip(&mut client, b"data").await < Duration::from_millis(1));
        let started = Instant::now();
        client.shutdown().await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(202), "{took:?}");
    }

    /// limit_data: the client gets exactly the limit, then the close.
    #[tokio::test]
    async fn limit_data_closes_after_its_bytes() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let toxic = Toxic::new(ToxicKind::LimitData { bytes: 10 }, Stream::Downstream);
        proxies.add_toxic("echo", toxic).await.unwrap();
        let mut client = TcpStream::connect(&listen).await.unwrap();
        client.write_all(b"0123456789abcdef").await.unwrap();
        let mut back = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut back)).await.unwrap();
        assert!(read.is_ok(), "{read:?}");
        assert_eq!(back, b"0123456789");
    }

    /// Down closes open connections and refuses new ones; up again serves.
    #[tokio::test]
    async fn down_closes_connections_and_refuses_new_ones() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let mut client = TcpStream::connect(&listen).await.unwrap();
        round_trip(&mut client, b"a").await;
        proxies.set_enabled("echo", false).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let refused = TcpStream::connect(&listen).await;
        assert!(refused.is_err(), "a disabled proxy accepted a connection");
        proxies.set_enabled("echo", true).await.unwrap();
        let mut client = TcpStream::connect(&listen).await.unwrap();
        round_trip(&mut client, b"again").await;
        let stats = proxies.snapshot().await;
        assert_eq!(stats[0].stats.accepted, 2);
    }

    /// reset_peer: the client's next read fails with a connection reset.
    #[tokio::test]
    async fn reset_peer_resets_the_client() {
        let (proxies, listen) = proxy_to(echo().await).await;
        let toxic = Toxic::new(ToxicKind::ResetPeer { timeout: 0 }, Stream::Upstream);
        proxies.add_toxic("echo", toxic).await.unwrap();
        let mut client = TcpStream::connect(&listen).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap();
        let err = read.expect_err("the read should fail with a reset");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    }

    /// An upstream that refuses: the client is closed and the failure counted.
    #[tokio::test]
    async fn an_unreachable_upstream_closes_the_client() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nowhere = closed.local_addr().unwrap().to_string();
        drop(closed);
        let (proxies, listen) = proxy_to(nowhere).await;
        let mut client = TcpStream::connect(&listen).await.unwrap();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)));
        assert_eq!(proxies.snapshot().await[0].stats.upstream_failures, 1);
    }
}
