//! Stand-in stores for tests of pure logic (the property tests and the fuzz target, which
//! includes this file by path): they hold no SMS code, so nothing ever reaches a user store.
//! Storage itself is only ever proven against the real servers.

use std::sync::Arc;

use ihome_register::core::domain::{Mobile, SmsCode};
use ihome_register::core::ports::{
    Attempt, ClaimId, NewUser, SmsCodeStore, SmsStoreError, UserId, UserStore, UserStoreError,
};
use ihome_register::core::register::Registrar;
use ihome_register::core::session::Sessions;
use ihome_register::edge::config::Config;
use ihome_register::edge::http::Service;

pub struct NoCodes;

impl SmsCodeStore for NoCodes {
    async fn claim(&self, _: &Mobile, _: &SmsCode, _: &ClaimId) -> Result<Attempt, SmsStoreError> {
        Ok(Attempt::Missing)
    }
    async fn consume(&self, _: &Mobile, _: &ClaimId) -> Result<bool, SmsStoreError> {
        unreachable!("no code is ever claimed")
    }
    async fn release(
        &self,
        _: &Mobile,
        _: &ClaimId,
        _: Option<UserId>,
    ) -> Result<bool, SmsStoreError> {
        unreachable!("no code is ever claimed")
    }
}

impl UserStore for NoCodes {
    async fn insert(&self, _: &NewUser) -> Result<(), UserStoreError> {
        unreachable!("no code is ever proven")
    }
}

/// The function's handler state over stand-ins, with a fixed test configuration and
/// `STATUS_CODES` = `status_codes` (`ihome` or `http`).
pub fn service(status_codes: &str) -> Arc<Service<NoCodes, NoCodes>> {
    let config = Config::from_lookup(|k| match k {
        "USERS_TABLE" => Some("users".into()),
        "REDIS_URL" => Some("redis://127.0.0.1:1".into()),
        "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        "STATUS_CODES" => Some(status_codes.into()),
        _ => None,
    })
    .expect("the test configuration is valid");
    let registrar = Registrar::new(NoCodes, NoCodes, Sessions::new(&config.session));
    Arc::new(Service::new(registrar, &config))
}
