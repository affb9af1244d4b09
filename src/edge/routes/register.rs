//! `POST /api/v1.0/users`: a registration, `{mobile, sms_code, password, password2}`.

use crate::core::domain::Registration;
use crate::core::ports::{SessionStore, SmsCodeStore, UserStore};
use crate::core::register::{RegisterError, Registrar};
use crate::edge::contract::Outcome;
use crate::edge::routes::Reply;

pub async fn respond<C: SmsCodeStore, U: UserStore, S: SessionStore>(
    registrar: &Registrar<C, U, S>,
    body: &[u8],
) -> Reply {
    let form = match Registration::from_json(body) {
        Ok(form) => form,
        Err(rejection) => return Reply::refused(rejection.into()),
    };
    let mobile = form.mobile.masked();
    match registrar.register(form).await {
        Ok(done) => {
            tracing::info!(code = "registered", %mobile, user_id = %done.user_id, "user registered");
            Reply {
                cookie: Some(done.set_cookie),
                ..Reply::of(Outcome::Registered)
            }
        }
        Err(err) => {
            let outcome = Outcome::from(&err);
            match &err {
                RegisterError::SmsStoreUnavailable(_)
                | RegisterError::UserStoreUnavailable(_)
                | RegisterError::SessionStoreUnavailable(_)
                | RegisterError::Internal(_) => {
                    tracing::error!(code = outcome.code(), %mobile, error = %err, "registration failed")
                }
                _ => tracing::info!(code = outcome.code(), %mobile, "registration refused"),
            }
            Reply::of(outcome)
        }
    }
}
