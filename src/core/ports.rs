//! What the core needs of its stores, as traits the adapters (the `stores` module) implement: the
//! one-time SMS codes and the users. Nothing here knows Redis or DynamoDB.

use std::future::Future;
use std::time::SystemTime;

use uuid::Uuid;

use crate::core::domain::{Mobile, SmsCode};

/// A user's id: a UUIDv7, made when the code is first proven.
pub type UserId = Uuid;

/// A user ready to be stored: every field already valid, the password already hashed.
#[derive(Debug)]
pub struct NewUser {
    pub user_id: Uuid,
    pub mobile: Mobile,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: SystemTime,
    /// `user_id` is the pending id an earlier request with the same code left behind, its write's
    /// outcome unknown: an item under this mobile with this `user_id` is that write, and is
    /// replaced. Any other item still makes the mobile taken.
    pub replaces_pending: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserStoreError {
    #[error("mobile already registered")]
    Exists,
    /// Unreachable, throttled or timing out after the SDK's retries. The text names the kind of
    /// failure and never carries item data.
    #[error("user store unavailable: {0}")]
    Unavailable(String),
}

pub trait UserStore: Send + Sync + 'static {
    /// Stores `user` unless its mobile is taken (by another user id, when `replaces_pending`).
    fn insert(&self, user: &NewUser) -> impl Future<Output = Result<(), UserStoreError>> + Send;
}

// --- SMS codes

/// Redis could not be reached, or did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("sms code store unavailable: {0}")]
pub struct SmsStoreError(String);

impl SmsStoreError {
    /// `why` names the failure; it must never carry a code or a mobile.
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

/// Names one request's claim on a code (the id of the user it is creating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimId(String);

impl ClaimId {
    /// 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Uuid> for ClaimId {
    fn from(id: Uuid) -> Self {
        Self(id.simple().to_string())
    }
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The code matched and is this request's until consumed, released or the lease ends.
    /// `pending`: the user id an earlier request with this code may have stored, to be reused.
    Claimed { pending: Option<UserId> },
    /// No code is stored (expired, never sent, used).
    Missing,
    /// The code matched but another request holds it.
    InUse,
    /// The code differs; `burnt` when that was its last allowed try and it is gone.
    Wrong { burnt: bool },
}

/// Where the SMS codes live. `claim` must be atomic: one code, one holder.
pub trait SmsCodeStore: Send + Sync + 'static {
    fn claim(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        claim: &ClaimId,
    ) -> impl Future<Output = Result<Attempt, SmsStoreError>> + Send;
    /// Deletes the code if `claim` still holds it; `false` if not (a newer code is kept).
    fn consume(
        &self,
        mobile: &Mobile,
        claim: &ClaimId,
    ) -> impl Future<Output = Result<bool, SmsStoreError>> + Send;
    /// Makes the code usable again if `claim` still holds it; `false` if not. With `pending`,
    /// the record remembers that user id (a write under it may have landed) for the next
    /// request proving the code; without, it keeps whatever pending id it had.
    fn release(
        &self,
        mobile: &Mobile,
        claim: &ClaimId,
        pending: Option<UserId>,
    ) -> impl Future<Output = Result<bool, SmsStoreError>> + Send;
}
