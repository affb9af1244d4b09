//! The core: iHome's credential rules and what is done with them: registering, logging in, and
//! the rest of a credential's life (logging out, changing and resetting a password). It knows nothing of Lambda, HTTP, Redis, DynamoDB, metrics or configuration:
//! stores are the traits in [`ports`], which the `stores` module implements, and the `edge`
//! wires them together and turns outcomes into answers.

pub mod account;
pub mod domain;
pub mod hashing;
pub mod login;
pub mod ports;
pub mod register;
pub mod session;
pub mod timing;
pub mod werkzeug;
