//! HTTP/2 against an in-process h2 server on 127.0.0.1: connections shared as the streams
//! need, `GOAWAY` and `RST_STREAM` handled as the module doc says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;

use bytes::Bytes;
use pummel_results::error_kind::ErrorKind;

use crate::engine::{RunControl, run};
use crate::plan::{ClosedLoad, Http2Settings, Load, Plan, QuickRun, RateStage, RequestSpec, Stop, Target};

/// How the test server treats requests.
#[derive(Clone, Copy)]
enum Serve {
    /// `200 ok\n` to every request.
    Ok,
    /// `RST_STREAM(REFUSED_STREAM)` to every request.
    Refuse,
    /// Answers this many requests per connection, then says GOAWAY (gracefully).
    GoAwayAfter(u64),
}

/// An HTTP/2 (h2c) server on its own thread; counts connections and requests answered.
fn server(serve: Serve) -> (SocketAddr, Arc<AtomicU64>, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (connections, requests) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (c, r) = (connections.clone(), requests.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_connection(tcp, serve, r.clone()));
            }
        });
    });
    (addr, connections, requests)
}

async fn serve_connection(tcp: TcpStream, serve: Serve, requests: Arc<AtomicU64>) {
    let Ok(mut connection) = ::h2::server::handshake(tcp).await else { return };
    let mut answered = 0;
    while let Some(Ok((_request, mut respond))) = connection.accept().await {
        if let Serve::Refuse = serve {
            respond.send_reset(::h2::Reason::REFUSED_STREAM);
            continue;
        }
        let response = http::Response::builder().status(200).header("content-length", "3").body(()).unwrap();
        if let Ok(mut body) = respond.send_response(response, false) {
            let _ = body.send_data(Bytes::from_static(b"ok\n"), true);
        }
        requests.fetch_add(1, Ordering::SeqCst);
        answered += 1;
        if let Serve::GoAwayAfter(limit) = serve {
            if answered == limit {
                connection.graceful_shutdown();
            }
        }
    }
}

fn plan(addr: SocketAddr, load: Load, streams: usize, stop: Stop) -> Plan {
    let target = Target::resolve(&format!("http://{addr}/")).unwrap();
    let quick = QuickRun {
        request: RequestSpec { method: "GET".into(), headers: vec![("X-Test".into(), "1".into())], body: vec![] },
        load,
        http2: Some(Http2Settings { streams }),
    };
    let scenarios = quick.scenarios(&target, true, false, stop.duration).unwrap();
    let mut plan = Plan::new(target, scenarios, stop);
    plan.threads = 2;
    plan.timeout = Duration::from_secs(5);
    plan.connect_timeout = Duration::from_secs(2);
    plan.abort_window = Duration::from_secs(1);
    plan
}

fn closed(connections: usize) -> Load {
    Load::Closed(ClosedLoad { connections })
}

fn requests(n: u64) -> Stop {
    Stop { duration: Some(Duration::from_secs(20)), requests: Some(n) }
}

#[test]
fn one_connection_carries_every_stream_of_the_closed_model() {
    let (addr, connections, answered) = server(Serve::Ok);
    let outcome = run(&plan(addr, closed(1), 100, requests(3000)), &RunControl::new(), |_| {}).unwrap();
    assert_eq!((outcome.total.sent, outcome.total.ok), (3000, 3000), "{:?}", outcome.other_errors);
    assert_eq!(outcome.total.connections_opened, 1);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    assert_eq!(answered.load(Ordering::SeqCst), 3000);
    assert!(outcome.total.bytes_in > 3000 * 3 && outcome.total.bytes_out > 3000, "{:?}", outcome.total.bytes_in);
    assert_eq!(outcome.total.unanswered, 0);
}

#[test]
fn closed_model_opens_exactly_the_connections_asked_for() {
    let (addr, connections, _) = server(Serve::Ok);
    let outcome = run(&plan(addr, closed(3), 4, requests(600)), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.ok, 600);
    assert_eq!(outcome.total.connections_opened, 3);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

#[test]
fn open_model_fills_the_streams_of_one_connection_first() {
    let (addr, connections, _) = server(Serve::Ok);
    let load = Load::Open(crate::plan::OpenLoad {
        stages: vec![RateStage::level(1000.0, Duration::from_secs(1))],
        arrival: crate::plan::Arrival::Uniform,
        max_connections: 1,
        max_inflight: None,
    });
    let stop = Stop { duration: Some(Duration::from_secs(1)), requests: None };
    let outcome = run(&plan(addr, load, 100, stop), &RunControl::new(), |_| {}).unwrap();
    assert!((950..=1000).contains(&outcome.total.ok), "{}", outcome.total.ok);
    assert_eq!(outcome.total.failed, 0, "{:?}", outcome.other_errors);
    assert_eq!(outcome.total.connections_opened, 1);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn refused_streams_are_stream_resets() {
    let (addr, _, _) = server(Serve::Refuse);
    let outcome = run(&plan(addr, closed(1), 10, requests(50)), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.errors.get(ErrorKind::StreamReset), 50, "{:?}", outcome.other_errors);
    assert_eq!(outcome.total.connections_opened, 1, "a reset stream leaves its connection usable");
}

#[test]
fn requests_a_goaway_refused_go_out_again_on_a_new_connection() {
    let (addr, connections, answered) = server(Serve::GoAwayAfter(40));
    let outcome = run(&plan(addr, closed(1), 10, requests(400)), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.ok, 400, "{:?} {:?}", outcome.total.errors, outcome.other_errors);
    assert_eq!(answered.load(Ordering::SeqCst), 400);
    // Each connection answers its 40, plus the streams already open when its GOAWAY went
    // out (at most 10 here): 400 requests need at least 8 connections.
    let opened = connections.load(Ordering::SeqCst);
    assert!(opened >= 8, "{opened}");
    assert_eq!(outcome.total.connections_opened, opened);
}

/// A scenario of `users` users, each sending `iterations` requests over HTTP/2.
fn flow_plan(addr: SocketAddr, users: usize, streams: usize, iterations: u64) -> Plan {
    let mut plan = plan(addr, closed(1), streams, Stop { duration: None, requests: None });
    let scenario = &mut Arc::make_mut(&mut plan.scenarios).list[0];
    scenario.load = closed(users);
    scenario.iterations = Some(iterations);
    scenario.duration = None;
    plan
}

#[test]
fn flow_users_share_as_few_connections_as_their_streams_need() {
    let (addr, connections, answered) = server(Serve::Ok);
    // Two shards of 50 users, 50 streams per connection: one connection each.
    let outcome = run(&flow_plan(addr, 100, 50, 20), &RunControl::new(), |_| {}).unwrap();
    assert_eq!((outcome.total.sent, outcome.total.ok), (2000, 2000), "{:?}", outcome.other_errors);
    assert_eq!(answered.load(Ordering::SeqCst), 2000);
    assert_eq!(outcome.total.connections_opened, 2);
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    assert_eq!(outcome.total.unanswered, 0);
}

#[test]
fn flow_users_beyond_the_streams_wait_for_a_slot_instead_of_a_connection() {
    let (addr, connections, _) = server(Serve::Ok);
    // 40 users per shard on 10 streams: 4 connections per shard, none more.
    let outcome = run(&flow_plan(addr, 80, 10, 10), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.ok, 800, "{:?}", outcome.other_errors);
    assert_eq!(connections.load(Ordering::SeqCst), 8);
}

#[test]
fn open_model_flows_fill_the_streams_of_the_pool_bound() {
    let (addr, connections, _) = server(Serve::Ok);
    let mut plan = flow_plan(addr, 1, 100, 1);
    // 500 arrivals a second over 1 s, at most one connection per shard (of 2): each
    // arrival's user takes a stream of it, however many are under way at once.
    let load = Load::Open(crate::plan::OpenLoad {
        stages: vec![RateStage::level(500.0, Duration::from_secs(1))],
        arrival: crate::plan::Arrival::Uniform,
        max_connections: 2,
        max_inflight: None,
    });
    let scenario = &mut Arc::make_mut(&mut plan.scenarios).list[0];
    scenario.load = load;
    scenario.iterations = None;
    let outcome = run(&plan, &RunControl::new(), |_| {}).unwrap();
    assert!((480..=500).contains(&outcome.total.ok), "{} {:?}", outcome.total.ok, outcome.other_errors);
    assert_eq!(outcome.total.failed, 0);
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[test]
fn flow_requests_a_goaway_refused_go_out_again() {
    let (addr, connections, answered) = server(Serve::GoAwayAfter(30));
    let outcome = run(&flow_plan(addr, 20, 20, 30), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.ok, 600, "{:?} {:?}", outcome.total.errors, outcome.other_errors);
    assert_eq!(answered.load(Ordering::SeqCst), 600);
    // A connection answers 30 and those already under way, then the next one takes over.
    assert!(connections.load(Ordering::SeqCst) > 2, "{}", connections.load(Ordering::SeqCst));
}

#[test]
fn flow_streams_the_server_resets_are_stream_resets() {
    let (addr, connections, _) = server(Serve::Refuse);
    let outcome = run(&flow_plan(addr, 10, 10, 5), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.errors.get(ErrorKind::StreamReset), 50, "{:?}", outcome.other_errors);
    // Ten users on ten streams are one connection's worth: one shard, one connection.
    assert_eq!(connections.load(Ordering::SeqCst), 1, "a reset stream leaves its connection usable");
}
