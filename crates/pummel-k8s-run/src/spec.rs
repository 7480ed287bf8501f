//! What one run is ([`RunSpec`]): the objects to render, the run's id, the token Secret to
//! create or to use, how long to wait for the pods, and whether to keep the objects.

use std::time::Duration;

use base64::Engine as _;
use pummel_k8s::RenderRequest;
use rand::Rng as _;

/// Everything [`run`](crate::run) needs besides the client.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The objects, as `pummel k8s render` would print them (its `run_id` is set from
    /// [`RunSpec::run_id`]; its `token_secret` names the Secret the pods mount).
    pub request: RenderRequest,
    /// The run's id: the value of the `pummel.dev/run` label on everything created, and the
    /// mark of the results document in the coordinator's log ([`new_run_id`]).
    pub run_id: String,
    /// `Some(token)`: create the Secret `request.token_secret` holding it (and delete it at
    /// the end); `None`: the Secret exists already (`--token-secret`).
    pub token: Option<String>,
    /// How long to wait for the coordinator to run and every agent to be scheduled
    /// (`--agents-timeout`).
    pub agents_wait: Duration,
    /// Leave the objects in the cluster at the end (`--keep`), for `kubectl logs` and
    /// `describe`.
    pub keep: bool,
}

/// A fresh run id: 10 random lowercase hexadecimal digits (a valid label value, and too many
/// to collide between the runs of one namespace).
pub fn new_run_id() -> String {
    let bytes: [u8; 5] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh shared token for coordinator and agents: 32 random bytes in base64.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_label_values_and_tokens_are_long() {
        let id = new_run_id();
        assert_eq!(id.len(), 10);
        assert!(id.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{id}");
        assert_ne!(new_run_id(), new_run_id());
        assert_eq!(new_token().len(), 44);
    }
}
