//! iHome phone-number registration as an AWS Lambda function.
//!
//! The core (`domain`, `register`, `hashing`, `session`) knows nothing of Lambda; `sms_codes`
//! and `users` are thin adapters over Redis and DynamoDB behind small traits; `http` turns
//! API Gateway requests into registrations and answers in the iHome contract (`contract`);
//! `app` wires the real adapters; `config` reads the environment; `metrics` writes one EMF line
//! per invocation.

pub mod app;
pub mod config;
pub mod contract;
pub mod domain;
pub mod hashing;
pub mod http;
pub mod metrics;
pub mod origin;
pub mod register;
pub mod session;
pub mod sms_codes;
pub mod users;
pub mod werkzeug;
