//! A live web dashboard of a run (`--dashboard 127.0.0.1:5665`): one self-contained page (no
//! CDN, nothing downloaded, charts drawn as SVG by its own small script) that the run feeds
//! every second over Server-Sent Events.
//!
//! Every event the run publishes — its title, each second of the timeline, notes (phases,
//! scenarios that start, faults), and at the end the final HTML report — is kept, so a page
//! opened late first receives the whole run so far and then follows it. The server runs on a
//! thread of its own with a single-threaded runtime: the run's threads only append to a list
//! and hand each open page a copy of the event, never waiting on a browser.
//!
//! Routes: `/` the page, `/events` the event stream, `/report` the final report (404 until
//! the run ends).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use pummel_results::timeline::TimelineEntry;
use tokio::sync::mpsc;

/// The page, with its style and script inline.
const PAGE: &str = include_str!("page.html");

/// A running dashboard server. Dropping it does not stop the server: it serves until the
/// process ends, so that the final report stays reachable while pummel lingers.
#[derive(Debug, Clone)]
pub struct Dashboard {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// What the run published so far, and the pages following it.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every event so far, encoded as Server-Sent Events, in order.
    events: Vec<Bytes>,
    /// The open event streams.
    pages: Vec<mpsc::UnboundedSender<Bytes>>,
    /// The final report, once the run ended.
    report: Option<Bytes>,
}

impl Dashboard {
    /// Binds `addr` now (so a port in use is an error here) and serves on a thread of its own.
    pub fn start(addr: SocketAddr) -> std::io::Result<Dashboard> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        let shared = Arc::new(Shared::default());
        let serving = shared.clone();
        std::thread::Builder::new().name("pummel-dashboard".into()).spawn(move || {
            runtime.block_on(async move {
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    serve(listener, serving).await;
                }
            });
        })?;
        Ok(Dashboard { shared, addr })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The run's title (what is loaded, and how).
    pub fn title(&self, title: &str) {
        self.publish("title", &serde_json::Value::from(title).to_string());
    }

    /// One more second of the run.
    pub fn second(&self, entry: &TimelineEntry) {
        if let Ok(json) = serde_json::to_string(entry) {
            self.publish("second", &json);
        }
    }

    /// A line outside the seconds: a phase or scenario that starts, a fault, a warning.
    pub fn note(&self, text: &str) {
        self.publish("note", &serde_json::Value::from(text).to_string());
    }

    /// The run ended: `report` (an HTML page) replaces the live charts.
    pub fn finish(&self, report: String) {
        self.lock().report = Some(Bytes::from(report));
        self.publish("done", "\"/report\"");
    }

    fn publish(&self, event: &str, data: &str) {
        let frame = Bytes::from(format!("event: {event}\ndata: {data}\n\n"));
        let mut state = self.lock();
        state.pages.retain(|page| page.send(frame.clone()).is_ok());
        state.events.push(frame);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// True for an address only this machine reaches.
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&request, &shared)) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn route(request: &Request<hyper::body::Incoming>, shared: &Shared) -> Response<Body> {
    match request.uri().path() {
        "/" => reply(StatusCode::OK, "text/html; charset=utf-8", Bytes::from_static(PAGE.as_bytes())),
        "/events" => events(shared),
        "/report" => match shared.lock().report.clone() {
            Some(report) => reply(StatusCode::OK, "text/html; charset=utf-8", report),
            None => reply(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"the run has not ended yet\n")),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"not found\n")),
    }
}

/// The event stream: every event so far, then each new one as it comes.
fn events(shared: &Shared) -> Response<Body> {
    let (sender, receiver) = mpsc::unbounded_channel();
    {
        // The backlog and the registration under one lock: no event is missed or doubled.
        let mut state = shared.lock();
        for event in &state.events {
            let _ = sender.send(event.clone());
        }
        state.pages.push(sender);
    }
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok::<_, Infallible>(Frame::data(event)), receiver))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: SocketAddr, path: &str, want: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.expect("writes");
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !text.contains(want) && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => break,
            }
        }
        text
    }

    /// A page that connects late gets the whole run so far, then what follows; the report is
    /// there once the run ended.
    #[test]
    fn a_late_page_gets_the_backlog_then_the_rest() {
        let dashboard = Dashboard::start(([127, 0, 0, 1], 0).into()).expect("binds");
        dashboard.title("GET http://127.0.0.1:8090/");
        dashboard.second(&TimelineEntry { second: 1, ok: 5, ..TimelineEntry::default() });
        let addr = dashboard.addr();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let page = get(addr, "/", "</html>").await;
            assert!(page.contains("200 OK") && page.contains("EventSource"), "{page}");
            assert!(get(addr, "/report", "\r\n\r\n").await.contains("404"));
            let follower = tokio::spawn(get(addr, "/events", "event: done"));
            tokio::time::sleep(Duration::from_millis(200)).await;
            dashboard.second(&TimelineEntry { second: 2, ok: 7, ..TimelineEntry::default() });
            dashboard.finish("<html>report</html>".into());
            let events = follower.await.expect("the follower ends");
            let first = events.find("\"second\":1").expect("the backlog");
            let second = events.find("\"second\":2").expect("the new second");
            assert!(first < second && events.contains("event: title"), "{events}");
            assert!(get(addr, "/report", "report</html>").await.contains("report</html>"));
        });
    }
}
