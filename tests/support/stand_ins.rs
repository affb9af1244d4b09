//! Stand-in stores for tests of pure logic (the property tests and the fuzz target, which
//! includes this file by path): they hold no SMS code, admit no login and know no session, so
//! nothing ever reaches a user store or a hash. Storage itself is only ever proven against the real servers.

use std::sync::Arc;

use std::time::Duration;

use ihome_register::core::account::Account;
use ihome_register::core::domain::{Mobile, SmsCode, Source};
use ihome_register::core::login::Login;
use ihome_register::core::ports::{
    Admission, Attempt, ClaimId, LoginThrottle, NewUser, SessionStore, SessionStoreError,
    SmsCodeStore, SmsStoreError, Standing, StoredUser, ThrottleError, UserId, UserStore,
    UserStoreError,
};
use ihome_register::core::register::Registrar;
use ihome_register::core::session::Sessions;
use ihome_register::edge::config::Config;
use ihome_register::edge::http::Service;

#[derive(Clone)]
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
    async fn find(&self, _: &Mobile) -> Result<Option<StoredUser>, UserStoreError> {
        unreachable!("no login is ever admitted")
    }
    async fn replace_hash(&self, _: &Mobile, _: &str, _: &str) -> Result<bool, UserStoreError> {
        unreachable!("no login is ever admitted")
    }
    async fn end_sessions(&self, _: &Mobile, _: UserId) -> Result<Option<u64>, UserStoreError> {
        unreachable!("no session is ever open")
    }
    async fn replace_password(
        &self,
        _: &Mobile,
        _: &StoredUser,
        _: &str,
    ) -> Result<Option<u64>, UserStoreError> {
        unreachable!("no session is ever open and no code proven")
    }
}

/// Knows no user: every session's state is unknown, so none is ever open.
impl SessionStore for NoCodes {
    async fn standing(&self, _: &str, _: &str) -> Result<Standing, SessionStoreError> {
        Ok(Standing {
            token_ended: false,
            version: None,
        })
    }
    async fn end_token(&self, _: &str, _: std::time::SystemTime) -> Result<(), SessionStoreError> {
        unreachable!("no session is ever open")
    }
    async fn remember(&self, _: UserId, _: u64, _: Duration) -> Result<(), SessionStoreError> {
        unreachable!("no session is ever opened")
    }
}

impl LoginThrottle for NoCodes {
    async fn admit(&self, _: &Mobile, _: &Source) -> Result<Admission, ThrottleError> {
        Ok(Admission::Refused {
            retry_after: Duration::from_secs(60),
        })
    }
    async fn succeeded(&self, _: &Mobile, _: &Source) -> Result<(), ThrottleError> {
        unreachable!("no login is ever admitted")
    }
    async fn withdraw(&self, _: &Mobile, _: &Source) -> Result<(), ThrottleError> {
        unreachable!("no login is ever admitted")
    }
    async fn forgive(&self, _: &Mobile, _: &Source) -> Result<(), ThrottleError> {
        unreachable!("no code is ever proven")
    }
}

/// The function's handler state over stand-ins, with a fixed test configuration and
/// `STATUS_CODES` = `status_codes` (`ihome` or `http`).
pub fn service(status_codes: &str) -> Arc<Service<NoCodes, NoCodes, NoCodes, NoCodes>> {
    let config = Config::from_lookup(|k| match k {
        "USERS_TABLE" => Some("users".into()),
        "REDIS_URL" => Some("redis://127.0.0.1:1".into()),
        "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        "STATUS_CODES" => Some(status_codes.into()),
        _ => None,
    })
    .expect("the test configuration is valid");
    let sessions = Sessions::new(&config.session);
    let registrar = Registrar::new(NoCodes, NoCodes, sessions.clone(), NoCodes);
    let login = Login::new(NoCodes, NoCodes, sessions.clone(), NoCodes);
    let verifier = config.session.verifier();
    let account = Account::new(NoCodes, NoCodes, NoCodes, sessions, verifier, NoCodes);
    Arc::new(Service::new(registrar, login, account, &config))
}
