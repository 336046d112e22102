//! Operating the host: what an operator, an orchestrator or a scraper talks to, beside the
//! requests the component serves.
//!
//! - [`admin`]: the admin listener (`--admin-addr`): `/metrics`, `/livez`, `/readyz`.
//! - [`metrics`]: every counter and histogram, in the Prometheus text format.
//! - [`telemetry`]: logging, text or JSON.
//! - [`signal`]: SIGTERM and SIGINT, which start the drain.
//! - [`healthcheck`]: `task-host healthcheck`, the probe for curl-less images, over
//!   [`client`], a minimal HTTP/1.1 client.

pub(crate) mod admin;
pub mod client;
pub(crate) mod healthcheck;
pub(crate) mod metrics;
pub(crate) mod signal;
pub mod telemetry;
