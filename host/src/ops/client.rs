//! A minimal HTTP/1.1 client over one fresh connection per request: enough for
//! `task-host healthcheck` in an image without curl, and for the integration tests.

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::HOST;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Sends `request` to the `http://` URL in its URI and reads the whole response.
pub async fn send(request: Request<Full<Bytes>>) -> anyhow::Result<Response<Bytes>> {
    let url = request.uri().clone();
    if url.scheme_str() != Some("http") {
        bail!("{url}: only http:// URLs are supported");
    }
    let (Some(host), Some(authority)) = (url.host(), url.authority()) else {
        bail!("{url}: the URL has no host");
    };
    let stream = TcpStream::connect((host, url.port_u16().unwrap_or(80)))
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("cannot talk HTTP to {url}"))?;
    tokio::spawn(connection);

    let (mut parts, body) = request.into_parts();
    parts.uri = url
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .parse::<Uri>()?;
    parts
        .headers
        .entry(HOST)
        .or_insert(authority.as_str().parse()?);
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .with_context(|| format!("no answer from {url}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .with_context(|| format!("reading the answer from {url}"))?;
    Ok(Response::from_parts(parts, body.to_bytes()))
}
