//! The one-line forms of the command line, for quick runs without a file:
//!
//! ```text
//! --proxy NAME=LISTEN,UPSTREAM          redis=26379,6379   web=127.0.0.1:8081,127.0.0.1:8080
//! --toxic PROXY:TYPE[:KEY=VALUE,...]    redis:latency:latency=20,jitter=5
//!                                       web:bandwidth:rate=100,stream=both
//!                                       db:reset_peer:timeout=500,toxicity=0.1,name=flaky
//! ```
//!
//! An address is `HOST:PORT`, or a port alone for loopback (`26379` = `127.0.0.1:26379`).
//! A toxic's keys are its attributes, in toxiproxy's units (whole numbers: `latency`, `jitter`,
//! `delay` of `slow_close` and `timeout` in ms, `rate` in KB/s, `slicer`'s `delay` in µs, sizes
//! in bytes), plus `stream` (`downstream` — the default, as toxiproxy's —, `upstream`, or
//! `both` for one toxic each way, named `<type>_<stream>`), `toxicity` (0..1, or a percentage)
//! and `name`. The attribute that gives a type its effect is required (`latency` of latency,
//! `rate` of bandwidth, `delay` of slow_close, `average_size` of slicer, `bytes` of limit_data);
//! `timeout` of `timeout` and `reset_peer` defaults to 0 (forever, at once), as in toxiproxy.

use crate::collection::ProxySpec;
use crate::toxic::{Stream, TYPES, Toxic, ToxicKind};

/// A `--proxy NAME=LISTEN,UPSTREAM` flag.
pub fn parse_proxy(text: &str) -> Result<ProxySpec, String> {
    let form = "expected NAME=LISTEN,UPSTREAM, e.g. redis=26379,127.0.0.1:6379";
    let (name, addresses) = text.split_once('=').ok_or_else(|| format!("{text:?}: {form}"))?;
    let name = name.trim();
    if name.is_empty() || name.contains(':') {
        return Err(format!("{text:?}: a proxy needs a name without ':' ({form})"));
    }
    let (listen, upstream) = addresses.split_once(',').ok_or_else(|| format!("{text:?}: {form}"))?;
    let listen = address(listen.trim()).map_err(|e| format!("{text:?}: listen address {e}"))?;
    let upstream = address(upstream.trim()).map_err(|e| format!("{text:?}: upstream address {e}"))?;
    Ok(ProxySpec { name: name.to_string(), listen, upstream, enabled: true, toxics: Vec::new() })
}

/// A `--toxic PROXY:TYPE[:KEY=VALUE,...]` flag: the proxy's name and its toxics (two with
/// `stream=both`).
pub fn parse_toxic(text: &str) -> Result<(String, Vec<Toxic>), String> {
    let form = "expected PROXY:TYPE[:KEY=VALUE,...], e.g. redis:latency:latency=20,jitter=5";
    let mut parts = text.splitn(3, ':');
    let proxy = parts.next().unwrap_or_default().trim();
    let type_name = parts.next().map(str::trim).ok_or_else(|| format!("{text:?}: {form}"))?;
    if proxy.is_empty() {
        return Err(format!("{text:?}: no proxy name ({form})"));
    }
    let mut kind = ToxicKind::with_defaults(type_name)
        .ok_or_else(|| format!("{text:?}: unknown toxic type {type_name:?} (one of {})", TYPES.join(", ")))?;
    let mut streams = vec![Stream::Downstream];
    let mut toxicity = 1.0;
    let mut name = None;
    let mut given: Vec<&str> = Vec::new();
    for pair in parts.next().unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("{text:?}: {pair:?} is not KEY=VALUE"))?;
        let (key, value) = (key.trim(), value.trim());
        match key {
            "stream" => {
                streams =
                    match value {
                        "both" => Stream::BOTH.to_vec(),
                        "up" => vec![Stream::Upstream],
                        "down" => vec![Stream::Downstream],
                        other => vec![Stream::parse(other).ok_or_else(|| {
                            format!("{text:?}: stream={other}: expected downstream, upstream or both")
                        })?],
                    };
            }
            "toxicity" => toxicity = fraction(value).map_err(|e| format!("{text:?}: toxicity={value}: {e}"))?,
            "name" if !value.is_empty() => name = Some(value.to_string()),
            _ => {
                let unit = kind
                    .attributes()
                    .iter()
                    .find(|(n, _)| *n == key)
                    .map(|(_, unit)| *unit)
                    .ok_or_else(|| format!("{text:?}: {}", kind.set(key, 0).err().unwrap_or_default()))?;
                let number: u64 = value.parse().map_err(|_| {
                    format!("{text:?}: {key}={value}: a whole number of {unit} (toxiproxy's unit), e.g. {key}=20")
                })?;
                kind.set(key, number).map_err(|e| format!("{text:?}: {e}"))?;
                given.push(key);
            }
        }
    }
    let required = match kind {
        ToxicKind::Latency { .. } => Some("latency"),
        ToxicKind::Bandwidth { .. } => Some("rate"),
        ToxicKind::SlowClose { .. } => Some("delay"),
        ToxicKind::Slicer { .. } => Some("average_size"),
        ToxicKind::LimitData { .. } => Some("bytes"),
        _ => None,
    };
    if let Some(key) = required.filter(|k| !given.contains(k)) {
        let unit = kind.attributes().iter().find(|(n, _)| *n == key).map_or("", |(_, u)| *u);
        return Err(format!("{text:?}: {type_name} needs {key}=N ({unit})"));
    }
    kind.validate().map_err(|e| format!("{text:?}: {e}"))?;
    if name.is_some() && streams.len() > 1 {
        return Err(format!("{text:?}: name= names one toxic; stream=both makes two (named <type>_<stream>)"));
    }
    let toxics = streams
        .into_iter()
        .map(|stream| {
            let mut toxic = Toxic::new(kind, stream);
            toxic.toxicity = toxicity;
            if let Some(name) = &name {
                toxic.name = name.clone();
            }
            toxic
        })
        .collect();
    Ok((proxy.to_string(), toxics))
}

/// `0.25` or `25%` → 0.25, within 0..1.
fn fraction(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| "a number from 0 to 1, or a percentage".to_string())?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err("outside 0..1".to_string()) }
}

/// `HOST:PORT` as given, or a port alone (`26379`, `:26379`) as `127.0.0.1:PORT`: the proxy
/// listens and connects on loopback unless told otherwise.
pub fn address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only.parse().map_err(|_| format!("{text:?}: {port_only} is not a port (0-65535)"))?;
        return Ok(format!("127.0.0.1:{port}"));
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(|| format!("{text:?}: expected HOST:PORT or a port"))?;
    if host.is_empty() {
        return Err(format!("{text:?}: no host"));
    }
    port.parse::<u16>().map_err(|_| format!("{text:?}: {port:?} is not a port (0-65535)"))?;
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_default_to_loopback() {
        let spec = parse_proxy("redis=26379,6379").unwrap();
        assert_eq!((spec.listen.as_str(), spec.upstream.as_str()), ("127.0.0.1:26379", "127.0.0.1:6379"));
        let spec = parse_proxy("web=[::1]:8081,localhost:8080").unwrap();
        assert_eq!((spec.listen.as_str(), spec.upstream.as_str()), ("[::1]:8081", "localhost:8080"));
        assert!(parse_proxy("redis").is_err());
        assert!(parse_proxy("redis=26379").is_err());
        assert!(parse_proxy("=1,2").is_err());
        assert!(parse_proxy("r=99999,1").unwrap_err().contains("not a port"));
    }

    #[test]
    fn toxics_read_toxiproxys_attributes() {
        let (proxy, toxics) = parse_toxic("redis:latency:latency=20,jitter=5").unwrap();
        assert_eq!(proxy, "redis");
        assert_eq!(toxics, vec![Toxic::new(ToxicKind::Latency { latency: 20, jitter: 5 }, Stream::Downstream)]);
        let (_, toxics) = parse_toxic("web:bandwidth:rate=100,stream=both,toxicity=50%").unwrap();
        assert_eq!(toxics.len(), 2);
        assert_eq!(toxics[0].name, "bandwidth_upstream");
        assert_eq!(toxics[1].name, "bandwidth_downstream");
        assert_eq!(toxics[1].toxicity, 0.5);
        let (_, toxics) = parse_toxic("db:reset_peer").unwrap();
        assert_eq!(toxics[0].kind, ToxicKind::ResetPeer { timeout: 0 });
        let (_, toxics) = parse_toxic("db:timeout:timeout=500,name=stall,stream=up").unwrap();
        assert_eq!((toxics[0].name.as_str(), toxics[0].stream), ("stall", Stream::Upstream));
    }

    #[test]
    fn toxic_mistakes_say_what_is_expected() {
        let err = |t: &str| parse_toxic(t).unwrap_err();
        assert!(err("redis:latency").contains("latency needs latency=N (milliseconds)"));
        assert!(err("redis:lag:latency=1").contains("unknown toxic type"));
        assert!(err("redis:latency:latency=20ms").contains("whole number of milliseconds"));
        assert!(err("redis:latency:rate=1").contains("latency has no attribute \"rate\""));
        assert!(err("redis:latency:latency=1,stream=sideways").contains("expected downstream, upstream or both"));
        assert!(err("redis:latency:latency=1,toxicity=2").contains("outside 0..1"));
        assert!(err("redis:slicer:average_size=4,size_variation=4").contains("smaller than its average_size"));
        assert!(err("redis").contains("expected PROXY:TYPE"));
        assert!(err("redis:latency:latency=1,name=x,stream=both").contains("makes two"));
    }
}
