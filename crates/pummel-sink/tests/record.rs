//! The record file (`SinkConfig::record`): every complete request as one JSON line, bodies
//! decoded from their framing and capped, written by a background thread and complete once the
//! sink is shut down. Plain blocking `std::net` clients on loopback; every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pummel_sink::{SinkConfig, SinkError, SinkHandle};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(5);
/// The cap on recorded body bytes (1 MiB).
const CAP: usize = 1 << 20;

/// A record file path of its own for each test, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("pummel-sink-record-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempFile(dir.join("record.jsonl"))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn recording_sink(path: &Path, threads: usize) -> SinkHandle {
    let config = SinkConfig { record: Some(path.to_owned()), threads, ..SinkConfig::default() };
    pummel_sink::start("127.0.0.1:0".parse().unwrap(), config).expect("sink starts")
}

/// Every line of the record file, parsed; panics on a line that is not one JSON object.
fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read the record file");
    assert!(text.is_empty() || text.ends_with('\n'), "the last line is not complete");
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert!(value.is_object(), "{line:?}");
            value
        })
        .collect()
}

/// A keep-alive client that sends raw bytes and reads `200` answers.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.reader.get_mut().write_all(bytes.as_ref()).expect("write request");
    }

    /// Reads one answer and checks it is a `200`.
    fn ok(&mut self) {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            let field = line.trim_end();
            if field.is_empty() {
                break;
            }
            if let Some((name, value)) = field.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
    }
}

/// True when `record` has the header `name: value` (name compared as sent).
fn has_header(record: &Value, name: &str, value: &str) -> bool {
    record["headers"]
        .as_array()
        .expect("headers is an array")
        .iter()
        .any(|pair| pair[0].as_str() == Some(name) && pair[1].as_str() == Some(value))
}

#[test]
fn every_kind_of_request_is_recorded_with_its_decoded_body() {
    let file = TempFile::new("kinds");
    let sink = recording_sink(&file.0, 1);
    let stats = sink.stats();
    let mut client = Client::connect(sink.local_addr());

    // 1. A JSON body framed by Content-Length.
    let json = r#"{"id":1,"text":"é \"quoted\"\n"}"#;
    client.send(format!(
        "POST /notify?x=1 HTTP/1.1\r\nHost: sink\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    ));
    client.ok();

    // 2. A chunked body split across writes, cut inside sizes, data and CRLFs.
    let parts = [
        "PUT /chunked HTTP/1.1\r\nHost: sink\r\nTransfer-Encoding: chunked\r\nX-Test: chunks\r\n\r\n",
        "5\r\nhel",
        "lo\r\n",
        "1",
        "0;ext=1\r\n0123456789abcdef\r",
        "\n0\r\nX-Trailer: 1\r\n",
        "\r\n",
    ];
    for part in parts {
        client.send(part);
        std::thread::sleep(Duration::from_millis(20));
    }
    client.ok();

    // 3. A GET without a body.
    client.send("GET /plain HTTP/1.1\r\nHost: sink\r\nAccept: */*\r\n\r\n");
    client.ok();

    // 4. A body that is not UTF-8.
    let binary: &[u8] = &[0xff, 0xfe, 0x00, 0x80, b'a', 0xc3];
    client.send(format!("POST /binary HTTP/1.1\r\nHost: sink\r\nContent-Length: {}\r\n\r\n", binary.len()));
    client.send(binary);
    client.ok();

    // 5. A body over the cap, sent in pieces.
    let big: Vec<u8> = (0..CAP + 1000).map(|i| b'a' + (i % 26) as u8).collect();
    client.send(format!("POST /big HTTP/1.1\r\nHost: sink\r\nContent-Length: {}\r\n\r\n", big.len()));
    for piece in big.chunks(100_000) {
        client.send(piece);
    }
    client.ok();

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    drop(client);
    sink.close().expect("the record file is written in full");
    let snap = stats.snapshot();
    assert_eq!((snap.requests, snap.recorded, snap.not_recorded), (5, 5, 0), "{snap:?}");

    let records = lines(&file.0);
    assert_eq!(records.len(), 5, "{records:#?}");
    let want = [("POST", "/notify?x=1"), ("PUT", "/chunked"), ("GET", "/plain"), ("POST", "/binary"), ("POST", "/big")];
    for (record, (method, target)) in records.iter().zip(want) {
        assert_eq!(record["method"], method, "{record}");
        assert_eq!(record["target"], target, "{record}");
        assert!(has_header(record, "Host", "sink"), "{record}");
        let t_ms = record["t_ms"].as_u64().expect("t_ms is a number");
        assert!(t_ms <= before && before - t_ms < 60_000, "t_ms {t_ms} vs now {before}");
    }

    assert!(has_header(&records[0], "Content-Type", "application/json"));
    assert_eq!(records[0]["body"], json);
    assert!(records[0].get("truncated").is_none() && records[0].get("body_base64").is_none());

    assert!(has_header(&records[1], "Transfer-Encoding", "chunked") && has_header(&records[1], "X-Test", "chunks"));
    assert_eq!(records[1]["body"], "hello0123456789abcdef", "only the payload, decoded");

    assert!(has_header(&records[2], "Accept", "*/*"));
    assert_eq!(records[2]["body"], "");

    assert!(records[3].get("body").is_none(), "{}", records[3]);
    let decoded = BASE64.decode(records[3]["body_base64"].as_str().expect("body_base64")).unwrap();
    assert_eq!(decoded, binary);

    assert_eq!(records[4]["truncated"], true);
    assert_eq!(records[4]["body"].as_str().expect("text body").as_bytes(), &big[..CAP]);
}

#[test]
fn pipelined_requests_on_many_connections_are_all_recorded() {
    let file = TempFile::new("many");
    let sink = recording_sink(&file.0, 2);
    let stats = sink.stats();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let addr = sink.local_addr();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                // 25 pipelined requests in one write, then their answers.
                let batch: String = (0..25)
                    .map(|i| format!("POST /c{c}/r{i} HTTP/1.1\r\nHost: s\r\nContent-Length: 6\r\n\r\nbody{i:02}"))
                    .collect();
                client.send(batch);
                for _ in 0..25 {
                    client.ok();
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    sink.shutdown();
    assert_eq!(stats.snapshot().recorded, 200);
    let records = lines(&file.0);
    assert_eq!(records.len(), 200);
    for c in 0..8 {
        // Each connection's requests are recorded in the order they were sent.
        let bodies: Vec<_> = records
            .iter()
            .filter(|r| r["target"].as_str().unwrap().starts_with(&format!("/c{c}/")))
            .map(|r| r["body"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<_> = (0..25).map(|i| format!("body{i:02}")).collect();
        assert_eq!(bodies, want, "connection {c}");
    }
}

#[test]
fn the_file_is_flushed_while_the_sink_runs() {
    let file = TempFile::new("flush");
    let sink = recording_sink(&file.0, 1);
    let mut client = Client::connect(sink.local_addr());
    client.send("GET /early HTTP/1.1\r\nHost: s\r\n\r\n");
    client.ok();
    // The writer flushes at least every second: the line shows up without a shutdown.
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < TIMEOUT {
        seen = lines(&file.0);
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen.len(), 1, "nothing flushed after {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(3), "flushed only after {:?}", start.elapsed());
    assert_eq!(seen[0]["target"], "/early");
    drop(sink);
}

#[test]
fn bad_requests_are_not_recorded() {
    let file = TempFile::new("bad");
    let sink = recording_sink(&file.0, 1);
    let mut client = Client::connect(sink.local_addr());
    client.send("GET /good HTTP/1.1\r\nHost: s\r\n\r\n");
    client.ok();
    client.send("POST /bad HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    let mut rest = Vec::new();
    let _ = client.reader.read_to_end(&mut rest);
    assert!(String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 400"));
    sink.shutdown();
    let records = lines(&file.0);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["target"], "/good");
}

#[test]
fn a_record_file_that_cannot_be_created_stops_the_start() {
    let path = PathBuf::from("/nonexistent-pummel-dir/sub/record.jsonl");
    let config = SinkConfig { record: Some(path.clone()), ..SinkConfig::default() };
    let err = pummel_sink::start("127.0.0.1:0".parse().unwrap(), config).expect_err("start fails");
    assert!(matches!(&err, SinkError::Record { path: p, .. } if *p == path), "{err:?}");
    assert!(err.to_string().contains("/nonexistent-pummel-dir/sub/record.jsonl"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn shutdown_with_idle_and_pending_connections_is_prompt() {
    let file = TempFile::new("prompt");
    let config = SinkConfig {
        record: Some(file.0.clone()),
        delay: pummel_sink::Delay::Fixed(Duration::from_secs(30)),
        ..SinkConfig::default()
    };
    let sink = pummel_sink::start("127.0.0.1:0".parse().unwrap(), config).expect("sink starts");
    let stats = sink.stats();
    let mut held = Client::connect(sink.local_addr());
    held.send("POST /held HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\n\r\nhi");
    let start = Instant::now();
    while stats.snapshot().requests < 1 && start.elapsed() < TIMEOUT {
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    sink.close().expect("closed");
    assert!(start.elapsed() < Duration::from_secs(2), "shutdown took {:?}", start.elapsed());
    // Recorded when it was read, although it was never answered.
    let records = lines(&file.0);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["body"], "hi");
}
