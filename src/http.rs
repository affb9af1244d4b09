//! The Lambda/HTTP edge: method and size checks, the body, the language, and the answer in the
//! iHome contract. API Gateway REST (payload 1.0), HTTP API (2.0) and Function URL events all
//! arrive here as one `lambda_http::Request`, base64 bodies already decoded.

use std::sync::Arc;

use lambda_http::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE, VARY,
};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tracing::Instrument;

use crate::contract::{Lang, Outcome, negotiate};
use crate::domain::Registration;
use crate::register::{RegisterError, Registrar};
use crate::sms_codes::SmsCodeStore;
use crate::users::UserStore;

/// Bodies above this get 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Answers one request. Never fails: a panic inside the registration becomes a 500 in the
/// contract rather than a failed invocation (which API Gateway would turn into a bare 502).
pub async fn handle<C: SmsCodeStore, U: UserStore>(
    registrar: Arc<Registrar<C, U>>,
    req: Request,
) -> Response<Body> {
    let lang = negotiate(
        req.headers()
            .get("accept-language")
            .and_then(|v| v.to_str().ok()),
    );
    // The task carries the invocation's span, so its log lines keep the request id.
    let task = async move { respond(&registrar, req).await }.instrument(tracing::Span::current());
    let (outcome, cookie) = match tokio::spawn(task).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(panicked = e.is_panic(), "registration task failed");
            (Outcome::Internal, None)
        }
    };
    answer(outcome, lang, cookie)
}

async fn respond<C: SmsCodeStore, U: UserStore>(
    registrar: &Registrar<C, U>,
    req: Request,
) -> (Outcome, Option<SecretString>) {
    if req.method() != Method::POST {
        return logged(Outcome::MethodNotAllowed);
    }
    let body: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if body.len() > MAX_BODY_BYTES {
        return logged(Outcome::BodyTooLarge);
    }
    let form = match Registration::from_json(body) {
        Ok(form) => form,
        Err(rejection) => return logged(rejection.into()),
    };
    let mobile = form.mobile.masked();
    match registrar.register(form).await {
        Ok(done) => {
            tracing::info!(code = "registered", %mobile, user_id = %done.user_id, "user registered");
            (Outcome::Registered, Some(done.set_cookie))
        }
        Err(err) => {
            let outcome = Outcome::from(&err);
            match &err {
                RegisterError::SmsStoreUnavailable(_)
                | RegisterError::UserStoreUnavailable(_)
                | RegisterError::Internal(_) => {
                    tracing::error!(code = outcome.code(), %mobile, error = %err, "registration failed")
                }
                _ => tracing::info!(code = outcome.code(), %mobile, "registration refused"),
            }
            (outcome, None)
        }
    }
}

fn logged(outcome: Outcome) -> (Outcome, Option<SecretString>) {
    tracing::info!(code = outcome.code(), "request rejected");
    (outcome, None)
}

/// The body of every answer, in the seed's field order.
#[derive(Serialize)]
struct Answer {
    errno: &'static str,
    errmsg: &'static str,
    code: &'static str,
}

/// Builds the JSON answer with its headers.
pub fn answer(outcome: Outcome, lang: Lang, cookie: Option<SecretString>) -> Response<Body> {
    let (status, errno, code) = outcome.parts();
    let body = Answer {
        errno,
        errmsg: outcome.message(lang),
        code,
    };
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(CACHE_CONTROL, "no-store")
        .header(
            CONTENT_LANGUAGE,
            if lang == Lang::En { "en" } else { "zh-CN" },
        )
        .header(VARY, "Accept-Language")
        .header("x-content-type-options", "nosniff");
    if status == 503 {
        response = response.header(RETRY_AFTER, RETRY_AFTER_SECONDS);
    }
    if outcome == Outcome::MethodNotAllowed {
        response = response.header(ALLOW, "POST");
    }
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(c.expose_secret()).ok()) {
        response = response.header(SET_COOKIE, value);
    }
    response
        .body(Body::Text(
            serde_json::to_string(&body).expect("three strings serialise"),
        ))
        .expect("static status and header values are valid")
}

#[cfg(test)]
mod tests {
    //! Pure edge logic with stand-in stores; storage itself is proven in `tests/`.
    use super::*;
    use crate::config::Config;
    use crate::domain::{Mobile, SmsCode};
    use crate::session::Sessions;
    use crate::sms_codes::{Attempt, ClaimId, SmsStoreError};
    use crate::users::{NewUser, UserId, UserStoreError};

    /// A store whose every call panics, standing in for an unexpected bug.
    struct Panics;

    impl SmsCodeStore for Panics {
        async fn claim(
            &self,
            _: &Mobile,
            _: &SmsCode,
            _: &ClaimId,
        ) -> Result<Attempt, SmsStoreError> {
            panic!("unexpected bug")
        }
        async fn consume(&self, _: &Mobile, _: &ClaimId) -> Result<bool, SmsStoreError> {
            panic!("unexpected bug")
        }
        async fn release(
            &self,
            _: &Mobile,
            _: &ClaimId,
            _: Option<UserId>,
        ) -> Result<bool, SmsStoreError> {
            panic!("unexpected bug")
        }
    }

    impl UserStore for Panics {
        async fn insert(&self, _: &NewUser) -> Result<(), UserStoreError> {
            panic!("unexpected bug")
        }
    }

    #[tokio::test]
    async fn a_panic_is_answered_as_500_in_the_contract() {
        let config = Config::from_lookup(|k| match k {
            "USERS_TABLE" => Some("users".into()),
            "REDIS_URL" => Some("redis://127.0.0.1:1".into()),
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            _ => None,
        })
        .unwrap();
        let registrar = Arc::new(Registrar::new(Panics, Panics, Sessions::new(&config)));
        let event = include_str!("../events/http-api/registered.json");
        let req = lambda_http::request::from_str(event).unwrap();
        let resp = handle(registrar, req).await;
        assert_eq!(resp.status().as_u16(), 500);
        let Body::Text(text) = resp.body() else {
            panic!("text body")
        };
        assert_eq!(
            text,
            r#"{"errno":"4500","errmsg":"内部错误","code":"internal"}"#
        );
        assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
    }
}
