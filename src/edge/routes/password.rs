//! `PUT /api/v1.0/users/password`: the session's user changes their password, `{password,
//! new_password, new_password2}`. Every other session ends; this one gets a fresh cookie.

use crate::core::account::Account;
use crate::core::domain::Source;
use crate::core::ports::{LoginThrottle, SessionStore, SmsCodeStore, UserStore};
use crate::edge::contract::Outcome;
use crate::edge::routes::{Reply, account_failure};

pub async fn respond<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore>(
    account: &Account<C, U, T, S>,
    cookie: Option<&str>,
    body: &[u8],
    source: &Source,
) -> Reply {
    let session = match account.session(cookie).await {
        Ok(session) => session,
        Err(err) => return account_failure(&err, "password change"),
    };
    match account.change_password(&session, body, source).await {
        Ok(done) => {
            tracing::info!(code = "password_changed", mobile = %session.mobile.masked(),
                user_id = %done.user_id, version = done.version, "password changed");
            Reply {
                cookie: Some(done.set_cookie),
                ..Reply::of(Outcome::PasswordChanged)
            }
        }
        Err(err) => account_failure(&err, "password change"),
    }
}
