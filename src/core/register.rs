//! The registration itself, knowing nothing of Lambda or HTTP: claim the SMS code, hash the
//! password, sign the session, write the user once, then spend the code. Whatever fails after
//! the code was proven, and was not the user's doing, releases the code, so the user can retry
//! with it; nothing is half written. When the write's outcome is unknown the release remembers
//! the user id, and the retry registers under it (replacing that write if it landed), so the
//! user gets a session, not a false "already registered".

use std::time::SystemTime;

use secrecy::SecretString;
use uuid::Uuid;

use crate::core::domain::{Mobile, Registration};
use crate::core::hashing;
use crate::core::ports::{
    Attempt, ClaimId, NewUser, SessionStore, SessionStoreError, SmsCodeStore, SmsStoreError,
    UserStore, UserStoreError,
};
use crate::core::session::Sessions;

/// A user was created.
pub struct Registered {
    pub user_id: Uuid,
    /// The `set-cookie` header value; it holds the token, so it is a secret.
    pub set_cookie: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("no usable sms code (expired, never sent, used or in use)")]
    SmsCodeExpired,
    #[error("sms code does not match")]
    SmsCodeMismatch,
    #[error("mobile already registered")]
    MobileExists,
    #[error(transparent)]
    SmsStoreUnavailable(#[from] SmsStoreError),
    #[error("user store unavailable: {0}")]
    UserStoreUnavailable(String),
    #[error(transparent)]
    SessionStoreUnavailable(#[from] SessionStoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub struct Registrar<C, U, S> {
    codes: C,
    users: U,
    sessions: Sessions,
    state: S,
}

impl<C: SmsCodeStore, U: UserStore, S: SessionStore> Registrar<C, U, S> {
    pub fn new(codes: C, users: U, sessions: Sessions, state: S) -> Self {
        Self {
            codes,
            users,
            sessions,
            state,
        }
    }

    pub async fn register(&self, form: Registration) -> Result<Registered, RegisterError> {
        let Registration {
            mobile,
            sms_code,
            password,
        } = form;
        let fresh_id = Uuid::now_v7();
        let claim = ClaimId::from(fresh_id);
        let pending = match self.codes.claim(&mobile, &sms_code, &claim).await {
            Ok(Attempt::Claimed { pending }) => pending,
            Ok(Attempt::Missing | Attempt::InUse) => return Err(RegisterError::SmsCodeExpired),
            Ok(Attempt::Wrong { burnt }) => {
                tracing::info!(mobile = %mobile.masked(), burnt, "wrong sms code");
                return Err(RegisterError::SmsCodeMismatch);
            }
            Err(e) => {
                // Redis may have run the claim and only the reply been lost: undo it, if so.
                self.settle(&mobile, &claim, Settle::Release { pending: None })
                    .await;
                return Err(e.into());
            }
        };
        // An earlier request with this code may have stored its user and never learnt it: this
        // request is that registration again, under the same id (the claim is still its own).
        if pending.is_some() {
            tracing::info!(mobile = %mobile.masked(), "retrying a write whose outcome was unknown");
        }
        let user_id = pending.unwrap_or(fresh_id);
        let result = self
            .create_user(user_id, pending.is_some(), &mobile, password)
            .await;
        let settle = match &result {
            Ok(_) | Err(RegisterError::MobileExists) => Settle::Consume,
            // Every attempt failed, but one may have landed: the next request proving this code
            // must be able to replace it, so the code remembers the id.
            Err(RegisterError::UserStoreUnavailable(_)) => Settle::Release {
                pending: Some(user_id),
            },
            Err(_) => Settle::Release { pending: None },
        };
        self.settle(&mobile, &claim, settle).await;
        result
    }

    async fn create_user(
        &self,
        user_id: Uuid,
        replaces_pending: bool,
        mobile: &Mobile,
        password: crate::core::domain::Password,
    ) -> Result<Registered, RegisterError> {
        let password_hash = hashing::hash_off_runtime(password)
            .await
            .map_err(|e| RegisterError::Internal(e.to_string()))?;
        let user = NewUser {
            user_id,
            mobile: mobile.clone(),
            password_hash,
            created_at: SystemTime::now(),
            replaces_pending,
        };
        // Signed, and the session version recorded (every verifier refuses a token whose user has
        // none), before the write, so nothing can fail once the user exists. A record for an id
        // whose write then fails is harmless: no token names it, and it expires.
        let set_cookie = self
            .sessions
            .cookie_for(user.user_id, mobile, mobile.as_str(), 0, user.created_at)
            .map_err(|e| RegisterError::Internal(e.to_string()))?;
        self.state
            .remember(user.user_id, 0, self.sessions.version_keep())
            .await?;
        self.users.insert(&user).await.map_err(|e| match e {
            UserStoreError::Exists => RegisterError::MobileExists,
            UserStoreError::Unavailable(why) => RegisterError::UserStoreUnavailable(why),
        })?;
        Ok(Registered {
            user_id: user.user_id,
            set_cookie,
        })
    }

    /// Ends a claim: the code is spent once the mobile has its user, and made usable again
    /// after a failure that was not the user's doing. A failure here is only logged: the answer
    /// stands, and an unended claim lapses with its lease.
    async fn settle(&self, mobile: &Mobile, claim: &ClaimId, how: Settle) {
        let done = match how {
            Settle::Consume => self.codes.consume(mobile, claim).await,
            Settle::Release { pending } => self.codes.release(mobile, claim, pending).await,
        };
        match done {
            Ok(held) => {
                tracing::info!(mobile = %mobile.masked(), ?how, held, "sms code claim ended")
            }
            Err(e) => {
                tracing::warn!(mobile = %mobile.masked(), ?how, error = %e, "sms code claim left to lapse")
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Settle {
    Consume,
    /// With `pending`, the code remembers that user id for the next request proving it.
    Release {
        pending: Option<Uuid>,
    },
}

/// `Consume`, `Release` or `ReleaseRemembering` in the logs (the id itself is not needed there).
impl std::fmt::Debug for Settle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Settle::Consume => "Consume",
            Settle::Release { pending: None } => "Release",
            Settle::Release { pending: Some(_) } => "ReleaseRemembering",
        })
    }
}
