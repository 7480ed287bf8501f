//! Following the coordinator's log: every line goes to the caller's output as it arrives,
//! except the frame of the results document, which is taken out of it
//! ([`pummel_k8s::frame`]).

use std::io::Write;

use futures_util::AsyncBufReadExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;
use pummel_k8s::COORDINATOR_CONTAINER;
use pummel_k8s::frame::{Deframer, FrameError, Framed};

use crate::error::RunError;
use crate::progress::Progress;

/// Follows the log of `pod`'s coordinator container to its end, writing it to `out`; returns
/// what the log held of run `run_id`'s results document.
pub(crate) async fn follow(
    pods: &Api<Pod>,
    pod: &str,
    run_id: &str,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<Result<Framed, FrameError>, RunError> {
    let params = LogParams { container: Some(COORDINATOR_CONTAINER.into()), follow: true, ..LogParams::default() };
    let stream = pods
        .log_stream(pod, &params)
        .await
        .map_err(|source| RunError::Api { what: format!("follow the log of pod {pod}"), error: Box::new(source) })?;
    let mut stream = std::pin::pin!(stream);
    let mut deframer = Deframer::new(run_id);
    let mut line = Vec::new();
    loop {
        line.clear();
        match stream.as_mut().read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                if !deframer.push(&String::from_utf8_lossy(text)) {
                    // A closed stdout (`| head`) does not stop the run: its verdict still counts.
                    let _ = out.write_all(&line).and_then(|()| out.flush());
                }
            }
            Err(e) => {
                progress(Progress::LogEnded { why: e.to_string() });
                break;
            }
        }
    }
    Ok(deframer.finish())
}
