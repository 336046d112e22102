//! `task-host healthcheck`: a tiny HTTP/1.1 client for container health checks, so the
//! production image needs no curl and no shell.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::HOST;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::cli::DEFAULT_ADDR;

/// The URL probed when none is given: `/health` on 127.0.0.1 at the port `serve` would use,
/// taken from `TASK_HOST_ADDR` when set, so the check follows a moved port.
pub fn default_url() -> anyhow::Result<Uri> {
    let addr = std::env::var("TASK_HOST_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_owned());
    let port = addr
        .rsplit_once(':')
        .map(|(_, port)| port)
        .unwrap_or("8000");
    format!("http://127.0.0.1:{port}/health")
        .parse()
        .with_context(|| format!("TASK_HOST_ADDR {addr:?} has no usable port"))
}

/// GETs `url` and returns the status, failing if there is none within `timeout`.
pub async fn probe(url: &Uri, timeout: Duration) -> anyhow::Result<StatusCode> {
    tokio::time::timeout(timeout, get(url)).await.map_err(|_| {
        anyhow::anyhow!(
            "{url} did not answer within {}",
            humantime::format_duration(timeout)
        )
    })?
}

async fn get(url: &Uri) -> anyhow::Result<StatusCode> {
    if url.scheme_str() != Some("http") {
        bail!("{url}: only http:// URLs can be probed");
    }
    let (Some(host), Some(authority)) = (url.host(), url.authority()) else {
        bail!("{url}: the URL has no host");
    };
    let port = url.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("cannot talk HTTP to {url}"))?;
    tokio::spawn(connection);
    let path = url.path_and_query().map_or("/", |path| path.as_str());
    let request = Request::get(path)
        .header(HOST, authority.as_str())
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("no answer from {url}"))?;
    Ok(response.status())
}
