//! The WebSocket steps of a flow: `ws_connect`, `ws_send`, `ws_expect`, `ws_close`, and the
//! session kept alive while the user waits.
//!
//! A session is counted like a request: `ws_connect` is answered by the `101` (its service
//! time is the upgrade), a `ws_send` is answered by the `ws_expect` that follows it (latency
//! from the send) or, without one, when it was written. A session that died (the peer closed
//! it, or the server restarted) is opened again, with the last `ws_connect`'s settings, by the
//! next step that needs it; a reconnect that fails fails that step with its own kind
//! (`connect_refused` when nothing listens any more).
//!
//! An exchange counts once, under the send's name, whether it succeeds or fails: when the send
//! itself failed (its session could not be reopened, the message could not be written), the
//! `ws_expect` after it neither waits nor counts, since the exchange is already counted as
//! failed. Only an expect with no send before it (a message the server pushes) counts under its
//! own name.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use pummel_results::error_kind::ErrorKind;
use tokio::time::Instant;

use super::User;
use crate::dial::TransportError;
use crate::engine::shard::Shard;
use crate::flow::{WsCloseStep, WsConnectStep, WsExpectStep, WsMatcher, WsSendStep};
use crate::inspect::JsonBody;
use crate::inspect::check::json_equals;
use crate::measure::meter::{Answer, ConnectionGauge, Request};
use crate::proto::ws::{WsSession, WsTarget};

/// A user's open session, counted as an open connection while it lives.
pub(super) struct WsUser {
    pub session: Box<WsSession>,
    /// The statistics the session's `ws_connect` counts under.
    stats: usize,
    _gauge: ConnectionGauge,
}

/// What a user's WebSocket steps keep between them.
#[derive(Default)]
pub(super) struct WsState {
    /// The open session, with the statistics its handshake was counted under.
    pub session: Option<WsUser>,
    /// The last message sent on the session and not yet answered.
    sent: Option<SentMessage>,
    /// The last `ws_send` failed (and was counted): the `ws_expect` after it is part of the
    /// same failed exchange.
    send_failed: bool,
    /// The `ws_connect` that opened the session: a step that finds the session gone opens it
    /// again with it.
    last_connect: Option<Arc<WsConnectStep>>,
    /// The last regex a templated `ws_expect` compiled, with its text: a user that expects the
    /// same rendering again does not compile it again.
    last_regex: Option<(String, regex::Regex)>,
}

/// The templated parts of a `ws_expect`'s matcher, rendered for the user.
#[derive(Default)]
struct Rendered {
    regex: Option<regex::Regex>,
    equals: Option<serde_json::Value>,
}

/// Renders the templated parts of `matcher` for `user` (the regex compiled, or reused).
fn render_matcher(user: &mut User, matcher: &WsMatcher) -> Result<Rendered, String> {
    let mut rendered = Rendered::default();
    if let Some(template) = &matcher.regex_template {
        let text = user.rendering(|| template.render_to_string(&user.vars)).map_err(|e| format!("regex: {e}"))?;
        let state = user.ws_state();
        let regex = match state.last_regex.take() {
            Some((last, regex)) if last == text => regex,
            _ => regex::Regex::new(&text).map_err(|e| format!("regex {text:?}: {e}"))?,
        };
        state.last_regex = Some((text, regex.clone()));
        rendered.regex = Some(regex);
    }
    if let Some(template) = &matcher.equals_template {
        let text = user.rendering(|| template.render_to_string(&user.vars)).map_err(|e| format!("equals: {e}"))?;
        rendered.equals = Some(serde_json::Value::String(text));
    }
    Ok(rendered)
}

/// A message sent on the session and not yet answered.
pub(super) struct SentMessage {
    request: Request,
    /// The message, kept only when a JSON-RPC id must be matched.
    text: Option<String>,
}

impl User {
    /// The user's WebSocket state, made on first use.
    fn ws_state(&mut self) -> &mut WsState {
        self.ws.get_or_insert_with(Default::default)
    }

    /// Closes the user's session. A message sent without a `ws_expect` after it is complete
    /// (when it was written) — unless the session `broke`, when its answer will never come:
    /// then it fails as `ws_closed`, and the `ws_expect` that was to answer it has nothing left
    /// to count.
    pub(super) fn close_ws(&mut self, broke: bool) {
        let Some(state) = &mut self.ws else { return };
        state.session = None;
        if let Some(sent) = state.sent.take() {
            match broke {
                false => complete_send(sent),
                true => {
                    sent.request
                        .failed(&TransportError::ws_closed("the session closed before the message was answered"));
                    state.send_failed = true;
                }
            }
        }
    }
}

thread_local! {
    /// WebSocket targets by URL, resolved once per shard rather than per session.
    static WS_TARGETS: RefCell<HashMap<String, WsTarget>> = Default::default();
}

/// The target of `url`, resolved on first use; `wss://` uses the run's TLS settings
/// (`--insecure`, `--cacert`, ...) when the plan's target is `https://`.
pub(super) fn target(shard: &Shard, url: &str) -> Result<WsTarget, String> {
    if let Some(target) = WS_TARGETS.with_borrow(|targets| targets.get(url).cloned()) {
        return Ok(target);
    }
    let mut target = WsTarget::from_url(url)?;
    if let Some(tls) = shard.dialer.tls() {
        target = target.with_tls(tls);
    }
    WS_TARGETS.with_borrow_mut(|targets| targets.insert(url.to_string(), target.clone()));
    Ok(target)
}

/// `ws_connect`: opens the user's session (replacing an open one), counted like a request.
pub(super) async fn connect(shard: &Shard, user: &mut User, step: &Arc<WsConnectStep>, due: Instant) {
    user.close_ws(false);
    let state = user.ws_state();
    state.last_connect = Some(step.clone());
    state.send_failed = false;
    let mut request = shard.meter.begin(Some(step.stats), due);
    match open(shard, user, step, &mut request).await {
        Ok(()) => request.answered(Answer {
            status: Some(101),
            failure: None,
            done: Instant::now(),
            bytes_in: 0,
            bytes_decoded: 0,
        }),
        Err(e) => request.failed(&e),
    }
}

/// Opens the session of `step` for `user`, recording its connect and handshake times under
/// `request` (marked written when the upgrade goes out).
async fn open(
    shard: &Shard,
    user: &mut User,
    step: &WsConnectStep,
    request: &mut Request,
) -> Result<(), TransportError> {
    let mut headers = Vec::with_capacity(step.headers.len());
    for (header, value) in &step.headers {
        let mut text = String::new();
        user.rendering(|| value.render(&user.vars, &mut text))
            .map_err(|e| TransportError::other(format!("header {header}: {e}")))?;
        headers.push((header.clone(), text));
    }
    let url = user
        .rendering(|| step.url.render_to_string(&user.vars))
        .map_err(|e| TransportError::other(format!("url: {e}")))?;
    let target = target(shard, &url).map_err(TransportError::other)?;
    let timeout = shard.dialer.timeout();
    let (session, opened) = WsSession::connect(&target, &headers, shard.dialer.next_source(), timeout).await?;
    shard.meter.opened(request.name(), request.intended(), &opened.opened);
    if shard.plan.target_count() > 1 {
        // WebSocket sessions go to the plan's first host.
        shard.meter.opened_to(0, request.intended(), &opened.opened);
    }
    // The upgrade went out `handshake` ago: service time is the upgrade's.
    request.written_at(0, Instant::now() - opened.handshake);
    let session = WsUser { session: Box::new(session), stats: step.stats, _gauge: shard.meter.connection_gauge() };
    user.ws_state().session = Some(session);
    Ok(())
}

/// A session for a step that needs one: the open one, or the last `ws_connect`'s opened again
/// (counted under that step's connect figures); `Err` when there is none or it cannot be had.
async fn session<'a>(
    shard: &Shard,
    user: &'a mut User,
    request: &mut Request,
    what: &str,
) -> Result<&'a mut WsUser, TransportError> {
    if user.ws_state().session.is_none() {
        let Some(connect) = user.ws_state().last_connect.clone() else {
            return Err(TransportError::ws_closed(format!("{what} without an open session (no ws_connect before it)")));
        };
        open(shard, user, &connect, request).await?;
    }
    user.ws_state().session.as_mut().ok_or_else(|| TransportError::ws_closed(format!("{what} without an open session")))
}

/// `ws_send`: sends a message; the exchange completes at the next `ws_expect` (or now, when
/// another send comes first).
pub(super) async fn send(shard: &Shard, user: &mut User, step: &WsSendStep, due: Instant) {
    let state = user.ws_state();
    if let Some(sent) = state.sent.take() {
        complete_send(sent);
    }
    // Until the message is on its way, the exchange has failed (and is counted so below).
    state.send_failed = true;
    let mut request = shard.meter.begin(Some(step.stats), due);
    let mut text = String::new();
    if let Err(e) = user.rendering(|| step.text.render(&user.vars, &mut text)) {
        return request.failed(&TransportError::other(e.to_string()));
    }
    let ws = match session(shard, user, &mut request, "ws_send").await {
        Ok(ws) => ws,
        Err(e) => return request.failed(&e),
    };
    let sent_at = Instant::now();
    // A peer that stops reading must not hold the user past the request timeout.
    let timeout = shard.plan.timeout;
    let written = tokio::time::timeout(timeout, ws.session.send_text(&text)).await.unwrap_or_else(|_| {
        Err(TransportError::new(
            ErrorKind::Timeout,
            format!("the message could not be written within {}", pummel_results::duration::format_duration(timeout)),
        ))
    });
    match written {
        Ok(()) => {
            request.written_at(text.len() as u64, sent_at);
            let state = user.ws_state();
            state.sent = Some(SentMessage { request, text: Some(text) });
            state.send_failed = false;
        }
        Err(e) => {
            request.failed(&e);
            user.close_ws(true);
        }
    }
}

/// Counts a sent message that no `ws_expect` waited for as complete when it was written.
fn complete_send(sent: SentMessage) {
    let done = sent.request.sent_at().unwrap_or_else(Instant::now);
    sent.request.answered(Answer { status: None, failure: None, done, bytes_in: 0, bytes_decoded: 0 });
}

/// `ws_expect`: waits for a matching message; completes the exchange of the last send. After a
/// send that failed it does nothing: that exchange is counted already.
pub(super) async fn expect(shard: &Shard, user: &mut User, step: &WsExpectStep) {
    let state = user.ws_state();
    let send_failed = std::mem::take(&mut state.send_failed);
    let (mut request, sent_text, after_send) = match state.sent.take() {
        Some(sent) => (sent.request, sent.text, true),
        None if send_failed => return,
        None => (shard.meter.begin(Some(step.stats), Instant::now()), None, false),
    };
    let wanted_id = match (&step.matcher.match_id, &sent_text) {
        (Some(path), Some(text)) => {
            let json = JsonBody::new(text.as_bytes());
            json.value().and_then(|v| path.first(v)).cloned()
        }
        _ => None,
    };
    // After a send, the answer can only come on the session the message went out on.
    match (after_send, user.ws_state().session.is_some()) {
        (true, false) => {
            return request.failed(&TransportError::ws_closed("the session closed before the message was answered"));
        }
        _ => {
            if let Err(e) = session(shard, user, &mut request, "ws_expect").await {
                return request.failed(&e);
            }
        }
    }
    let rendered = match render_matcher(user, &step.matcher) {
        Ok(rendered) => rendered,
        Err(detail) => return request.failed(&TransportError::other(detail)),
    };
    // `session` left one open.
    let Some(ws) = user.ws_state().session.as_mut() else {
        return request.failed(&TransportError::ws_closed("ws_expect without an open session"));
    };
    let mut matches = |message: &str| message_matches(&step.matcher, &rendered, wanted_id.as_ref(), message);
    let result = ws.session.expect(&mut matches, step.timeout).await;
    let done = Instant::now();
    match result {
        Ok(message) => {
            let json = JsonBody::new(message.as_bytes());
            let mut failure = None;
            for extractor in &step.extract {
                match extractor.extract_text(&message, &json).or_else(|| extractor.default.clone()) {
                    Some(value) => user.vars.set(&extractor.variable, value),
                    None => failure = Some(ErrorKind::ExtractFailed),
                }
            }
            request.answered(Answer { status: None, failure, done, bytes_in: message.len() as u64, bytes_decoded: 0 });
        }
        Err(e) => {
            let closed = e.kind == ErrorKind::WsClosed;
            request.failed(&e);
            if closed {
                user.close_ws(true);
            }
        }
    }
}

/// `ws_close`: closes the session (waiting a little for the peer's answer).
pub(super) async fn close(shard: &Shard, user: &mut User, step: &WsCloseStep) {
    if let Some(ws) = user.ws_state().session.as_mut() {
        let _ = tokio::time::timeout(shard.plan.timeout, ws.session.close(step.code, &step.reason)).await;
    }
    user.close_ws(false);
    let state = user.ws_state();
    state.last_connect = None;
    state.send_failed = false;
}

/// The session broke while the user held it: a failure of the session's name, and a close by
/// the peer.
pub(super) fn broke_while_idle(shard: &Shard, user: &mut User, error: &TransportError) {
    let now = Instant::now();
    if let Some(ws) = user.ws.as_ref().and_then(|state| state.session.as_ref()) {
        shard.meter.begin(Some(ws.stats), now).failed(error);
    }
    shard.meter.record(now, |s| s.closed_by_peer += 1);
    user.close_ws(true);
}

/// True when `message` is what `matcher` waits for (its templated parts `rendered`).
fn message_matches(
    matcher: &WsMatcher,
    rendered: &Rendered,
    wanted_id: Option<&serde_json::Value>,
    message: &str,
) -> bool {
    if let Some(regex) = matcher.regex.as_ref().or(rendered.regex.as_ref()) {
        if !regex.is_match(message) {
            return false;
        }
    }
    if matcher.json.is_none() && matcher.match_id.is_none() {
        return true;
    }
    let json = JsonBody::new(message.as_bytes());
    let Some(value) = json.value() else { return false };
    if let Some((path, equals)) = &matcher.json {
        match (path.first(value), equals.as_ref().or(rendered.equals.as_ref())) {
            (None, _) => return false,
            (Some(found), Some(expected)) if !json_equals(found, expected) => return false,
            _ => {}
        }
    }
    if let (Some(path), Some(wanted)) = (&matcher.match_id, wanted_id) {
        if path.first(value) != Some(wanted) {
            return false;
        }
    }
    true
}
