//! The rest of a credential's life, knowing nothing of Lambda or HTTP: ending one session, ending
//! all of them, changing a password, resetting a forgotten one with an SMS code.
//!
//! What ends sessions is the user's **session version**: the item's `session_version` in the user
//! store (the durable record, written first, in the same conditional write as a new password),
//! copied to the session store, which every verifier reads. A token carries the version it was
//! issued under and is refused once the user's is higher. One token's logout lives in the session
//! store only, until the token's own expiry. Routes that need a session verify the cookie and ask
//! the session store first; a store that cannot answer refuses (503), never accepts unchecked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use uuid::Uuid;

use crate::core::domain::{Mobile, PasswordChange, Registration, Rejection, Source};
use crate::core::hashing;
use crate::core::ports::{
    Admission, Attempt, ClaimId, LoginThrottle, SessionStore, SessionStoreError, SmsCodeStore,
    StoredUser, ThrottleError, UserId, UserStore, UserStoreError,
};
use crate::core::session::{Claims, LEEWAY_SECONDS, LiveError, Sessions, Verifier, still_open};

/// A session verified and found open: the claims, and the user they name, parsed.
#[derive(Debug)]
pub struct Session {
    pub claims: Claims,
    pub user_id: UserId,
    pub mobile: Mobile,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No cookie, a cookie that does not verify, or a session that was ended.
    #[error("not logged in")]
    NotLoggedIn,
    #[error("request refused: {0:?}")]
    Rejected(Rejection),
    /// The current password, at a change, did not match.
    #[error("bad credentials")]
    BadCredentials,
    #[error("too many failed attempts")]
    TooManyAttempts { retry_after: Duration },
    #[error("no usable sms code (expired, never sent, used or in use)")]
    SmsCodeExpired,
    #[error("sms code does not match")]
    SmsCodeMismatch,
    #[error(transparent)]
    SessionStoreUnavailable(#[from] SessionStoreError),
    #[error(transparent)]
    ThrottleStoreUnavailable(#[from] ThrottleError),
    #[error("sms code store unavailable: {0}")]
    SmsStoreUnavailable(String),
    #[error("user store unavailable: {0}")]
    UserStoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<UserStoreError> for AccountError {
    fn from(e: UserStoreError) -> Self {
        match e {
            UserStoreError::Unavailable(why) => Self::UserStoreUnavailable(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A password changed or reset: the new session's cookie (a secret) and the user's new version.
pub struct Renewed {
    pub user_id: UserId,
    pub version: u64,
    pub set_cookie: SecretString,
}

/// Conditional writes tried before a reset gives up on a user whose item keeps changing.
const RESET_TRIES: usize = 3;

pub struct Account<C, U, T, S> {
    reset_codes: C,
    users: U,
    throttle: T,
    sessions: Sessions,
    verifier: Verifier,
    state: S,
}

impl<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore> Account<C, U, T, S> {
    /// `reset_codes`: the codes issued for a reset (never the registration's).
    pub fn new(
        reset_codes: C,
        users: U,
        throttle: T,
        sessions: Sessions,
        verifier: Verifier,
        state: S,
    ) -> Self {
        Self {
            reset_codes,
            users,
            throttle,
            sessions,
            verifier,
            state,
        }
    }

    /// The cookie `Set-Cookie` value that deletes the session cookie.
    pub fn clear_cookie(&self) -> SecretString {
        self.sessions.clear_cookie()
    }

    /// The session in `cookie_header`, if it verifies and was not ended.
    pub async fn session(&self, cookie_header: Option<&str>) -> Result<Session, AccountError> {
        let claims = self
            .verifier
            .verify_cookie(cookie_header.unwrap_or(""))
            .map_err(|_| AccountError::NotLoggedIn)?;
        let claims = still_open(claims, &self.state).await.map_err(|e| match e {
            LiveError::Ended(_) => AccountError::NotLoggedIn,
            LiveError::Store(e) => AccountError::SessionStoreUnavailable(e),
        })?;
        let user_id = Uuid::try_parse(&claims.sub).map_err(|_| AccountError::NotLoggedIn)?;
        let mobile = Mobile::parse(&claims.mobile).map_err(|_| AccountError::NotLoggedIn)?;
        Ok(Session {
            claims,
            user_id,
            mobile,
        })
    }

    /// Ends this token, everywhere, from the next request until it would have expired.
    pub async fn log_out(&self, session: &Session) -> Result<(), AccountError> {
        let until = UNIX_EPOCH + Duration::from_secs(session.claims.exp + LEEWAY_SECONDS);
        self.state.end_token(&session.claims.jti, until).await?;
        Ok(())
    }

    /// Ends every token of the user issued up to now, this one included.
    pub async fn log_out_everywhere(&self, session: &Session) -> Result<u64, AccountError> {
        let version = self
            .users
            .end_sessions(&session.mobile, session.user_id)
            .await?
            // The item is gone, or another user's now: nothing of this session is left.
            .ok_or(AccountError::NotLoggedIn)?;
        self.remember(session.user_id, version).await?;
        Ok(version)
    }

    /// Changes the session user's password, `body` being `{password, new_password,
    /// new_password2}`: the current password is a guess, throttled as a login is; the new hash
    /// and the new version are written together, only over what was verified; every other
    /// session ends and this one is renewed.
    pub async fn change_password(
        &self,
        session: &Session,
        body: &[u8],
        source: &Source,
    ) -> Result<Renewed, AccountError> {
        let change =
            PasswordChange::from_json(body, &session.mobile).map_err(AccountError::Rejected)?;
        let mobile = &session.mobile;
        if let Admission::Refused { retry_after } = self.throttle.admit(mobile, source).await? {
            return Err(AccountError::TooManyAttempts { retry_after });
        }
        let user = match self.users.find(mobile).await {
            Ok(user) => user,
            Err(e) => {
                self.give_back(mobile, source).await;
                return Err(e.into());
            }
        };
        // The durable record judges too: a Redis copy that missed an ending cannot let it by.
        let user = user.filter(|u| {
            u.user_id == session.user_id && !u.disabled && u.session_version <= session.claims.sv
        });
        let Some(user) = user else {
            self.give_back(mobile, source).await;
            return Err(AccountError::NotLoggedIn);
        };
        let verdict =
            match hashing::verify_off_runtime(Some(user.password_hash.clone()), change.current)
                .await
            {
                Ok(verdict) => verdict,
                Err(e) => {
                    self.give_back(mobile, source).await;
                    return Err(AccountError::Internal(e.to_string()));
                }
            };
        if !verdict.matched {
            return Err(AccountError::BadCredentials);
        }
        if let Err(e) = self.throttle.succeeded(mobile, source).await {
            tracing::warn!(mobile = %mobile.masked(), error = %e, "failure counts not cleared");
        }
        let new_hash = hashing::hash_off_runtime(change.new)
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        let version = self
            .users
            .replace_password(mobile, &user, &new_hash)
            .await?
            // Changed, reset or logged out everywhere meanwhile: this session is over.
            .ok_or(AccountError::NotLoggedIn)?;
        self.renew(&user, mobile, version).await
    }

    /// Resets a forgotten password with a code sent for a reset: the code is claimed as at
    /// registration (atomic, bounded tries, given back when a store fails), the hash and the
    /// version are replaced, every session ends, the login throttles on the number are lifted,
    /// and the user is logged in.
    pub async fn reset_password(
        &self,
        form: Registration,
        source: &Source,
    ) -> Result<Renewed, AccountError> {
        let Registration {
            mobile,
            sms_code,
            password,
        } = form;
        let claim = ClaimId::from(Uuid::now_v7());
        match self.reset_codes.claim(&mobile, &sms_code, &claim).await {
            Ok(Attempt::Claimed { .. }) => {}
            Ok(Attempt::Missing | Attempt::InUse) => return Err(AccountError::SmsCodeExpired),
            Ok(Attempt::Wrong { burnt }) => {
                tracing::info!(mobile = %mobile.masked(), burnt, "wrong reset code");
                return Err(AccountError::SmsCodeMismatch);
            }
            Err(e) => {
                self.release(&mobile, &claim).await;
                return Err(AccountError::SmsStoreUnavailable(e.to_string()));
            }
        }
        let result = self.replace_with_code(&mobile, password).await;
        match &result {
            // Done, or a number without an account: the code is spent either way.
            Ok(_) | Err(AccountError::SmsCodeExpired) => {
                if let Err(e) = self.reset_codes.consume(&mobile, &claim).await {
                    tracing::warn!(mobile = %mobile.masked(), error = %e, "reset code claim left to lapse");
                }
            }
            // A store failed: the user retries with the same code.
            Err(_) => self.release(&mobile, &claim).await,
        }
        let renewed = result?;
        if let Err(e) = self.throttle.forgive(&mobile, source).await {
            tracing::warn!(mobile = %mobile.masked(), error = %e, "login lockout not lifted");
        }
        Ok(renewed)
    }

    async fn replace_with_code(
        &self,
        mobile: &Mobile,
        password: crate::core::domain::Password,
    ) -> Result<Renewed, AccountError> {
        let new_hash = hashing::hash_off_runtime(password)
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        for _ in 0..RESET_TRIES {
            let Some(user) = self.users.find(mobile).await?.filter(|u| !u.disabled) else {
                // Reset codes are sent to registered numbers only; a code for any other number
                // opens nothing, and says no more than an expired one.
                return Err(AccountError::SmsCodeExpired);
            };
            if let Some(version) = self
                .users
                .replace_password(mobile, &user, &new_hash)
                .await?
            {
                return self.renew(&user, mobile, version).await;
            }
        }
        Err(AccountError::UserStoreUnavailable(
            "the item kept changing".into(),
        ))
    }

    /// After a new version is stored: the session store told, and a session under it signed.
    async fn renew(
        &self,
        user: &StoredUser,
        mobile: &Mobile,
        version: u64,
    ) -> Result<Renewed, AccountError> {
        self.remember(user.user_id, version).await?;
        let set_cookie = self
            .sessions
            .cookie_for(user.user_id, mobile, &user.name, version, SystemTime::now())
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        Ok(Renewed {
            user_id: user.user_id,
            version,
            set_cookie,
        })
    }

    /// The durable version is written; the verifiers' copy must follow. Failing here leaves the
    /// item ahead of Redis: answered 503, and the next login or a retry writes the copy.
    async fn remember(&self, user_id: UserId, version: u64) -> Result<(), AccountError> {
        self.state
            .remember(user_id, version, self.sessions.version_keep())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "sessions ended in the user store, not yet in the session store");
                AccountError::SessionStoreUnavailable(e)
            })
    }

    async fn release(&self, mobile: &Mobile, claim: &ClaimId) {
        if let Err(e) = self.reset_codes.release(mobile, claim, None).await {
            tracing::warn!(mobile = %mobile.masked(), error = %e, "reset code claim left to lapse");
        }
    }

    async fn give_back(&self, mobile: &Mobile, source: &Source) {
        if let Err(e) = self.throttle.withdraw(mobile, source).await {
            tracing::warn!(mobile = %mobile.masked(), error = %e, "unjudged attempt left counted");
        }
    }
}
