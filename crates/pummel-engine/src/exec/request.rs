//! An HTTP request step: rendered for the user (templates, signature), sent over the user's
//! HTTP/1.1 connection or the scenario's HTTP/2 pool, and judged (status, checks, extraction).
//!
//! A keep-alive connection is reused only while it is good. Before a request goes out on an
//! idle connection, the socket is looked at (at no cost unless the runtime saw it become
//! readable): a connection the server closed while idle — its idle timeout was shorter than
//! the user's think time, or it closed right after an answer without saying
//! `Connection: close` — is replaced by a new one and counted in `reconnects`, never as a
//! failure of the target. If a reused connection still closes before the first byte of the
//! answer (the server's close crossed our request), an idempotent request (RFC 9110 §9.2.2)
//! goes out once more on a fresh connection; any other fails as `reset`, "closed by the
//! server while idle", since the server may have acted on it.

use std::borrow::Cow;
use std::cell::Cell;

use pummel_results::error_kind::ErrorKind;
use tokio::time::Instant;

use super::cookies;
use super::redirect::{self, Hop, NextRequest};
use super::{Held, User};
use crate::dial::{Alpn, IdleState, TransportError};
use crate::engine::shard::Shard;
use crate::flow::body_bytes::BodyBytes;
use crate::flow::{RenderedRequest, RequestStep};
use crate::inspect::{JsonBody, ResponseView, encoding};
use crate::measure::meter::{Answer, Request};
use crate::proto::http1::{Connection, encode_head};
use crate::proto::http2::{Capture, FlowPool, Kept};
use crate::request_log::Record;
use crate::writes::judge::Read;
use crate::writes::{ReadStep, WriteValue};

/// Most body bytes kept for checks and extraction.
const CAPTURE_LIMIT: usize = 1 << 20;

/// Sends one request step and judges its response. `request` is in flight since it was due.
pub(super) async fn send(shard: &Shard, user: &mut User, step: &RequestStep, mut request: Request) {
    if let Some(pool) = user.http2.clone() {
        // Boxed, so that an HTTP/1.1 user's task stays as small as it was.
        return Box::pin(send_over_http2(shard, user, &pool, step, request)).await;
    }
    // A request encoded once is sent as is, unless the user has cookies to add to it.
    let rendered = match &step.fixed {
        Some(bytes) if user.jar.is_none() => {
            Rendered { head: Vec::new(), body: Some(BodyBytes::One(bytes.clone())), path: None }
        }
        _ => match render(shard, user, step) {
            Ok(rendered) => rendered,
            Err(detail) => {
                return fail(shard, &step.method, step.path.text(), request, &TransportError::other(detail), 0);
            }
        },
    };
    if step.write.is_some() {
        // A request encoded once holds its body in its bytes; its step has it on its own.
        let body = match (&rendered.path, &step.body) {
            (None, crate::flow::Body::Fixed(bytes)) => Some(BodyBytes::One(bytes.clone())),
            (None, _) => None,
            (Some(_), _) => rendered.body.clone(),
        };
        if let Err(detail) = make_write(user, step, &mut request, body.as_ref()) {
            return fail(shard, &step.method, step.path.text(), request, &TransportError::other(detail), 0);
        }
    }
    send_over_http1(shard, user, step, request, &rendered).await;
}

/// Makes `request` the write of its step: its key and value rendered for `user` (the value may
/// be the `body` sent, kept as its SHA-256). Its outcome is logged when it ends.
fn make_write(user: &User, step: &RequestStep, request: &mut Request, body: Option<&BodyBytes>) -> Result<(), String> {
    let Some(write) = &step.write else { return Ok(()) };
    let key = user.rendering(|| write.key.render_to_string(&user.vars)).map_err(|e| format!("write key: {e}"))?;
    let value = if write.body {
        let sha = match &step.body {
            crate::flow::Body::Payload(payload) => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(&*payload.sha256_hex, &mut d).map(|()| d).ok()
            }
            _ => None,
        };
        Some(WriteValue::Sha256(
            sha.unwrap_or_else(|| body.map_or_else(|| crate::writes::digest(&[]), BodyBytes::sha256)),
        ))
    } else {
        match &write.value {
            None => None,
            Some(template) => {
                let text = user
                    .rendering(|| template.render_to_string(&user.vars))
                    .map_err(|e| format!("write value: {e}"))?;
                Some(if write.hash {
                    WriteValue::Sha256(crate::writes::digest(text.as_bytes()))
                } else {
                    WriteValue::Text(text)
                })
            }
        }
    };
    request.make_write(key, value);
    Ok(())
}

/// The request over the user's HTTP/1.1 connection (opened or replaced as needed), and the
/// requests its redirects lead to (see `redirect`): the chain is one request, its latency the
/// whole chain's, its checks and extraction the final answer's.
async fn send_over_http1(
    shard: &Shard,
    user: &mut User,
    step: &RequestStep,
    mut request: Request,
    rendered: &Rendered,
) {
    let (name, intended) = (request.name(), request.intended());
    let follows = shard.plan.redirects > 0;
    // A body that is read may come compressed: its Content-Encoding header is needed too; a
    // redirect's Location as well, and the cookies an answer sets.
    let wants_body = step.needs_body();
    let wants_headers = step.needs_headers() || wants_body || follows || shard.plan.cookies;
    let mut retried = false;
    // After a redirect: the chain's request now, and what every request of it sends.
    let mut next: Option<NextRequest> = None;
    let mut chain: Option<Parts> = None;
    let mut hops = 0u32;
    // The request log writes the first bytes of an answer, and needs them kept.
    let log_body = shard.log.as_ref().map_or(0, |log| log.body_bytes());
    let first_path = rendered.path.as_deref().unwrap_or(step.path.text());
    loop {
        let (head, body, method, path) = match &next {
            Some(n) => (n.head.as_slice(), n.body.as_ref(), n.method.as_str(), n.path.as_str()),
            None => (rendered.head.as_slice(), rendered.body.as_ref(), step.method.as_str(), first_path),
        };
        // The host of this request of the chain: a redirect may lead to another target.
        let host = next.as_ref().map_or(step.target, |n| n.target);
        let bytes_out = (head.len() + body.map_or(0, |b| b.len())) as u64;
        let head_request = method.eq_ignore_ascii_case("HEAD");
        // The connection leaves the user for the exchange (extraction writes the user's variables).
        let (mut conn, reused) = match take_idle(shard, user, host, intended) {
            Some(conn) => (conn, true),
            None => match open(shard, host, name, intended).await {
                Ok(conn) => (conn, false),
                Err(e) => return fail(shard, method, path, request, &e, 0),
            },
        };
        conn.io.capture(wants_headers, if wants_body { CAPTURE_LIMIT } else { log_body });
        let reading = Cell::new(false);
        let exchange = async {
            let sent_at = Instant::now();
            if !head.is_empty() {
                conn.io.write_all(head).await?;
            }
            // A body in pieces (a form's shared files) is written piece by piece, never joined.
            for piece in body.map_or(&[][..], BodyBytes::pieces) {
                conn.io.write_all(piece).await?;
            }
            request.written_at(bytes_out, sent_at);
            reading.set(true);
            conn.io.read_response(head_request).await
        };
        let result = tokio::time::timeout(shard.plan.timeout_of(host), exchange).await;
        let done = Instant::now();
        match result {
            Ok(Ok(info)) => {
                if shard.plan.cookies {
                    // The URL this answer came from: the chain's request now.
                    let path = match (&next, &chain, &rendered.path) {
                        (Some(n), _, _) => n.path.as_str(),
                        (None, Some(parts), _) => parts.path.as_str(),
                        (None, None, Some(path)) => path.as_str(),
                        (None, None, None) => step.path.text(),
                    };
                    if let Some(url) = cookies::url_of(shard.plan.target_of(host), path) {
                        let headers: Vec<(&[u8], &[u8])> = conn.io.captured_headers().collect();
                        cookies::store(&mut user.jar, &headers, &url);
                    }
                }
                let location = (follows && redirect::is_redirect(info.status))
                    .then(|| {
                        conn.io
                            .captured_headers()
                            .find(|(name, _)| name.eq_ignore_ascii_case(b"location"))
                            .map(|(_, value)| value.to_vec())
                    })
                    .flatten();
                if let Some(location) = location {
                    let received = info.head_bytes + info.body_bytes;
                    if shard.plan.keepalive_of(host) && conn.io.reusable(&info) {
                        *user.idle_slot(host) = Some(conn);
                    }
                    if hops >= shard.plan.redirects {
                        let error = redirect::too_many(shard.plan.redirects);
                        return fail(shard, method, path, request, &error, received);
                    }
                    if chain.is_none() {
                        match render_parts(shard, user, step) {
                            Ok(parts) => chain = Some(parts),
                            Err(detail) => {
                                let error = TransportError::other(detail);
                                return fail(shard, method, path, request, &error, received);
                            }
                        }
                    }
                    let Some(parts) = chain.as_ref() else { return };
                    let hop = match &next {
                        Some(n) => {
                            Hop { method: &n.method, path: &n.path, headers: &parts.headers, body: n.body.as_ref() }
                        }
                        None => Hop {
                            method: &step.method,
                            path: &parts.path,
                            headers: &parts.headers,
                            body: parts.body.as_ref(),
                        },
                    };
                    let targets: Vec<&crate::plan::Target> =
                        (0..shard.plan.target_count()).map(|i| shard.plan.target_of(i)).collect();
                    let jar = &user.jar;
                    let cookies_for = |to: usize, path: &str| {
                        shard
                            .plan
                            .cookies
                            .then(|| cookies::url_of(targets[to], path).and_then(|url| cookies::header_for(jar, &url)))
                    };
                    let keepalive: Vec<bool> = (0..targets.len()).map(|i| shard.plan.keepalive_of(i)).collect();
                    match redirect::follow(&targets, host, &keepalive, &hop, info.status, &location, &cookies_for) {
                        Ok(request_next) => next = Some(request_next),
                        Err(e) => return fail(shard, method, path, request, &e, received),
                    }
                    hops += 1;
                    retried = false;
                    shard.meter.redirected(intended, received);
                    continue;
                }
                let headers: Vec<(&[u8], &[u8])> =
                    if wants_headers { conn.io.captured_headers().collect() } else { Vec::new() };
                let complete = info.body_bytes <= CAPTURE_LIMIT as u64;
                // Only a body that is read is decoded (one kept for the log only is not).
                let body = if wants_body {
                    match decoded(&headers, conn.io.captured_body(), complete) {
                        Ok(body) => body,
                        Err(e) => {
                            drop(headers);
                            return fail(shard, method, path, request, &e, info.head_bytes + info.body_bytes);
                        }
                    }
                } else {
                    Cow::Borrowed(conn.io.captured_body())
                };
                let view = ResponseView {
                    status: info.status,
                    headers: &headers,
                    body: &body,
                    // Latency as everywhere: from when the request was due.
                    elapsed: done - intended,
                };
                let failure = judge(shard, user, step, &view, intended, complete);
                let keep = shard.plan.keepalive_of(host) && conn.io.reusable(&info);
                let bytes_decoded = if matches!(body, Cow::Owned(_)) { body.len() as u64 } else { 0 };
                drop(headers);
                let answer = Answer {
                    status: Some(info.status),
                    failure,
                    done,
                    bytes_in: info.head_bytes + info.body_bytes,
                    bytes_decoded,
                };
                log_answer(shard, method, path, &request, &answer, &body);
                request.answered(answer);
                if keep {
                    *user.idle_slot(host) = Some(conn);
                }
                return;
            }
            Ok(Err(e)) if reused && !retried && closed_before_answer(&e, &conn.io, reading.get()) => {
                drop(conn);
                if !is_idempotent(method) {
                    let error = TransportError::new(ErrorKind::Reset, "closed by the server while idle");
                    return fail(shard, method, path, request, &error, 0);
                }
                shard.meter.reconnected(intended);
                retried = true;
            }
            Ok(Err(e)) => return fail(shard, method, path, request, &e, conn.io.received_bytes()),
            Err(_elapsed) => {
                let error = TransportError::timeout(shard.plan.timeout_of(host));
                return fail(shard, method, path, request, &error, conn.io.received_bytes());
            }
        }
    }
}

/// Ends `request` with a failure that came after `bytes_in` bytes of its answer, and logs it
/// when the request log wants it.
fn fail(shard: &Shard, method: &str, path: &str, request: Request, error: &TransportError, bytes_in: u64) {
    if let Some(log) = &shard.log {
        let now = Instant::now();
        if log.wants(Some(error.kind), now) {
            log.send(Record {
                at: log.since_start(now),
                name: request.name(),
                method: method.to_string(),
                path: path.to_string(),
                status: None,
                kind: Some(error.kind),
                message: (!error.detail.is_empty()).then(|| error.detail.clone()),
                latency_us: micros(now.saturating_duration_since(request.intended())),
                service_us: request.sent_at().map(|sent| micros(now.saturating_duration_since(sent))),
                bytes_in,
                body: Vec::new(),
            });
        }
    }
    request.failed_after(error, bytes_in);
}

/// Logs an answered request when the request log wants it: a failure (a status not
/// accepted, a failed check) within its kind's bound, or a sampled success.
fn log_answer(shard: &Shard, method: &str, path: &str, request: &Request, answer: &Answer, body: &[u8]) {
    let Some(log) = &shard.log else { return };
    if !log.wants(answer.failure, answer.done) {
        return;
    }
    log.send(Record {
        at: log.since_start(answer.done),
        name: request.name(),
        method: method.to_string(),
        path: path.to_string(),
        status: answer.status,
        kind: answer.failure,
        message: None,
        latency_us: micros(answer.done.saturating_duration_since(request.intended())),
        service_us: request.sent_at().map(|sent| micros(answer.done.saturating_duration_since(sent))),
        bytes_in: answer.bytes_in,
        body: body[..body.len().min(log.body_bytes())].to_vec(),
    });
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The user's idle connection, if it is still good; one the server closed while it was idle
/// is dropped and counted as a reconnect.
fn take_idle(shard: &Shard, user: &mut User, target: usize, intended: Instant) -> Option<Held<Connection>> {
    let conn = user.idle_slot(target).take()?;
    match conn.io.idle_state() {
        IdleState::Open => Some(conn),
        IdleState::Closed | IdleState::Unexpected => {
            shard.meter.reconnected(intended);
            None
        }
    }
}

/// True when a reused connection failed the way a connection the server closed while idle
/// fails: reset or closed before any byte of the answer.
fn closed_before_answer(error: &TransportError, conn: &Connection, reading: bool) -> bool {
    error.kind == ErrorKind::Reset && !(reading && conn.answer_started())
}

/// Methods a client may repeat without changing the outcome (RFC 9110 §9.2.2).
fn is_idempotent(method: &str) -> bool {
    ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].iter().any(|m| m.eq_ignore_ascii_case(method))
}

/// Opens a connection to host `target` for the request due at `intended`, counted under `name`.
pub(super) async fn open(
    shard: &Shard,
    target: usize,
    name: Option<usize>,
    intended: Instant,
) -> Result<Held<Connection>, TransportError> {
    let (stream, opened) = shard.dialer_for(target).open(Alpn::Http1).await?;
    shard.meter.opened(name, intended, &opened);
    if shard.plan.target_count() > 1 {
        shard.meter.opened_to(target, intended, &opened);
    }
    Ok(Held { io: Connection::new(stream), _gauge: shard.meter.connection_gauge() })
}

/// The request over the scenario's shared HTTP/2 connections: the same rendering (templates,
/// signature), judging and statistics; the request waits for a free stream slot.
async fn send_over_http2(
    shard: &Shard,
    user: &mut User,
    pool: &std::rc::Rc<FlowPool>,
    step: &RequestStep,
    mut request: Request,
) {
    let built = if step.is_static() && shard.plan.auth_of(step.target).is_none() && user.jar.is_none() {
        let key = std::ptr::from_ref(step) as usize;
        pool.fixed_request(key, || h2_request(shard, user, pool, step))
    } else {
        h2_request(shard, user, pool, step).map(std::rc::Rc::new)
    };
    let h2 = match built {
        Ok(h2) => h2,
        Err(detail) => {
            return fail(shard, &step.method, step.path.text(), request, &TransportError::other(detail), 0);
        }
    };
    if let Err(detail) = make_write(user, step, &mut request, h2.body()) {
        return fail(shard, &step.method, step.path.text(), request, &TransportError::other(detail), 0);
    }
    let log_body = shard.log.as_ref().map_or(0, |log| log.body_bytes());
    let follows = shard.plan.redirects > 0;
    let capture = Capture {
        headers: step.needs_headers() || step.needs_body() || shard.plan.cookies || follows,
        body_limit: if step.needs_body() { CAPTURE_LIMIT } else { log_body },
    };
    let (name, intended) = (request.name(), request.intended());
    // A redirect chain, as over HTTP/1.1: the request of the chain now, and what each sends.
    let mut current = h2;
    let mut chain: Option<Parts> = None;
    let mut next: Option<NextRequest> = None;
    let mut hops = 0u32;
    loop {
        let mut kept = Kept::default();
        // The connection counts the bytes of its frames as they pass.
        let result = pool.send(name, intended, &current, capture, &mut kept, &mut |at| request.written_at(0, at)).await;
        let answered = match result {
            Ok(answered) => answered,
            Err(e) => return fail(shard, &step.method, current.path(), request, &e, 0),
        };
        let headers = kept.header_pairs();
        if let Some(url) = shard.plan.cookies.then(|| cookies::url_of(&shard.plan.target, current.path())).flatten() {
            cookies::store(&mut user.jar, &headers, &url);
        }
        let location = (follows && redirect::is_redirect(answered.status))
            .then(|| headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(b"location")).map(|(_, v)| v.to_vec()))
            .flatten();
        if let Some(location) = location {
            drop(headers);
            if hops >= shard.plan.redirects {
                return fail(
                    shard,
                    &step.method,
                    current.path(),
                    request,
                    &redirect::too_many(shard.plan.redirects),
                    0,
                );
            }
            if chain.is_none() {
                match render_parts(shard, user, step) {
                    Ok(parts) => chain = Some(parts),
                    Err(detail) => {
                        return fail(shard, &step.method, current.path(), request, &TransportError::other(detail), 0);
                    }
                }
            }
            let Some(parts) = chain.as_ref() else { return };
            let hop = match &next {
                Some(n) => Hop { method: &n.method, path: &n.path, headers: &parts.headers, body: n.body.as_ref() },
                None => {
                    Hop { method: &step.method, path: &parts.path, headers: &parts.headers, body: parts.body.as_ref() }
                }
            };
            let target = &shard.plan.target;
            let jar = &user.jar;
            let cookies_for = |_: usize, path: &str| {
                shard.plan.cookies.then(|| cookies::url_of(target, path).and_then(|url| cookies::header_for(jar, &url)))
            };
            // HTTP/2 scenarios send to the plan's first host: a redirect elsewhere is off target.
            let followed = redirect::follow(&[target], 0, &[true], &hop, answered.status, &location, &cookies_for);
            let request_next = match followed {
                Ok(n) => n,
                Err(e) => return fail(shard, &step.method, current.path(), request, &e, 0),
            };
            let body = request_next.body.clone();
            match pool.request(&request_next.method, &request_next.path, &request_next.headers, body) {
                Ok(h2) => current = std::rc::Rc::new(h2),
                Err(detail) => {
                    return fail(shard, &step.method, current.path(), request, &TransportError::other(detail), 0);
                }
            }
            next = Some(request_next);
            hops += 1;
            shard.meter.redirected(intended, 0);
            continue;
        }
        let complete = kept.body.len() < CAPTURE_LIMIT;
        // Only a body that is read is decoded (one kept for the log only is not).
        let body = if step.needs_body() {
            match decoded(&headers, &kept.body, complete) {
                Ok(body) => body,
                Err(e) => return fail(shard, &step.method, current.path(), request, &e, 0),
            }
        } else {
            Cow::Borrowed(kept.body.as_slice())
        };
        // Latency as everywhere: from when the request was due.
        let elapsed = answered.done - intended;
        let view = ResponseView { status: answered.status, headers: &headers, body: &body, elapsed };
        let failure = judge(shard, user, step, &view, intended, complete);
        let bytes_decoded = if matches!(body, Cow::Owned(_)) { body.len() as u64 } else { 0 };
        let answer = Answer { status: Some(answered.status), failure, done: answered.done, bytes_in: 0, bytes_decoded };
        log_answer(shard, &step.method, current.path(), &request, &answer, &body);
        request.answered(answer);
        return;
    }
}

/// The request in HTTP/2 form, rendered for `user`.
fn h2_request(
    shard: &Shard,
    user: &User,
    pool: &FlowPool,
    step: &RequestStep,
) -> Result<crate::proto::http2::H2Request, String> {
    render_parts(shard, user, step).and_then(|parts| {
        // The body's bytes are shared, not copied.
        pool.request(&step.method, &parts.path, &parts.headers, parts.body)
    })
}

/// The captured body as sent before its `Content-Encoding` (only a body that is read is
/// captured, so only such a body is ever decoded); a body that does not decode is malformed.
fn decoded<'a>(headers: &[(&[u8], &[u8])], body: &'a [u8], complete: bool) -> Result<Cow<'a, [u8]>, TransportError> {
    let coding = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(b"content-encoding")).map(|&(_, v)| v);
    match coding {
        Some(coding) if !body.is_empty() => encoding::decode(coding, body, CAPTURE_LIMIT, complete)
            .map_err(|e| TransportError::new(ErrorKind::MalformedResponse, e.to_string())),
        _ => Ok(Cow::Borrowed(body)),
    }
}

/// Judges a complete response: its status, then the step's checks (tallied) and extraction
/// (into the user's variables), and a verify read against its key's writes. Returns why it
/// counts as failed, if it does. `complete`: the whole body was kept (values are compared).
fn judge(
    shard: &Shard,
    user: &mut User,
    step: &RequestStep,
    view: &ResponseView,
    intended: Instant,
    complete: bool,
) -> Option<ErrorKind> {
    let mut failure = None;
    if let Some(read) = &step.read {
        judge_read(shard, user, read, view, complete);
    }
    if !(step.checks.is_empty() && step.extract.is_empty()) {
        let json = JsonBody::new(view.body);
        for check in &step.checks {
            let passed = check.check.passes(view, &json);
            shard.meter.check(check.id, passed, intended);
            if !passed && check.check.fail_request && failure.is_none() {
                failure = Some(ErrorKind::CheckFailed);
            }
        }
        for extractor in &step.extract {
            match extractor.extract(view, &json).or_else(|| extractor.default.clone()) {
                Some(value) => user.vars.set(&extractor.variable, value),
                None => {
                    failure.get_or_insert(ErrorKind::ExtractFailed);
                }
            }
        }
    }
    // A verify read that finds a key missing is an answer, not a failed request.
    let accepted = match &step.read {
        Some(read) => read.accepts(view.status),
        None => shard.plan.ok_status_of(step.target).contains(view.status),
    };
    if accepted { failure } else { Some(ErrorKind::from_status(view.status)) }
}

/// What a verify read found of its key: there (with its value's digest when values are
/// compared), or not; an answer that says neither, or a value too large to have been kept
/// whole, is no verdict (the key stays unread).
fn judge_read(shard: &Shard, user: &User, read: &ReadStep, view: &ResponseView, complete: bool) {
    let found = if read.found.contains(view.status) {
        if !read.compare {
            Read::Found(None)
        } else if !complete {
            return;
        } else {
            let value = match &read.value {
                None => Some(crate::writes::digest(view.body)),
                Some(extractor) => extractor
                    .extract(view, &JsonBody::new(view.body))
                    .map(|text| crate::writes::digest(text.as_bytes())),
            };
            Read::Found(value)
        }
    } else if read.missing.contains(view.status) {
        Read::Missing
    } else {
        return;
    };
    shard.meter.read_judged(&user.vars, found);
}

/// The bytes of one request: its head, and its body when that is not in the head.
struct Rendered {
    /// Its path and query, when it was rendered (a request encoded once has its step's).
    path: Option<String>,
    head: Vec<u8>,
    body: Option<BodyBytes>,
}

/// A request rendered for `user`, before it takes its HTTP/1.1 or HTTP/2 form.
struct Parts {
    path: String,
    headers: Vec<(String, String)>,
    body: Option<BodyBytes>,
}

/// Renders a request for `user` in HTTP/1.1 form.
fn render(shard: &Shard, user: &User, step: &RequestStep) -> Result<Rendered, String> {
    let Parts { path, headers, body } = render_parts(shard, user, step)?;
    let body_len = body.as_ref().map_or(0, |b| b.len());
    let head = encode_head(
        &step.method,
        &path,
        &shard.plan.target_of(step.target).host_header,
        &headers,
        body_len,
        shard.plan.keepalive_of(step.target),
    )
    .map_err(|e| e.to_string())?;
    Ok(Rendered { head, body, path: Some(path) })
}

/// Renders a request's parts for `user`: templates, then the signature when the plan signs
/// requests.
fn render_parts(shard: &Shard, user: &User, step: &RequestStep) -> Result<Parts, String> {
    let target = shard.plan.target_of(step.target);
    let RenderedRequest { path, mut headers, body, payload_sha256 } = user.rendering(|| step.render(&user.vars))?;
    if shard.plan.cookies {
        if let Some(url) = cookies::url_of(target, &path) {
            cookies::with_cookies(&mut headers, &user.jar, &url);
        }
    }
    if let Some(signer) = shard.plan.auth_of(step.target) {
        let hash = payload_sha256.map_or_else(
            || hex::encode(body.as_ref().map_or_else(|| BodyBytes::from(Vec::new()).sha256(), BodyBytes::sha256)),
            |h| h.to_string(),
        );
        let mut signed = headers.clone();
        if !signed.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            signed.push(("host".to_string(), target.host_header.clone()));
        }
        let extra = signer
            .sign(&step.method, &target.host_header, &path, &signed, &hash, std::time::SystemTime::now())
            .map_err(|e| format!("signing: {e}"))?;
        headers.extend(extra);
    }
    Ok(Parts { path, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_are_retried() {
        for method in ["GET", "head", "PUT", "DELETE", "OPTIONS", "TRACE"] {
            assert!(is_idempotent(method), "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT"] {
            assert!(!is_idempotent(method), "{method}");
        }
    }
}
