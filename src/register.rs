//! The registration itself, knowing nothing of Lambda or HTTP: take the SMS code, prove it, hash
//! the password, sign the session, write the user once. Whatever fails after the code was
//! proven gives the code back, so the user can retry with it; nothing is half written.

use std::time::SystemTime;

use secrecy::SecretString;
use uuid::Uuid;

use crate::domain::{Mobile, Registration};
use crate::hashing;
use crate::session::Sessions;
use crate::sms_codes::{Restored, SmsCodeStore, SmsStoreError, TakenCode};
use crate::users::{NewUser, UserStore, UserStoreError};

/// A user was created.
pub struct Registered {
    pub user_id: Uuid,
    /// The `set-cookie` header value; it holds the token, so it is a secret.
    pub set_cookie: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("no sms code stored for the mobile")]
    SmsCodeExpired,
    #[error("sms code does not match")]
    SmsCodeMismatch,
    #[error("mobile already registered")]
    MobileExists,
    #[error(transparent)]
    SmsStoreUnavailable(#[from] SmsStoreError),
    #[error("user store unavailable: {0}")]
    UserStoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub struct Registrar<C, U> {
    codes: C,
    users: U,
    sessions: Sessions,
}

impl<C: SmsCodeStore, U: UserStore> Registrar<C, U> {
    pub fn new(codes: C, users: U, sessions: Sessions) -> Self {
        Self {
            codes,
            users,
            sessions,
        }
    }

    pub async fn register(&self, form: Registration) -> Result<Registered, RegisterError> {
        let Registration {
            mobile,
            sms_code,
            password,
        } = form;
        // One atomic take: a code serves one attempt, right or wrong, as the seed intended.
        let taken = self
            .codes
            .take(&mobile)
            .await?
            .ok_or(RegisterError::SmsCodeExpired)?;
        if !sms_code.matches(taken.value()) {
            return Err(RegisterError::SmsCodeMismatch);
        }
        let result = self.create_user(&mobile, password).await;
        if result
            .as_ref()
            .is_err_and(|e| !matches!(e, RegisterError::MobileExists))
        {
            self.give_back(&mobile, &taken).await;
        }
        result
    }

    async fn create_user(
        &self,
        mobile: &Mobile,
        password: crate::domain::Password,
    ) -> Result<Registered, RegisterError> {
        let password_hash = hashing::hash_off_runtime(password)
            .await
            .map_err(|e| RegisterError::Internal(e.to_string()))?;
        let user = NewUser {
            user_id: Uuid::now_v7(),
            mobile: mobile.clone(),
            password_hash,
            created_at: SystemTime::now(),
        };
        // Signed before the write, so nothing can fail once the user exists.
        let set_cookie = self
            .sessions
            .cookie_for(user.user_id, mobile, user.created_at)
            .map_err(|e| RegisterError::Internal(e.to_string()))?;
        self.users.insert(&user).await.map_err(|e| match e {
            UserStoreError::Exists => RegisterError::MobileExists,
            UserStoreError::Unavailable(why) => RegisterError::UserStoreUnavailable(why),
        })?;
        Ok(Registered {
            user_id: user.user_id,
            set_cookie,
        })
    }

    /// Puts a proven code back after a failure that was not the user's doing.
    async fn give_back(&self, mobile: &Mobile, taken: &TakenCode) {
        match self.codes.restore(mobile, taken).await {
            Ok(Restored::Restored) => {
                tracing::info!(mobile = %mobile.masked(), "sms code restored")
            }
            Ok(outcome) => {
                tracing::info!(mobile = %mobile.masked(), ?outcome, "sms code not restored")
            }
            Err(e) => {
                tracing::error!(mobile = %mobile.masked(), error = %e, "sms code could not be restored")
            }
        }
    }
}
