//! rampart: a self-hosted edge reverse proxy.
//!
//! # Brief overview
//!
//! rampart accepts client connections, rejects what is malformed or abusive with an exact,
//! explained 4xx, forwards everything else to the zone's origin, passes the origin's answers
//! through untouched, and logs every request. The code is organised by the life of a request:
//!
//! - [`listen`]: accept connections, tell their protocol, graceful shutdown;
//! - [`downstream`]: the HTTP/1.1 driver (over the sans-IO [`rampart_http`] crate) and the
//!   HTTP/2 driver, each turning its protocol into requests for the session;
//! - [`session`]: the life of one request, written once for every protocol;
//! - [`pipeline`]: the phases that decide about every request (route, limits, rules, …);
//! - [`upstream`]: fetching from origins over HTTP/1.1 or HTTP/2, pooling connections;
//! - [`errors`]: the catalogue of generated errors and the responses that carry them;
//! - [`message`]: the ground floor: protocol, ray id, typed responses;
//! - [`observe`]: access log and metrics; [`admin`]: the `/metrics` listener;
//! - [`config`]: the TOML configuration, validated with file, line, column and key.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let loaded = rampart::config::load_file(std::path::Path::new("rampart.toml"))?;
//! let metrics = Arc::new(rampart::observe::Metrics::new());
//! let log = rampart::observe::AccessLog::start(&loaded.config.server.access_log, &loaded.config.server.access_log_fields, metrics.clone())?;
//! let server = rampart::listen::Server::start(loaded.config, log, metrics).await?;
//! // … later:
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod admin;
pub mod analytics;
pub mod cache;
pub mod config;
pub mod demo;
pub mod downstream;
pub mod errors;
pub mod fleet;
pub mod geo;
pub mod h2_flow;
pub mod listen;
pub mod message;
pub mod observe;
pub mod pipeline;
pub mod rules_cli;
pub mod runtime;
pub mod session;
pub mod signals;
pub mod state;
pub mod stream;
pub mod text;
pub mod tls;
pub mod upstream;
mod worker;
