//! `DELETE /api/v1.0/session` (log out: this token ends) and `DELETE /api/v1.0/sessions` (log out
//! everywhere: every token of the user issued up to now ends). Both delete the cookie, also when
//! there was no session to end, so a browser holding a dead cookie is left clean.

use crate::core::account::Account;
use crate::core::ports::{LoginThrottle, SessionStore, SmsCodeStore, UserStore};
use crate::edge::contract::Outcome;
use crate::edge::routes::{Reply, account_failure};

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    ThisOne,
    Everywhere,
}

pub async fn respond<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore>(
    account: &Account<C, U, T, S>,
    cookie: Option<&str>,
    scope: Scope,
) -> Reply {
    let result = match account.session(cookie).await {
        Ok(session) => match scope {
            Scope::ThisOne => account.log_out(&session).await.map(|()| session),
            Scope::Everywhere => account.log_out_everywhere(&session).await.map(|_| session),
        },
        Err(e) => Err(e),
    };
    let reply = match result {
        Ok(session) => {
            let outcome = match scope {
                Scope::ThisOne => Outcome::LoggedOut,
                Scope::Everywhere => Outcome::LoggedOutEverywhere,
            };
            tracing::info!(code = outcome.code(), mobile = %session.mobile.masked(),
                user_id = %session.user_id, "sessions ended");
            Reply::of(outcome)
        }
        Err(err) => account_failure(&err, "logout"),
    };
    match reply.outcome {
        Outcome::LoggedOut | Outcome::LoggedOutEverywhere | Outcome::NotLoggedIn => Reply {
            cookie: Some(account.clear_cookie()),
            ..reply
        },
        _ => reply,
    }
}
