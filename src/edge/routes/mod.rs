//! One file per route. Each reads its body into the core's types, calls the core, logs one line
//! and says what to answer; what every route shares (method, origin, size, the answer itself) is
//! in `edge::http`.

pub mod login;
pub mod register;

use std::time::Duration;

use secrecy::SecretString;

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
