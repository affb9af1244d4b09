//! Adapters: the core's store traits (`core::ports`) over Redis (SMS codes, login throttles, session
//! state, on one shared connection) and DynamoDB (users). They import the core and nothing else of the
//! crate.

pub mod redis;
pub mod sessions;
pub mod sms_codes;
pub mod throttle;
pub mod users;
