//! Durations as seconds in serialized plans (`"timeout": 30.0`): what the results document's
//! `plan` and every reader of it expect. A module of its own so that the plan's parts (targets,
//! load models, flows, observers) share it without importing each other.

/// `#[serde(with = "crate::seconds")]`: a `Duration` as a number of seconds.
pub(crate) fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `#[serde(serialize_with = "crate::seconds::optional")]`: an `Option<Duration>` as seconds or `null`.
pub(crate) fn optional<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
