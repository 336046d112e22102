//! # task-api-core
//!
//! The seed's FastAPI "Task Manager API" itself: its routes, handlers, validation, error
//! answers and OpenAPI document, and the tasks' layout in a key-value store. It is plain Rust
//! that builds natively and for `wasm32-wasip2` alike, and calls neither WASI nor the OS: a
//! binding reads the request, the clock and the body limit, lends a [`store::Store`], and
//! sends the [`message::Response`] back. Two bindings serve it:
//!
//! - `component/` (task-api): a `wasi:http` component over `wasi:keyvalue`, the API that
//!   ships;
//! - `bench/native-baseline`: hyper with the tasks in memory, the bench's floor.
//!
//! ## Endpoints
//!
//! `router::ROUTES` declares every path once, with its methods; the 405's `Allow` header
//! and the OpenAPI document served at `GET /openapi.json` are derived from it.
//!
//! Errors keep FastAPI's shapes: 404 `{"detail":"Task not found"}` or `{"detail":"Not Found"}`,
//! 405 with `Allow`, 422 with pydantic's `detail` list, 413 above the body limit the binding
//! enforces, and 500 `{"detail":"Internal Server Error"}` when the store fails (details go to
//! stderr).
//!
//! ## How the pieces fit
//!
//! ```text
//! binding ─► message::Request ─► api::handle ─► router::route (ROUTES)
//!                                    │  ├─────► task (TaskCreate, parse_task_id: the 422s)
//!                                    │  └─────► repository::Tasks ─► store::Store (the binding's)
//! binding ◄─ message::Response ◄─────┴── error::ApiError::into_response
//! ```
//!
//! [`api::handle`] always answers: every failure is an [`error::ApiError`], which [`message`]
//! renders as its response. The one answer that may not fit in memory, `GET /tasks`, is a
//! [`message::Body::Streamed`] that the binding writes out once the head has gone. The
//! state's layout is [`repository`]'s.

pub mod api;
pub mod error;
pub mod message;
mod openapi;
pub mod repository;
mod router;
pub mod store;
pub mod task;
