//! The core: iHome's credential rules and the two things done with them, registering and (soon)
//! logging in. It knows nothing of Lambda, HTTP, Redis, DynamoDB, metrics or configuration:
//! stores are the traits in [`ports`], which the `stores` module implements, and the `edge`
//! wires them together and turns outcomes into answers.

pub mod domain;
pub mod hashing;
pub mod login;
pub mod ports;
pub mod register;
pub mod session;
pub mod timing;
pub mod werkzeug;
