//! The toxiproxy-compatible HTTP API: the same paths, methods, JSON shapes and status codes as
//! toxiproxy 2.x (`api.go`), so its clients and scripts drive pummel unchanged.
//!
//! | request | answer |
//! |---|---|
//! | `GET /proxies` | 200, `{name: proxy}` with each proxy's toxics |
//! | `POST /proxies` | 201 proxy; 400 missing name/upstream, 409 exists, 500 cannot listen |
//! | `POST /populate` | 201 `{"proxies": [...]}`; an error adds `error` and `status` |
//! | `GET /proxies/{p}` | 200 proxy; 404 |
//! | `POST` or `PATCH /proxies/{p}` | 200 proxy (`enabled: false` is `down`) |
//! | `DELETE /proxies/{p}` | 204 |
//! | `GET /proxies/{p}/toxics` | 200, the toxics, upstream ones first |
//! | `POST /proxies/{p}/toxics` | 200 toxic; 400 bad type/stream/body, 409 exists |
//! | `GET`, `POST`/`PATCH`, `DELETE /proxies/{p}/toxics/{t}` | 200 toxic, 200 toxic, 204 |
//! | `POST /reset` | 204 |
//! | `GET /version` | 200 `{"version": "..."}` |
//!
//! Errors are `{"error": "proxy not found", "status": 404}`. Request bodies are read as Go's
//! decoder reads them: the first JSON value, unknown fields ignored, missing fields defaulted.
//! As toxiproxy does, requests from browsers (a `User-Agent` starting `Mozilla/`) get a 403,
//! so that a web page cannot reach the API on loopback.
//!
//! HTTP is hyper's (HTTP/1.1); routing and JSON are done here.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::collection::{Proxies, ProxySpec, ProxyUpdate, ToxicUpdate, toxic_from_fields};
use crate::error::ProxyError;

/// The largest request body read.
const MAX_BODY: usize = 1024 * 1024;

/// The version `GET /version` reports.
pub const VERSION: &str = concat!("pummel-", env!("CARGO_PKG_VERSION"));

/// Serves the API on `listener` until the proxies' shutdown token is cancelled.
pub async fn serve(listener: TcpListener, proxies: Proxies) {
    let shutdown = proxies.shutdown_token();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let proxies = proxies.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let proxies = proxies.clone();
                async move { Ok::<_, Infallible>(handle(request, &proxies).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// Binds the API's listener: `addr` as given (loopback by default on the command line).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let resolved = crate::collection::resolve(addr).await?;
    let listener = TcpListener::bind(resolved).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Answers one request.
async fn handle(request: Request<Incoming>, proxies: &Proxies) -> Response<Full<Bytes>> {
    let from_browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if from_browser {
        return text(StatusCode::FORBIDDEN, "User agent not allowed\n");
    }
    let method = request.method().clone();
    let path: Vec<String> = request.uri().path().split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error(&ProxyError::BadRequestBody(e.to_string())),
    };
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    let update = method == Method::POST || method == Method::PATCH;
    match segments.as_slice() {
        ["version"] if method == Method::GET => version(),
        ["reset"] if method == Method::POST => match proxies.reset().await {
            Ok(()) => empty(StatusCode::NO_CONTENT),
            Err(e) => error(&e),
        },
        ["populate"] if method == Method::POST => populate(proxies, &body).await,
        ["proxies"] if method == Method::GET => {
            let map: Map<String, Value> =
                proxies.list().await.into_iter().map(|p| (p.name.clone(), to_value(&p))).collect();
            ok_json(StatusCode::OK, &Value::Object(map))
        }
        ["proxies"] if method == Method::POST => match proxy_spec(&body, None) {
            Ok(spec) => match proxies.create(spec).await {
                Ok(info) => ok_json(StatusCode::CREATED, &to_value(&info)),
                Err(e) => error(&e),
            },
            Err(e) => error(&e),
        },
        ["proxies", name] if method == Method::GET => answer(proxies.get(name).await.map(|p| to_value(&p))),
        ["proxies", name] if update => {
            let result = match proxy_update(&body) {
                Ok(changes) => proxies.update(name, changes).await,
                Err(e) => Err(e),
            };
            answer(result.map(|p| to_value(&p)))
        }
        ["proxies", name] if method == Method::DELETE => match proxies.delete(name).await {
            Ok(()) => empty(StatusCode::NO_CONTENT),
            Err(e) => error(&e),
        },
        ["proxies", name, "toxics"] if method == Method::GET => {
            answer(proxies.toxics(name).await.map(|t| Value::Array(t.iter().map(|t| t.to_json()).collect())))
        }
        ["proxies", name, "toxics"] if method == Method::POST => {
            // toxiproxy looks the proxy up first: an unknown proxy is a 404 whatever the body.
            if let Err(e) = proxies.get(name).await {
                return error(&e);
            }
            let result = match new_toxic(&body) {
                Ok(toxic) => proxies.add_toxic(name, toxic).await,
                Err(e) => Err(e),
            };
            answer(result.map(|t| t.to_json()))
        }
        ["proxies", name, "toxics", toxic] if method == Method::GET => {
            answer(proxies.toxic(name, toxic).await.map(|t| t.to_json()))
        }
        ["proxies", name, "toxics", toxic] if update => {
            if let Err(e) = proxies.toxic(name, toxic).await {
                return error(&e);
            }
            let result = match toxic_update(&body) {
                Ok(changes) => proxies.update_toxic(name, toxic, changes).await,
                Err(e) => Err(e),
            };
            answer(result.map(|t| t.to_json()))
        }
        ["proxies", name, "toxics", toxic] if method == Method::DELETE => {
            match proxies.remove_toxic(name, toxic).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => error(&e),
            }
        }
        ["version" | "reset" | "populate" | "proxies"]
        | ["proxies", _]
        | ["proxies", _, "toxics"]
        | ["proxies", _, "toxics", _] => text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n"),
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// `POST /populate`: 201 with every proxy, or the first error's status with the proxies
/// handled before it.
async fn populate(proxies: &Proxies, body: &[u8]) -> Response<Full<Bytes>> {
    let specs = first_value(body).and_then(|value| {
        let Value::Array(items) = value else {
            return Err(ProxyError::BadRequestBody(format!(
                "cannot unmarshal {} into a list of proxies",
                kind(&value)
            )));
        };
        items.iter().enumerate().map(|(i, item)| proxy_spec_from(item, Some(i + 1))).collect::<Result<Vec<_>, _>>()
    });
    let specs = match specs {
        Ok(specs) => specs,
        Err(e) => return error(&e),
    };
    let (done, failed) = proxies.populate(specs).await;
    let list: Vec<Value> = done.iter().map(to_value).collect();
    match failed {
        None => ok_json(StatusCode::CREATED, &json!({ "proxies": list })),
        Some(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ok_json(status, &json!({ "error": e.to_string(), "status": e.status(), "proxies": list }))
        }
    }
}

/// The first JSON value of a body, as Go's `json.Decoder.Decode` reads it.
fn first_value(body: &[u8]) -> Result<Value, ProxyError> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(ProxyError::BadRequestBody(e.to_string())),
        None => Err(ProxyError::BadRequestBody("EOF".into())),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object(value: &Value) -> Result<&Map<String, Value>, ProxyError> {
    value.as_object().ok_or_else(|| ProxyError::BadRequestBody(format!("expected an object, not {}", kind(value))))
}

fn string_field(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ProxyError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ProxyError::BadRequestBody(format!("{key}: expected a string, not {}", kind(other)))),
    }
}

fn bool_field(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ProxyError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ProxyError::BadRequestBody(format!("{key}: expected true or false, not {}", kind(other)))),
    }
}

fn number_field(map: &Map<String, Value>, key: &str) -> Result<Option<f64>, ProxyError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(ProxyError::BadRequestBody(format!("{key}: expected a number, not {}", kind(other)))),
    }
}

fn proxy_spec(body: &[u8], index: Option<usize>) -> Result<ProxySpec, ProxyError> {
    proxy_spec_from(&first_value(body)?, index)
}

/// A proxy from `{"name", "listen", "upstream", "enabled"}`; `index` (1-based) for populate's
/// messages (`missing required field: name at proxy 2`).
fn proxy_spec_from(value: &Value, index: Option<usize>) -> Result<ProxySpec, ProxyError> {
    let map = object(value)?;
    let at = index.map(|i| format!(" at proxy {i}")).unwrap_or_default();
    let name = string_field(map, "name")?.filter(|s| !s.is_empty());
    let name = name.ok_or_else(|| ProxyError::MissingField(format!("name{at}")))?;
    let upstream = string_field(map, "upstream")?.filter(|s| !s.is_empty());
    let upstream = upstream.ok_or_else(|| ProxyError::MissingField(format!("upstream{at}")))?;
    Ok(ProxySpec {
        name,
        listen: string_field(map, "listen")?.unwrap_or_default(),
        upstream,
        enabled: bool_field(map, "enabled")?.unwrap_or(true),
        toxics: Vec::new(),
    })
}

fn proxy_update(body: &[u8]) -> Result<ProxyUpdate, ProxyError> {
    let value = first_value(body)?;
    let map = object(&value)?;
    Ok(ProxyUpdate {
        listen: string_field(map, "listen")?,
        upstream: string_field(map, "upstream")?,
        enabled: bool_field(map, "enabled")?,
    })
}

fn attributes(map: &Map<String, Value>) -> Result<Map<String, Value>, ProxyError> {
    match map.get("attributes") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(attributes)) => Ok(attributes.clone()),
        Some(other) => Err(ProxyError::BadRequestBody(format!("attributes: expected an object, not {}", kind(other)))),
    }
}

fn new_toxic(body: &[u8]) -> Result<crate::toxic::Toxic, ProxyError> {
    let value = first_value(body)?;
    let map = object(&value)?;
    let kind_name = string_field(map, "type")?.unwrap_or_default();
    let stream = string_field(map, "stream")?;
    let name = string_field(map, "name")?;
    let toxicity = number_field(map, "toxicity")?;
    toxic_from_fields(&kind_name, name.as_deref(), stream.as_deref(), toxicity, &attributes(map)?)
}

fn toxic_update(body: &[u8]) -> Result<ToxicUpdate, ProxyError> {
    let value = first_value(body)?;
    let map = object(&value)?;
    Ok(ToxicUpdate { attributes: attributes(map)?, toxicity: number_field(map, "toxicity")? })
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn answer(result: Result<Value, ProxyError>) -> Response<Full<Bytes>> {
    match result {
        Ok(value) => ok_json(StatusCode::OK, &value),
        Err(e) => error(&e),
    }
}

fn ok_json(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    build(status, "application/json", Bytes::from(body))
}

fn error(e: &ProxyError) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::to_vec(&json!({ "error": e.to_string(), "status": e.status() })).unwrap_or_default();
    body.push(b'\n');
    build(status, "application/json", Bytes::from(body))
}

fn version() -> Response<Full<Bytes>> {
    build(StatusCode::OK, "application/json;charset=utf-8", Bytes::from(format!("{{\"version\": \"{VERSION}\"}}\n")))
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    build(status, "application/json", Bytes::new())
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    build(status, "text/plain; charset=utf-8", Bytes::from_static(body.as_bytes()))
}

fn build(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    }
    response
}

/// `%2F` and the like in a path segment, decoded (bytes that are not UTF-8 are replaced).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_as_gos_decoder_reads_them() {
        assert!(matches!(first_value(b""), Err(ProxyError::BadRequestBody(m)) if m == "EOF"));
        assert_eq!(first_value(b"{\"a\":1} trailing").unwrap(), json!({"a": 1}));
        let spec = proxy_spec(br#"{"name":"redis","upstream":"127.0.0.1:6379","extra":1}"#, None).unwrap();
        assert_eq!(spec.listen, "");
        assert!(spec.enabled);
        let missing = proxy_spec(br#"{"name":"redis"}"#, None).unwrap_err();
        assert_eq!(missing.to_string(), "missing required field: upstream");
        let wrong = proxy_spec(br#"{"name":"redis","upstream":"x","enabled":"yes"}"#, None).unwrap_err();
        assert_eq!(wrong.status(), 400);
    }

    #[test]
    fn toxics_get_toxiproxys_defaults() {
        let toxic = new_toxic(br#"{"type":"latency","attributes":{"latency":20}}"#).unwrap();
        assert_eq!(toxic.name, "latency_downstream");
        assert_eq!(toxic.toxicity, 1.0);
        assert_eq!(new_toxic(br#"{"type":"lag"}"#).unwrap_err().to_string(), "invalid toxic type");
        assert_eq!(
            new_toxic(br#"{"type":"latency","stream":"sideways"}"#).unwrap_err().to_string(),
            "stream was invalid, can be either upstream or downstream"
        );
    }

    #[test]
    fn path_segments_are_decoded() {
        assert_eq!(percent_decode("my%20proxy"), "my proxy");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
