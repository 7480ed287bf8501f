//! Why a set of manifests cannot be rendered ([`RenderError`]): each is something the user
//! can fix with a flag or in the plan.

use thiserror::Error;

/// A request Kubernetes would refuse, or that cannot be shipped in a ConfigMap.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RenderError {
    /// A name used for objects is not a DNS label (RFC 1123: lowercase letters, digits and
    /// `-`, starting and ending alphanumeric), or too long for the suffixes added to it.
    #[error("{what} {value:?} is not a valid Kubernetes name: {why}")]
    Name {
        /// Which flag (`--name`, `--namespace`, `--token-secret`).
        what: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// No agents: a distributed run needs at least one.
    #[error("--agents must be at least 1")]
    NoAgents,
    /// The agents' timeout is empty or has whitespace (the binary checks it is a duration).
    #[error("--agents-timeout {0:?} is not a duration (e.g. 5m)")]
    AgentsTimeout(String),
    /// The image reference is empty or contains whitespace.
    #[error("--image {0:?} is not an image reference")]
    Image(String),
    /// A CPU or memory amount is not a Kubernetes quantity (`500m`, `2`, `1Gi`).
    #[error("{what} {value:?} is not a Kubernetes quantity (e.g. 500m or 2 for CPU, 512Mi or 2Gi for memory)")]
    Quantity {
        /// Which flag.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// A file the plan reads is named by an absolute path, or by a relative one that leaves the
    /// plan's folder: it cannot be placed beside the plan in the pod.
    #[error(
        "the plan reads {0:?}, which is not inside the plan's folder; in a pod only files relative to the plan \
         (without leading ..) can be placed beside it: move the file next to the plan and name it relatively"
    )]
    OutsidePlan(String),
    /// The plan and its files exceed what one ConfigMap holds.
    #[error(
        "the plan and its files need {0} bytes in the ConfigMap, more than Kubernetes allows (1 MiB): bake large \
         feeder files into the image, or split them"
    )]
    TooLarge(usize),
    /// The plan file is not UTF-8 text (a plan is TOML).
    #[error("the plan file {0:?} is not UTF-8 text")]
    PlanNotText(String),
    /// Writing YAML failed (a bug: the objects are plain data).
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}
