//! `POST /api/v1.0/password_resets`: a forgotten password replaced with a code sent for a reset,
//! `{mobile, sms_code, password, password2}` (read as a registration's body). Every session ends,
//! the login lockout on the number is lifted, and the user is logged in.

use crate::core::account::Account;
use crate::core::domain::{Registration, Source};
use crate::core::ports::{LoginThrottle, SessionStore, SmsCodeStore, UserStore};
use crate::edge::contract::Outcome;
use crate::edge::routes::{Reply, account_failure};

pub async fn respond<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore>(
    account: &Account<C, U, T, S>,
    body: &[u8],
    source: &Source,
) -> Reply {
    let form = match Registration::from_json(body) {
        Ok(form) => form,
        Err(rejection) => return Reply::refused(rejection.into()),
    };
    let mobile = form.mobile.masked();
    match account.reset_password(form, source).await {
        Ok(done) => {
            tracing::info!(code = "password_reset", %mobile, user_id = %done.user_id,
                version = done.version, "password reset");
            Reply {
                cookie: Some(done.set_cookie),
                ..Reply::of(Outcome::PasswordReset)
            }
        }
        Err(err) => account_failure(&err, "password reset"),
    }
}
