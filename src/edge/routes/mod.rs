//! One file per route. Each reads its body into the core's types, calls the core, logs one line
//! and says what to answer; what every route shares (method, origin, size, the answer itself) is
//! in `edge::http`.

pub mod login;
pub mod password;
pub mod register;
pub mod reset;
pub mod session_end;

use std::time::Duration;

use secrecy::SecretString;

use crate::core::account::AccountError;
use crate::edge::contract::Outcome;

/// What a route answers: a row of the contract, and the session cookie when one was set.
#[derive(Debug)]
pub struct Reply {
    pub outcome: Outcome,
    /// The `set-cookie` value; it holds the token, so it is a secret.
    pub cookie: Option<SecretString>,
    /// How long before a retry may succeed (a throttled login), for `retry-after`.
    pub retry_after: Option<Duration>,
}

impl Reply {
    pub fn of(outcome: Outcome) -> Self {
        Self {
            outcome,
            cookie: None,
            retry_after: None,
        }
    }

    /// A request refused before any store was touched, with its one log line.
    pub fn refused(outcome: Outcome) -> Self {
        tracing::info!(code = outcome.code(), "request rejected");
        Self::of(outcome)
    }
}

/// The answer to a failed account operation (`what`: the route, for the log line): a store
/// failure is logged as an error, a refusal as information; a throttled guess says when to retry.
pub fn account_failure(err: &AccountError, what: &str) -> Reply {
    let outcome = Outcome::from(err);
    match err {
        AccountError::SessionStoreUnavailable(_)
        | AccountError::ThrottleStoreUnavailable(_)
        | AccountError::SmsStoreUnavailable(_)
        | AccountError::UserStoreUnavailable(_)
        | AccountError::Internal(_) => {
            tracing::error!(code = outcome.code(), error = %err, "{what} failed")
        }
        _ => tracing::info!(code = outcome.code(), "{what} refused"),
    }
    Reply {
        retry_after: match err {
            AccountError::TooManyAttempts { retry_after } => Some(*retry_after),
            _ => None,
        },
        ..Reply::of(outcome)
    }
}
