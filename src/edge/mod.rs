//! The edge: what turns a Lambda invocation into a call of the core and back. It reads the
//! configuration, routes by method and path, checks what needs no store (method, origin, size),
//! answers in the iHome contract, writes the metrics line, and wires the stores at cold start.

pub mod app;
pub mod config;
pub mod contract;
pub mod http;
pub mod metrics;
pub mod origin;
pub mod phases;
pub mod routes;
