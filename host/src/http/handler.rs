//! One HTTP request, start to finish: check the head, read the body within its limits, hand
//! the request to the served component ([`Serving`]), and pass its answer on as a
//! [`ResponseBody`], or turn the failure into a JSON answer ([`Failure`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, Version as HttpVersion};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::failure::Failure;
use super::request_body::{self, BodyError, Limits};
use super::response::{Exchange, Head, ResponseBody};
use crate::ops::metrics::Metrics;
use crate::serving::Serving;
use crate::serving::guest::RunningGuest;

/// The HTTP front of the served component: every request's head and body are checked here
/// before [`Serving`] runs the guest on them.
pub(crate) struct Handler {
    serving: Arc<Serving>,
    /// The authority given to HTTP/1.0 requests that name none: the address served.
    authority: HeaderValue,
    /// What every request body must meet.
    body: Limits,
    metrics: Arc<Metrics>,
}

impl Handler {
    /// A front for `serving` that reads bodies within `body`'s limits.
    pub(crate) fn new(
        serving: Arc<Serving>,
        authority: HeaderValue,
        body: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            serving,
            authority,
            body,
            metrics,
        }
    }

    /// Answers `request`, always with a response. Its access-log line is written when the
    /// body is over.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, Infallible> {
        let exchange = Exchange {
            _in_flight: self.metrics.request_started(),
            metrics: Arc::clone(&self.metrics),
            request_id: self.serving.next_request_id(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            started: Instant::now(),
        };
        let request_id = exchange.request_id;
        let mut response = match self.run_guest(request_id, request).await {
            Ok((response, guest)) => {
                let head = Head::of(&response);
                response.map(|body| ResponseBody::streamed(body, guest, exchange, head))
            }
            Err(failure) => {
                let response = failure.into_response(request_id, &self.metrics);
                let head = Head::of(&response);
                response.map(|body| ResponseBody::host(body, exchange, head))
            }
        };
        response
            .headers_mut()
            .insert("x-request-id", HeaderValue::from(request_id));
        Ok(response)
    }

    async fn run_guest(
        &self,
        request_id: u64,
        mut request: Request<Incoming>,
    ) -> Result<(Response<HyperOutgoingBody>, RunningGuest), Failure> {
        self.check_host(&mut request)?;
        let request = self.read_body(request).await?;
        Ok(self.serving.call(request_id, request).await?)
    }

    /// wasi:http gives every request an authority. HTTP/1.1 requires exactly one `Host`
    /// that is a valid authority (RFC 9112 §3.2), so a request without one, with two, or with
    /// one that is not a host and port is the client's error; HTTP/1.0 predates `Host`, and
    /// such a request is taken to name the address served.
    fn check_host(&self, request: &mut Request<Incoming>) -> Result<(), Failure> {
        if request.uri().authority().is_some() {
            return Ok(());
        }
        let mut hosts = request.headers().get_all(HOST).iter();
        match (hosts.next(), hosts.next()) {
            (Some(host), None) if is_host(host) => Ok(()),
            (None, _) if request.version() <= HttpVersion::HTTP_10 => {
                request.headers_mut().insert(HOST, self.authority.clone());
                Ok(())
            }
            _ => Err(Failure::BadHost),
        }
    }

    /// Reads the whole body within the limit, for a guest that expects it all at once.
    async fn read_body(
        &self,
        request: Request<Incoming>,
    ) -> Result<Request<bytes::Bytes>, Failure> {
        let (parts, body) = request.into_parts();
        let bytes = request_body::read(&parts.headers, body, self.body)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge(limit) => Failure::TooLarge(limit),
                BodyError::Unreadable(error) => Failure::BadBody(error.to_string()),
                BodyError::TooSlow(rate) => Failure::DripFedBody(rate),
                BodyError::TimedOut(timeout) => Failure::SlowBody(timeout),
            })?;
        Ok(Request::from_parts(parts, bytes))
    }
}

/// Whether `value` is what RFC 9110 §7.2 allows in `Host`: a host and an optional port, with
/// no user info, path, query or fragment.
fn is_host(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let Ok(authority) = text.parse::<hyper::http::uri::Authority>() else {
        return false;
    };
    // The parser also takes user info, which `Host` has none of, and any text after the
    // colon: what follows the host must be nothing, or a port number.
    match text.strip_prefix(authority.host()) {
        Some("") => true,
        Some(port) => port
            .strip_prefix(':')
            .is_some_and(|port| port.parse::<u16>().is_ok()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_a_name_or_address_with_an_optional_port() {
        for valid in [
            "example.com",
            "example.com:8080",
            "127.0.0.1:8000",
            "[::1]:80",
            "a",
        ] {
            assert!(is_host(&HeaderValue::from_static(valid)), "{valid}");
        }
        for invalid in ["", "a/b", "u@a", "a b", "a?q", "a#f", "http://a", "a:port"] {
            assert!(!is_host(&HeaderValue::from_static(invalid)), "{invalid:?}");
        }
    }
}
