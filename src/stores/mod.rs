//! Adapters: the core's store traits ([`crate::core::ports`]) over Redis and DynamoDB. They
//! import the core and nothing else of the crate.

pub mod sms_codes;
pub mod users;
