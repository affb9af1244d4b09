//! Logging in, knowing nothing of Lambda or HTTP: the throttles first (a refused attempt costs no
//! hash and learns nothing), then the user, then one verification whether or not the user exists
//! (so an unknown mobile and a wrong password cost the same), then the session. A hash that is not
//! ours (an imported werkzeug hash, or argon2 with other parameters) is replaced by one of ours
//! once the password has matched it, if it is still the stored one.

use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;

use crate::core::domain::{Credentials, Mobile, Source};
use crate::core::hashing::{self, Verdict};
use crate::core::ports::{
    Admission, LoginThrottle, SessionStore, UserId, UserStore, UserStoreError,
};
use crate::core::session::Sessions;

/// A failed login is answered no sooner than this many verifications of our argon2id hash
/// (as this instance measures them) after it was admitted: more than the costliest hash a login
/// accepts (about 10 of ours: `pbkdf2:sha256:1000000`, `scrypt` at twice werkzeug's work, argon2
/// at argon2-cffi's default; see `core::werkzeug`'s bounds). So an unknown mobile, a wrong
/// password against any stored hash and a damaged item take the same time from outside: the
/// floor, not the hash (issue 20). A multiple of the measured cost rather than a fixed time, so
/// it holds at every Lambda memory size without configuration.
pub const FAILURE_FLOOR: u32 = 12;

/// A user logged in.
pub struct LoggedIn {
    pub user_id: UserId,
    /// The `set-cookie` header value; it holds the token, so it is a secret.
    pub set_cookie: SecretString,
    /// What became of a hash that was not ours, when the password matched one.
    pub upgrade: Option<Upgrade>,
}

/// The stored hash was not ours and the password matched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Its format (`pbkdf2:sha256:600000`, ...), safe to log.
    pub from: String,
    pub outcome: UpgradeOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// The item now holds an argon2id hash of ours.
    Stored,
    /// The hash had changed meanwhile (another login upgraded it, or it was reset): the newer one
    /// stays.
    Superseded,
    /// The write failed; the old hash stays and the next login tries again.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// An unknown mobile, a wrong password, or a stored hash no login can match: one answer.
    #[error("bad credentials")]
    BadCredentials,
    #[error("too many failed attempts")]
    TooManyAttempts { retry_after: Duration },
    #[error(transparent)]
    ThrottleStoreUnavailable(#[from] crate::core::ports::ThrottleError),
    #[error("user store unavailable: {0}")]
    UserStoreUnavailable(String),
    #[error(transparent)]
    SessionStoreUnavailable(#[from] crate::core::ports::SessionStoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub struct Login<U, T, S> {
    users: U,
    throttle: T,
    sessions: Sessions,
    state: S,
}

impl<U: UserStore, T: LoginThrottle, S: SessionStore> Login<U, T, S> {
    pub fn new(users: U, throttle: T, sessions: Sessions, state: S) -> Self {
        Self {
            users,
            throttle,
            sessions,
            state,
        }
    }

    pub async fn log_in(
        &self,
        credentials: Credentials,
        source: &Source,
    ) -> Result<LoggedIn, LoginError> {
        let Credentials { mobile, password } = credentials;
        if let Admission::Refused { retry_after } = self.throttle.admit(&mobile, source).await? {
            return Err(LoginError::TooManyAttempts { retry_after });
        }
        let admitted = Instant::now();
        let user = match self.users.find(&mobile).await {
            // A disabled account answers as an unknown mobile does, at the same cost.
            Ok(user) => user.filter(|u| !u.disabled),
            Err(e) => {
                self.give_back(&mobile, source).await;
                return Err(LoginError::UserStoreUnavailable(match e {
                    UserStoreError::Unavailable(why) => why,
                    other => other.to_string(),
                }));
            }
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verdict = match hashing::verify_off_runtime(stored, password).await {
            Ok(verdict) => verdict,
            Err(e) => {
                self.give_back(&mobile, source).await;
                return Err(LoginError::Internal(e.to_string()));
            }
        };
        match user.as_ref().and_then(|u| u.damaged) {
            Some(problem) => {
                tracing::warn!(mobile = %mobile.masked(), problem, "user item is damaged")
            }
            None if verdict.unusable => {
                tracing::warn!(mobile = %mobile.masked(), format = %verdict.format,
                    "stored password hash is in no format a login can verify")
            }
            None => {}
        }
        let (Some(user), true) = (user, verdict.matched) else {
            // Counted as a failure when admitted.
            hold_failure(admitted).await;
            return Err(LoginError::BadCredentials);
        };
        // The token carries the version read with the hash: a change or reset that lands while
        // this login verifies makes it ended already (the race issue 19 names).
        let set_cookie = self
            .sessions
            .cookie_for(
                user.user_id,
                &mobile,
                &user.name,
                user.session_version,
                SystemTime::now(),
            )
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        // Every verifier refuses a token whose user the store has no version for.
        if let Err(e) = self
            .state
            .remember(
                user.user_id,
                user.session_version,
                self.sessions.version_keep(),
            )
            .await
        {
            self.give_back(&mobile, source).await;
            return Err(e.into());
        }
        if let Err(e) = self.throttle.succeeded(&mobile, source).await {
            tracing::warn!(mobile = %mobile.masked(), error = %e, "failure counts not cleared");
        }
        let upgrade = self.upgrade(&mobile, &user.password_hash, verdict).await;
        Ok(LoggedIn {
            user_id: user.user_id,
            set_cookie,
            upgrade,
        })
    }

    /// Stores the verdict's upgrade in place of `old`, if `old` is still there. Never fails the
    /// login: the user proved the password either way.
    async fn upgrade(&self, mobile: &Mobile, old: &str, verdict: Verdict) -> Option<Upgrade> {
        let new = verdict.upgrade?;
        let outcome = match self.users.replace_hash(mobile, old, &new).await {
            Ok(true) => UpgradeOutcome::Stored,
            Ok(false) => UpgradeOutcome::Superseded,
            Err(e) => {
                tracing::warn!(mobile = %mobile.masked(), error = %e, "password hash not upgraded");
                UpgradeOutcome::Failed
            }
        };
        Some(Upgrade {
            from: verdict.format,
            outcome,
        })
    }

    /// The attempt was never judged: it must not count as a failure. A failure here is only
    /// logged (the count then lapses with its window).
    async fn give_back(&self, mobile: &Mobile, source: &Source) {
        if let Err(e) = self.throttle.withdraw(mobile, source).await {
            tracing::warn!(mobile = %mobile.masked(), error = %e, "unjudged attempt left counted");
        }
    }
}

/// Waits until [`FAILURE_FLOOR`] verifications of ours have passed since `admitted`, without
/// holding a thread (Lambda bills the wall time; docs/performance.md prices it).
pub async fn hold_failure(admitted: Instant) {
    match hashing::calibrate_off_runtime().await {
        Ok(cost) => tokio::time::sleep_until((admitted + cost * FAILURE_FLOOR).into()).await,
        // Only a panicked blocking task gets here; the answer is not held back for it.
        Err(e) => tracing::warn!(error = %e, "failure floor not measured"),
    }
}
