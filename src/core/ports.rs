//! What the core needs of its stores, as traits the adapters (the `stores` module) implement: the
//! users, the one-time SMS codes and the login throttles. Nothing here knows Redis or DynamoDB.

use std::future::Future;
use std::time::{Duration, SystemTime};

use uuid::Uuid;

use crate::core::domain::{Mobile, SmsCode, Source};

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

/// A stored user, as a login reads it.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub user_id: UserId,
    /// The display name (the mobile, for users who registered here; the site's name for users
    /// imported from it).
    pub name: String,
    /// An argon2id PHC string, or a werkzeug string for a user imported from the old site and
    /// not yet logged in. A secret: never logged.
    pub password_hash: String,
    /// The user's session version (0 for an item without one): every token issued carries it,
    /// and one carrying less has been ended (see [`SessionStore`]).
    pub session_version: u64,
    /// Set by the operator (`ihome-account disable`): no login, reset or change is allowed.
    pub disabled: bool,
    /// What is wrong with the item's `password_hash` when it is missing or not a string (then
    /// `password_hash` is empty): such an item answers as any wrong password does, never as an
    /// outage. Safe to log: it names the problem, never a value.
    pub damaged: Option<&'static str>,
}

pub trait UserStore: Send + Sync + 'static {
    /// Stores `user` unless its mobile is taken (by another user id, when `replaces_pending`).
    fn insert(&self, user: &NewUser) -> impl Future<Output = Result<(), UserStoreError>> + Send;

    /// The user registered under `mobile`, if any.
    fn find(
        &self,
        mobile: &Mobile,
    ) -> impl Future<Output = Result<Option<StoredUser>, UserStoreError>> + Send;

    /// Replaces the user's password hash with `new` if it is still `old`: `false` when it had
    /// changed meanwhile (or the user is gone), which leaves the newer one in place.
    fn replace_hash(
        &self,
        mobile: &Mobile,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Result<bool, UserStoreError>> + Send;

    /// Ends every session of the user: increments the item's session version if the item under
    /// `mobile` is still `user_id`'s. The new version, or `None` if there is no such item.
    fn end_sessions(
        &self,
        mobile: &Mobile,
        user_id: UserId,
    ) -> impl Future<Output = Result<Option<u64>, UserStoreError>> + Send;

    /// Replaces the password and ends every session in one conditional write: only if the item
    /// is still `seen`'s (its user id, hash and session version), so a concurrent change, reset or
    /// log out everywhere makes this one fail (`None`) rather than be lost. The new version.
    fn replace_password(
        &self,
        mobile: &Mobile,
        seen: &StoredUser,
        new_hash: &str,
    ) -> impl Future<Output = Result<Option<u64>, UserStoreError>> + Send;
}

// --- Session state

/// The session store could not be reached, or did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct SessionStoreError(String);

impl SessionStoreError {
    /// `why` names the failure; it must never carry a token or a user id.
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

/// What the session store knows of one token, read in one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// This very token was logged out.
    pub token_ended: bool,
    /// The user's current session version; `None` when the store has no record of the user,
    /// which only happens when it lost data (every login writes it, for longer than a token
    /// lives): then nothing can be said, and the token is refused.
    pub version: Option<u64>,
}

impl Standing {
    /// Whether a token carrying `version` may still be used.
    pub fn admits(&self, version: u64) -> bool {
        !self.token_ended && self.version.is_some_and(|current| version >= current)
    }
}

/// The verifiers' fast copy of what ended sessions (DynamoDB's item holds the durable version).
pub trait SessionStore: Send + Sync + 'static {
    /// The token's and its user's records.
    fn standing(
        &self,
        jti: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<Standing, SessionStoreError>> + Send;

    /// Ends one token until `until` (its expiry, leeway included).
    fn end_token(
        &self,
        jti: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<(), SessionStoreError>> + Send;

    /// Records the user's session version (never lowering a higher one), for at least `keep`.
    fn remember(
        &self,
        user_id: UserId,
        version: u64,
        keep: Duration,
    ) -> impl Future<Output = Result<(), SessionStoreError>> + Send;
}

// --- Login throttles

/// At most `failures` failed logins within `window`; reaching it refuses further attempts for a
/// `window` from the one that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub failures: u32,
    pub window: Duration,
}

/// The three counts a login attempt is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One mobile from one source: a person mistyping, or a guess from one place.
    pub per_mobile_source: Limit,
    /// One source across mobiles: credential stuffing.
    pub per_source: Limit,
    /// One mobile across sources: a distributed guess at one account.
    pub per_mobile: Limit,
}

/// Whether an attempt may be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted as a failure until [`LoginThrottle::succeeded`] or [`LoginThrottle::withdraw`]
    /// says otherwise: an attempt in flight holds its place, so attempts made at the same time
    /// cannot all pass a limit together.
    Admitted,
    /// A limit is reached; the attempt was not counted. `retry_after`: until the last limit
    /// reached lifts.
    Refused { retry_after: Duration },
}

/// The throttle store could not be reached, or did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("throttle store unavailable: {0}")]
pub struct ThrottleError(String);

impl ThrottleError {
    /// `why` names the failure; it must never carry a mobile or an address.
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

/// Counts login failures per (mobile, source), per source and per mobile. `admit` must be atomic:
/// however many attempts arrive at once, no more than a limit's worth are admitted.
pub trait LoginThrottle: Send + Sync + 'static {
    /// Admits the attempt and counts it against every limit, or refuses it if a limit is reached.
    fn admit(
        &self,
        mobile: &Mobile,
        source: &Source,
    ) -> impl Future<Output = Result<Admission, ThrottleError>> + Send;

    /// The admitted attempt logged in: clears the (mobile, source) count and takes the attempt
    /// back from the other two.
    fn succeeded(
        &self,
        mobile: &Mobile,
        source: &Source,
    ) -> impl Future<Output = Result<(), ThrottleError>> + Send;

    /// The admitted attempt was never judged (a store failed): takes it back from every count.
    fn withdraw(
        &self,
        mobile: &Mobile,
        source: &Source,
    ) -> impl Future<Output = Result<(), ThrottleError>> + Send;

    /// The owner proved the number (a reset by SMS code): clears the mobile's own count and the
    /// (mobile, source) one, lifting a lockout others caused. The per-source count stays.
    fn forgive(
        &self,
        mobile: &Mobile,
        source: &Source,
    ) -> impl Future<Output = Result<(), ThrottleError>> + Send;
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
