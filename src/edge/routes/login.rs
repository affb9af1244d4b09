//! `POST /api/v1.0/sessions`: a login, `{mobile, password}`, from the address API Gateway saw.

use crate::core::domain::{Credentials, Source};
use crate::core::login::{Login, LoginError};
use crate::core::ports::{LoginThrottle, SessionStore, UserStore};
use crate::edge::contract::Outcome;
use crate::edge::routes::Reply;

pub async fn respond<U: UserStore, T: LoginThrottle, S: SessionStore>(
    login: &Login<U, T, S>,
    body: &[u8],
    source: &Source,
) -> Reply {
    let credentials = match Credentials::from_json(body) {
        Ok(credentials) => credentials,
        Err(rejection) => return Reply::refused(rejection.into()),
    };
    let mobile = credentials.mobile.masked();
    match login.log_in(credentials, source).await {
        Ok(done) => {
            let upgrade = done.upgrade.as_ref();
            tracing::info!(code = "logged_in", %mobile, user_id = %done.user_id,
                upgraded_from = upgrade.map(|u| u.from.as_str()),
                upgrade = upgrade.map(|u| tracing::field::debug(u.outcome)),
                "user logged in");
            Reply {
                cookie: Some(done.set_cookie),
                ..Reply::of(Outcome::LoggedIn)
            }
        }
        Err(err) => {
            let outcome = Outcome::from(&err);
            match &err {
                LoginError::ThrottleStoreUnavailable(_)
                | LoginError::UserStoreUnavailable(_)
                | LoginError::SessionStoreUnavailable(_)
                | LoginError::Internal(_) => {
                    tracing::error!(code = outcome.code(), %mobile, error = %err, "login failed")
                }
                _ => tracing::info!(code = outcome.code(), %mobile, "login refused"),
            }
            let retry_after = match err {
                LoginError::TooManyAttempts { retry_after } => Some(retry_after),
                _ => None,
            };
            Reply {
                retry_after,
                ..Reply::of(outcome)
            }
        }
    }
}
