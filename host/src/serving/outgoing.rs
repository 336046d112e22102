//! The outgoing-HTTP policy: guests get no network. `wasi:http/outgoing-handler` is linked,
//! so that components importing it (as wasi:http/proxy ones may) still load, and every
//! request they send is refused.

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// `wasi:http/outgoing-handler`, as this host implements it: every request is refused with
/// `HTTP-request-denied`. Guests get no network; the interface is linked so that components
/// importing it (as wasi:http/proxy ones may) still load.
#[derive(Debug, Default)]
pub(crate) struct DenyOutgoing;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _sent: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = OutgoingResult> + Send> {
        tracing::info!(uri = %request.uri(), "outgoing HTTP request denied");
        Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)))
    }
}

/// What [`WasiHttpHooks::send_request`] resolves to.
type OutgoingResult = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;
