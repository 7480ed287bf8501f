//! Stopping a run from outside: Ctrl-C, SIGTERM, or a caller that has seen enough.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// A handle that stops a run; cheap to clone and safe to use from a signal handler thread.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    token: CancellationToken,
    interrupted: Arc<AtomicBool>,
    /// Who is handed every second of the runs this control drives (`--metrics-listen`, ...).
    feeds: Vec<Arc<dyn super::live::LiveFeed>>,
}

impl RunControl {
    /// A control that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops sending; in-flight requests get a short grace period, then results are reported
    /// as partial.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    /// True once [`RunControl::interrupt`] was called.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// This control, handing every second of its runs to `feed` as well (see
    /// [`LiveFeed`](super::live::LiveFeed)), after the feeds it already has; a find-limit search
    /// feeds each step's seconds.
    pub fn with_feed(mut self, feed: Arc<dyn super::live::LiveFeed>) -> Self {
        self.feeds.push(feed);
        self
    }

    pub(crate) fn feeds(&self) -> &[Arc<dyn super::live::LiveFeed>] {
        &self.feeds
    }

    /// A control of its own for one part of a longer run (an agent's job): stopped with this
    /// one, or alone, without stopping this one.
    pub fn child(&self) -> RunControl {
        RunControl {
            token: self.token.child_token(),
            interrupted: Arc::new(AtomicBool::new(false)),
            feeds: self.feeds.clone(),
        }
    }

    /// A token cancelled when this control stops the run: for work beside the run that must
    /// end with it (a coordinator's agents, an agent's wait for its job).
    pub fn child_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}
