//! What a toxic is: its type and attributes, in toxiproxy's names and units, the direction it
//! acts on, and how likely a connection is to get it.
//!
//! The attribute names, their units and their defaults are toxiproxy's (Shopify/toxiproxy,
//! `toxics/*.go`), so a toxic written for toxiproxy means the same thing here: `latency` and
//! `jitter` in milliseconds, `rate` in KB/s (1 KB = 1,000 bytes), `delay` in milliseconds for
//! `slow_close` but in microseconds for `slicer`, `timeout` in milliseconds (0 = never), sizes
//! in bytes. The same types serialize to toxiproxy's JSON (`{"attributes": {...}, "name",
//! "type", "stream", "toxicity"}`); the HTTP API and the config file read them from there.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// Which way through the proxy a toxic acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client to upstream: what the client sends (requests).
    Upstream,
    /// Upstream to client: what the client receives (responses); toxiproxy's default.
    Downstream,
}

impl Stream {
    /// Both directions, upstream first (the order toxiproxy lists toxics in).
    pub const BOTH: [Stream; 2] = [Stream::Upstream, Stream::Downstream];

    /// `upstream` or `downstream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// Reads `upstream` / `downstream` in any case, as toxiproxy does.
    pub fn parse(text: &str) -> Option<Stream> {
        match text.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            _ => None,
        }
    }

    /// 0 for upstream, 1 for downstream (index of per-direction tables).
    pub fn index(self) -> usize {
        match self {
            Stream::Upstream => 0,
            Stream::Downstream => 1,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A toxic's type with its attributes, in toxiproxy's units. Attributes left out default to 0,
/// as in toxiproxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToxicKind {
    /// Passes everything through unchanged (toxiproxy's `noop`).
    Noop,
    /// Delays each chunk of data by `latency` ± `jitter` milliseconds, counted from when the
    /// proxy read it (so back-to-back chunks are not delayed one after the other).
    Latency {
        /// Milliseconds.
        latency: u64,
        /// Milliseconds; each chunk gets a delay drawn uniformly from `latency - jitter` up to
        /// (not including) `latency + jitter`.
        jitter: u64,
    },
    /// Passes data at most `rate` KB/s (1 KB = 1,000 bytes); 0 = unlimited. A chunk longer than
    /// 100 ms worth of data goes out in 100 ms pieces.
    Bandwidth {
        /// KB (1,000 bytes) per second.
        rate: u64,
    },
    /// Holds the close (end of stream) back for `delay` milliseconds.
    SlowClose {
        /// Milliseconds.
        delay: u64,
    },
    /// Drops all data; closes the connection once no data has arrived for `timeout`
    /// milliseconds (each chunk that arrives restarts the countdown, as in toxiproxy); 0 = never
    /// closes. Removing the toxic closes the connections it acted on (their data is lost).
    Timeout {
        /// Milliseconds; 0 = never.
        timeout: u64,
    },
    /// Resets the connection (TCP RST to both sides) `timeout` milliseconds after the first data
    /// (or end of stream) arrives in this direction; what arrives is dropped.
    ResetPeer {
        /// Milliseconds; 0 = at once.
        timeout: u64,
    },
    /// Cuts each chunk into pieces of about `average_size` ± `size_variation` bytes, `delay`
    /// microseconds apart.
    Slicer {
        /// Bytes; at least 1.
        average_size: u64,
        /// Bytes; less than `average_size`.
        size_variation: u64,
        /// Microseconds between two pieces.
        delay: u64,
    },
    /// Lets `bytes` bytes through in this direction, then closes the connection.
    LimitData {
        /// Bytes.
        bytes: u64,
    },
}

/// The toxic types, as toxiproxy names them.
pub const TYPES: [&str; 8] =
    ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop"];

impl ToxicKind {
    /// toxiproxy's name of the type (`latency`, `slow_close`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Noop => "noop",
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }

    /// The type named `name` with every attribute 0 (toxiproxy's defaults).
    pub fn with_defaults(name: &str) -> Option<ToxicKind> {
        Some(match name {
            "noop" => ToxicKind::Noop,
            "latency" => ToxicKind::Latency { latency: 0, jitter: 0 },
            "bandwidth" => ToxicKind::Bandwidth { rate: 0 },
            "slow_close" => ToxicKind::SlowClose { delay: 0 },
            "timeout" => ToxicKind::Timeout { timeout: 0 },
            "reset_peer" => ToxicKind::ResetPeer { timeout: 0 },
            "slicer" => ToxicKind::Slicer { average_size: 0, size_variation: 0, delay: 0 },
            "limit_data" => ToxicKind::LimitData { bytes: 0 },
            _ => return None,
        })
    }

    /// The attribute names of this type, each with its unit.
    pub fn attributes(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            ToxicKind::Noop => &[],
            ToxicKind::Latency { .. } => &[("latency", "milliseconds"), ("jitter", "milliseconds")],
            ToxicKind::Bandwidth { .. } => &[("rate", "KB/s")],
            ToxicKind::SlowClose { .. } => &[("delay", "milliseconds")],
            ToxicKind::Timeout { .. } | ToxicKind::ResetPeer { .. } => &[("timeout", "milliseconds")],
            ToxicKind::Slicer { .. } => {
                &[("average_size", "bytes"), ("size_variation", "bytes"), ("delay", "microseconds")]
            }
            ToxicKind::LimitData { .. } => &[("bytes", "bytes")],
        }
    }

    /// Sets attribute `name` to `value`; `Err` names what is wrong (an attribute this type does
    /// not have).
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), String> {
        let slot = match (self, name) {
            (ToxicKind::Latency { latency, .. }, "latency") => latency,
            (ToxicKind::Latency { jitter, .. }, "jitter") => jitter,
            (ToxicKind::Bandwidth { rate }, "rate") => rate,
            (ToxicKind::SlowClose { delay }, "delay") => delay,
            (ToxicKind::Timeout { timeout }, "timeout") => timeout,
            (ToxicKind::ResetPeer { timeout }, "timeout") => timeout,
            (ToxicKind::Slicer { average_size, .. }, "average_size") => average_size,
            (ToxicKind::Slicer { size_variation, .. }, "size_variation") => size_variation,
            (ToxicKind::Slicer { delay, .. }, "delay") => delay,
            (ToxicKind::LimitData { bytes }, "bytes") => bytes,
            (kind, _) => {
                let known: Vec<&str> = kind.attributes().iter().map(|(n, _)| *n).collect();
                return Err(if known.is_empty() {
                    format!("{} has no attribute {name:?}", kind.type_name())
                } else {
                    format!("{} has no attribute {name:?} (it has {})", kind.type_name(), known.join(", "))
                });
            }
        };
        *slot = value;
        Ok(())
    }

    /// Checks the combination of attributes; `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            ToxicKind::Slicer { average_size, size_variation, .. } => {
                if average_size == 0 {
                    Err("slicer needs average_size of at least 1 byte".into())
                } else if size_variation >= average_size {
                    Err(format!(
                        "slicer's size_variation ({size_variation}) must be smaller than its average_size ({average_size})"
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// The attributes as `(name, value)`, in toxiproxy's order (every attribute, zeros included).
    pub fn attribute_values(&self) -> Vec<(&'static str, u64)> {
        match *self {
            ToxicKind::Noop => vec![],
            ToxicKind::Latency { latency, jitter } => vec![("latency", latency), ("jitter", jitter)],
            ToxicKind::Bandwidth { rate } => vec![("rate", rate)],
            ToxicKind::SlowClose { delay } => vec![("delay", delay)],
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => vec![("timeout", timeout)],
            ToxicKind::Slicer { average_size, size_variation, delay } => {
                vec![("average_size", average_size), ("size_variation", size_variation), ("delay", delay)]
            }
            ToxicKind::LimitData { bytes } => vec![("bytes", bytes)],
        }
    }

    /// Sets the attributes found in a JSON object (the others keep their values, as a
    /// toxiproxy update does); keys this type does not have are ignored, as Go's decoder does.
    pub fn merge_json(&mut self, attributes: &Map<String, Value>) -> Result<(), String> {
        let names: Vec<&str> = self.attributes().iter().map(|(n, _)| *n).collect();
        for name in names {
            let Some(value) = attributes.get(name) else { continue };
            let number = value
                .as_u64()
                .ok_or_else(|| format!("attribute {name}: {value} is not a whole number of 0 or more"))?;
            self.set(name, number)?;
        }
        Ok(())
    }
}

/// One toxic as set on a proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Unique within its proxy; toxiproxy's default is `<type>_<stream>`.
    pub name: String,
    /// The type and its attributes.
    pub kind: ToxicKind,
    /// The direction it acts on.
    pub stream: Stream,
    /// The chance that a connection gets it, rolled once per connection (and again when the
    /// toxic is updated): 1 = every connection, 0 = none.
    pub toxicity: f64,
}

impl Toxic {
    /// A toxic on every connection, named as toxiproxy would (`latency_downstream`).
    pub fn new(kind: ToxicKind, stream: Stream) -> Toxic {
        Toxic { name: default_name(&kind, stream), kind, stream, toxicity: 1.0 }
    }

    /// toxiproxy's JSON shape: `{"attributes": {...}, "name", "type", "stream", "toxicity"}`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A short form for logs: `latency_downstream (latency latency=20 jitter=0, 100%)`.
    pub fn describe(&self) -> String {
        let attributes: Vec<String> =
            self.kind.attribute_values().iter().map(|(name, value)| format!(" {name}={value}")).collect();
        format!(
            "{} ({} {}{}, toxicity {})",
            self.name,
            self.kind.type_name(),
            self.stream,
            attributes.concat(),
            self.toxicity
        )
    }
}

/// Serialized in toxiproxy's field order.
impl Serialize for Toxic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Attributes<'a>(&'a ToxicKind);
        impl Serialize for Attributes<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let values = self.0.attribute_values();
                let mut map = serializer.serialize_map(Some(values.len()))?;
                for (name, value) in values {
                    map.serialize_entry(name, &value)?;
                }
                map.end()
            }
        }
        let mut s = serializer.serialize_struct("Toxic", 5)?;
        s.serialize_field("attributes", &Attributes(&self.kind))?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("type", self.kind.type_name())?;
        s.serialize_field("stream", &self.stream)?;
        s.serialize_field("toxicity", &self.toxicity)?;
        s.end()
    }
}

/// toxiproxy's default name of a toxic: `<type>_<stream>`.
pub fn default_name(kind: &ToxicKind, stream: Stream) -> String {
    format!("{}_{}", kind.type_name(), stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_toxiproxys_shape() {
        let toxic = Toxic::new(ToxicKind::Latency { latency: 20, jitter: 5 }, Stream::Downstream);
        assert_eq!(
            toxic.to_json(),
            serde_json::json!({
                "attributes": {"latency": 20, "jitter": 5},
                "name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0
            })
        );
    }

    #[test]
    fn merge_keeps_missing_attributes_and_rejects_bad_numbers() {
        let mut kind = ToxicKind::Slicer { average_size: 10, size_variation: 2, delay: 5 };
        let patch = serde_json::json!({"delay": 7, "unknown": 1});
        kind.merge_json(patch.as_object().unwrap()).unwrap();
        assert_eq!(kind, ToxicKind::Slicer { average_size: 10, size_variation: 2, delay: 7 });
        let bad = serde_json::json!({"delay": -1});
        assert!(kind.merge_json(bad.as_object().unwrap()).is_err());
        let bad = serde_json::json!({"delay": 1.5});
        assert!(kind.merge_json(bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn slicer_sizes_are_checked() {
        assert!(ToxicKind::Slicer { average_size: 0, size_variation: 0, delay: 0 }.validate().is_err());
        assert!(ToxicKind::Slicer { average_size: 4, size_variation: 4, delay: 0 }.validate().is_err());
        assert!(ToxicKind::Slicer { average_size: 4, size_variation: 3, delay: 0 }.validate().is_ok());
    }

    #[test]
    fn every_type_round_trips_its_name() {
        for name in TYPES {
            let kind = ToxicKind::with_defaults(name).unwrap();
            assert_eq!(kind.type_name(), name);
        }
        assert!(ToxicKind::with_defaults("lag").is_none());
        assert_eq!(Stream::parse("UpStream"), Some(Stream::Upstream));
        assert_eq!(Stream::parse("both"), None);
    }
}
