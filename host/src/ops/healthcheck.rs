//! `task-host healthcheck`: probe a running server, for container health checks, so the
//! production image needs no curl and no shell.

use std::time::Duration;

use anyhow::Context as _;
use hyper::{Request, StatusCode, Uri};

use crate::cli::ADDR_ENV;
use crate::config::{DEFAULT_ADDR, DEFAULT_PROBE_PATH};
use crate::ops::client;

/// The URL probed when none is given: [`DEFAULT_PROBE_PATH`] on 127.0.0.1 at the port
/// `serve` would use, taken from [`ADDR_ENV`] when set, so the check follows a moved port.
pub(crate) fn default_url() -> anyhow::Result<Uri> {
    url_for(std::env::var(ADDR_ENV).ok().as_deref())
}

/// The default URL for `serve --addr addr`, or for the default address.
fn url_for(addr: Option<&str>) -> anyhow::Result<Uri> {
    let port = match addr {
        Some(addr) => addr
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("{ADDR_ENV} {addr:?} is not an address with a port"))?
            .port(),
        None => DEFAULT_ADDR.port(),
    };
    format!("http://127.0.0.1:{port}{DEFAULT_PROBE_PATH}")
        .parse()
        .context("the healthcheck URL")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_follows_the_serve_address() -> anyhow::Result<()> {
        assert_eq!(url_for(None)?, "http://127.0.0.1:8000/health");
        assert_eq!(
            url_for(Some("0.0.0.0:9000"))?,
            "http://127.0.0.1:9000/health"
        );
        assert_eq!(url_for(Some("[::]:9001"))?, "http://127.0.0.1:9001/health");
        assert!(url_for(Some("nowhere")).is_err());
        Ok(())
    }
}
