//! `task-host healthcheck`: probe a running server, for container health checks, so the
//! production image needs no curl and no shell.

use std::time::Duration;

use anyhow::Context as _;
use hyper::{Request, StatusCode, Uri};

use crate::cli::DEFAULT_ADDR;
use crate::client;

/// The URL probed when none is given: `/health` on 127.0.0.1 at the port `serve` would use,
/// taken from `TASK_HOST_ADDR` when set, so the check follows a moved port.
pub(crate) fn default_url() -> anyhow::Result<Uri> {
    let addr = std::env::var("TASK_HOST_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_owned());
    let port = addr.rsplit_once(':').map_or("8000", |(_, port)| port);
    format!("http://127.0.0.1:{port}/health")
        .parse()
        .with_context(|| format!("TASK_HOST_ADDR {addr:?} has no usable port"))
}

/// GETs `url` and returns the status, failing if there is none within `timeout`.
pub(crate) async fn probe(url: &Uri, timeout: Duration) -> anyhow::Result<StatusCode> {
    let request = Request::get(url.clone()).body(Default::default())?;
    let response = tokio::time::timeout(timeout, client::send(request))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{url} did not answer within {}",
                humantime::format_duration(timeout)
            )
        })??;
    Ok(response.status())
}
