//! iHome's credentials as one AWS Lambda function, in three layers that only point down:
//!
//! - [`core`]: the rules (mobile, SMS code, password policy), registration, hashing and session
//!   tokens; its stores are traits ([`core::ports`]). Knows nothing of Lambda, storage, metrics
//!   or configuration.
//! - [`stores`]: the Redis and DynamoDB adapters implementing those traits.
//! - [`edge`]: configuration, the HTTP edge (routing, the iHome contract, the origin check),
//!   metrics, and the wiring (`edge::app`) the entry point (`main.rs`) calls once per cold start.

pub mod core;
pub mod edge;
pub mod stores;
