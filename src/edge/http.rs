//! The Lambda/HTTP edge: the route by path, the method, origin and size checks, the language, and
//! the answer in the iHome contract; each route's own work is in `edge::routes`. API Gateway REST (payload 1.0), HTTP API (2.0) and Function URL events all
//! arrive here as one `lambda_http::Request`, base64 bodies already decoded.

use std::sync::Arc;

use lambda_http::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE, VARY,
};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use tracing::Instrument;

use crate::core::account::Account;
use crate::core::domain::Source;
use crate::core::login::Login;
use crate::core::ports::{LoginThrottle, SessionStore, SmsCodeStore, UserStore};
use crate::core::register::Registrar;
use crate::core::timing::{Spent, measured};
use crate::edge::config::Config;
use crate::edge::contract::{Lang, Outcome, StatusMode, negotiate};
use crate::edge::metrics::Metrics;
use crate::edge::origin::OriginPolicy;
use crate::edge::routes::{self, Reply, session_end::Scope};

/// Bodies above this get 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// The function as Lambda sees it: registration, login and the rest of a credential's life
/// behind the edge's own rules (which origins may call, which statuses answers carry). Built once
/// per cold start.
pub struct Service<C, U, T, S> {
    pub registrar: Registrar<C, U, S>,
    pub login: Login<U, T, S>,
    pub account: Account<C, U, T, S>,
    pub origins: OriginPolicy,
    pub status_mode: StatusMode,
    pub metrics: Metrics,
}

impl<C, U, T, S> Service<C, U, T, S> {
    pub fn new(
        registrar: Registrar<C, U, S>,
        login: Login<U, T, S>,
        account: Account<C, U, T, S>,
        config: &Config,
    ) -> Self {
        Self {
            registrar,
            login,
            account,
            origins: OriginPolicy::new(config),
            status_mode: config.status_mode,
            metrics: Metrics::new(&config.metrics_namespace),
        }
    }
}

/// Answers one request. Never fails: a panic inside the registration becomes a 500 in the
/// contract rather than a failed invocation (which API Gateway would turn into a bare 502).
pub async fn handle<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore>(
    service: Arc<Service<C, U, T, S>>,
    req: Request,
) -> Response<Body> {
    let lang = negotiate(
        req.headers()
            .get("accept-language")
            .and_then(|v| v.to_str().ok()),
    );
    let request_id = req.lambda_context_ref().map(|c| c.request_id.clone());
    let in_task = service.clone();
    // The task carries the invocation's span, so its log lines keep the request id.
    let task =
        measured(async move { respond(&in_task, req).await }).instrument(tracing::Span::current());
    let (reply, spent, allow) = match tokio::spawn(task).await {
        Ok(((reply, allow), spent)) => (reply, spent, allow),
        Err(e) => {
            tracing::error!(panicked = e.is_panic(), "request task failed");
            (Reply::of(Outcome::Internal), Spent::default(), None)
        }
    };
    service
        .metrics
        .emit(reply.outcome, spent, request_id.as_deref());
    let mut response = answer(reply, lang, service.status_mode);
    if let Some(allow) = allow {
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// The paths. The path is the event's own (`raw_http_path`): without the REST API's stage, as
/// the API's routes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `/api/v1.0/users`: POST registers.
    Users,
    /// `/api/v1.0/sessions`: POST logs in, DELETE logs out everywhere.
    Sessions,
    /// `/api/v1.0/session`: DELETE logs out (the path iHome's my.js calls).
    Session,
    /// `/api/v1.0/users/password`: PUT changes the password.
    Password,
    /// `/api/v1.0/password_resets`: POST resets a forgotten password with an SMS code.
    PasswordResets,
}

/// A path and a method it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    LogOut,
    LogOutEverywhere,
    ChangePassword,
    ResetPassword,
}

impl Path {
    pub fn of(path: &str) -> Option<Self> {
        match path {
            "/api/v1.0/users" => Some(Self::Users),
            "/api/v1.0/sessions" => Some(Self::Sessions),
            "/api/v1.0/session" => Some(Self::Session),
            "/api/v1.0/users/password" => Some(Self::Password),
            "/api/v1.0/password_resets" => Some(Self::PasswordResets),
            _ => None,
        }
    }

    /// The route `method` names on this path, if any.
    pub fn route(self, method: &Method) -> Option<Route> {
        Some(match (self, method.as_str()) {
            (Self::Users, "POST") => Route::Register,
            (Self::Sessions, "POST") => Route::Login,
            (Self::Sessions, "DELETE") => Route::LogOutEverywhere,
            (Self::Session, "DELETE") => Route::LogOut,
            (Self::Password, "PUT") => Route::ChangePassword,
            (Self::PasswordResets, "POST") => Route::ResetPassword,
            _ => return None,
        })
    }

    /// The `allow` header of a 405 on this path.
    pub fn allow(self) -> &'static str {
        match self {
            Self::Users | Self::PasswordResets => "POST",
            Self::Sessions => "POST, DELETE",
            Self::Session => "DELETE",
            Self::Password => "PUT",
        }
    }
}

/// What every route shares, in this order, all before any store is touched: the path, the
/// method, the origin, the size; then the route's own file reads the session and the body. The
/// second value is the `allow` header of a 405.
async fn respond<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore>(
    service: &Service<C, U, T, S>,
    req: Request,
) -> (Reply, Option<&'static str>) {
    let Some(path) = Path::of(req.raw_http_path()) else {
        return (Reply::refused(Outcome::NotFound), None);
    };
    let Some(route) = path.route(req.method()) else {
        return (
            Reply::refused(Outcome::MethodNotAllowed),
            Some(path.allow()),
        );
    };
    (route_checked(service, &req, route).await, None)
}

async fn route_checked<C: SmsCodeStore, U: UserStore, T: LoginThrottle, S: SessionStore>(
    service: &Service<C, U, T, S>,
    req: &Request,
    route: Route,
) -> Reply {
    if let Err(why) = service.origins.check(req.headers()) {
        let header = |name| {
            let value = req.headers().get(name).map(|v| v.as_bytes());
            value.map(|v| String::from_utf8_lossy(&v[..v.len().min(100)]).into_owned())
        };
        tracing::info!(
            code = Outcome::ForbiddenOrigin.code(),
            ?why,
            origin = header("origin"),
            sec_fetch_site = header("sec-fetch-site"),
            "request rejected"
        );
        return Reply::of(Outcome::ForbiddenOrigin);
    }
    let body: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if body.len() > MAX_BODY_BYTES {
        return Reply::refused(Outcome::BodyTooLarge);
    }
    let source = || Source::from_address(source_address(req));
    let cookie = cookie_header(req);
    let cookie = cookie.as_deref();
    let account = &service.account;
    match route {
        Route::Register => routes::register::respond(&service.registrar, body).await,
        Route::Login => routes::login::respond(&service.login, body, &source()).await,
        Route::LogOut => routes::session_end::respond(account, cookie, Scope::ThisOne).await,
        Route::LogOutEverywhere => {
            routes::session_end::respond(account, cookie, Scope::Everywhere).await
        }
        Route::ChangePassword => routes::password::respond(account, cookie, body, &source()).await,
        Route::ResetPassword => routes::reset::respond(account, body, &source()).await,
    }
}

/// The request's cookies as one `Cookie` header value. HTTP API (payload 2.0) events carry them
/// in `cookies`, which lambda_http joins into a `cookie` header; REST API events carry the
/// header itself. Several `cookie` headers (HTTP/2 may split them) are joined with `; `.
fn cookie_header(req: &Request) -> Option<String> {
    let parts: Vec<&str> = req
        .headers()
        .get_all(lambda_http::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The address API Gateway saw the request come from: `requestContext.http.sourceIp` (HTTP API,
/// Function URL) or `requestContext.identity.sourceIp` (REST API). Never a header: the client
/// writes `X-Forwarded-For`.
fn source_address(req: &Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref(),
        _ => None,
    }
}

/// The body of every answer, in the seed's field order.
#[derive(Serialize)]
struct Answer {
    errno: &'static str,
    errmsg: &'static str,
    code: &'static str,
}

/// Builds the JSON answer with its headers; `mode` picks the HTTP status, nothing else.
pub fn answer(reply: Reply, lang: Lang, mode: StatusMode) -> Response<Body> {
    let Reply {
        outcome,
        cookie,
        retry_after,
    } = reply;
    let (_, errno, code) = outcome.parts();
    let status = outcome.status_in(mode);
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
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up: a client waiting that long finds the limit lifted.
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        response = response.header(RETRY_AFTER, seconds.to_string());
    } else if outcome.status() == 503 {
        response = response.header(RETRY_AFTER, RETRY_AFTER_SECONDS);
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
    use crate::core::domain::{Mobile, SmsCode};
    use crate::core::ports::{
        Admission, Attempt, ClaimId, NewUser, SessionStoreError, SmsStoreError, Standing,
        StoredUser, ThrottleError, UserId, UserStoreError,
    };
    use crate::core::session::Sessions;
    use crate::edge::config::Config;

    /// A store whose every call panics, standing in for an unexpected bug.
    #[derive(Clone)]
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
        async fn find(&self, _: &Mobile) -> Result<Option<StoredUser>, UserStoreError> {
            panic!("unexpected bug")
        }
        async fn replace_hash(&self, _: &Mobile, _: &str, _: &str) -> Result<bool, UserStoreError> {
            panic!("unexpected bug")
        }
        async fn end_sessions(&self, _: &Mobile, _: UserId) -> Result<Option<u64>, UserStoreError> {
            panic!("unexpected bug")
        }
        async fn replace_password(
            &self,
            _: &Mobile,
            _: &StoredUser,
            _: &str,
        ) -> Result<Option<u64>, UserStoreError> {
            panic!("unexpected bug")
        }
    }

    impl SessionStore for Panics {
        async fn standing(&self, _: &str, _: &str) -> Result<Standing, SessionStoreError> {
            panic!("unexpected bug")
        }
        async fn end_token(
            &self,
            _: &str,
            _: std::time::SystemTime,
        ) -> Result<(), SessionStoreError> {
            panic!("unexpected bug")
        }
        async fn remember(
            &self,
            _: UserId,
            _: u64,
            _: std::time::Duration,
        ) -> Result<(), SessionStoreError> {
            panic!("unexpected bug")
        }
    }

    impl LoginThrottle for Panics {
        async fn admit(&self, _: &Mobile, _: &Source) -> Result<Admission, ThrottleError> {
            panic!("unexpected bug")
        }
        async fn succeeded(&self, _: &Mobile, _: &Source) -> Result<(), ThrottleError> {
            panic!("unexpected bug")
        }
        async fn withdraw(&self, _: &Mobile, _: &Source) -> Result<(), ThrottleError> {
            panic!("unexpected bug")
        }
        async fn forgive(&self, _: &Mobile, _: &Source) -> Result<(), ThrottleError> {
            panic!("unexpected bug")
        }
    }

    fn service(env: &[(&str, &str)]) -> Arc<Service<Panics, Panics, Panics, Panics>> {
        let config = Config::from_lookup(|k| match k {
            "USERS_TABLE" => Some("users".into()),
            "REDIS_URL" => Some("redis://127.0.0.1:1".into()),
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            _ => env
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string()),
        })
        .unwrap();
        let sessions = Sessions::new(&config.session);
        let registrar = Registrar::new(Panics, Panics, sessions.clone(), Panics);
        let login = Login::new(Panics, Panics, sessions.clone(), Panics);
        let verifier = config.session.verifier();
        let account = Account::new(Panics, Panics, Panics, sessions, verifier, Panics);
        Arc::new(Service::new(registrar, login, account, &config))
    }

    /// The registered event with `body` and extra headers.
    fn request(body: &str, headers: &[(&str, &str)]) -> Request {
        let event = include_str!("../../events/http-api/registered.json");
        let mut e: serde_json::Value = serde_json::from_str(event).unwrap();
        e["body"] = body.into();
        for (k, v) in headers {
            e["headers"][k] = (*v).into();
        }
        lambda_http::request::from_str(&e.to_string()).unwrap()
    }

    fn text(resp: &Response<Body>) -> &str {
        match resp.body() {
            Body::Text(text) => text,
            other => panic!("text body: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_panic_is_answered_as_500_in_the_contract() {
        for mode in ["ihome", "http"] {
            let event = include_str!("../../events/http-api/registered.json");
            let req = lambda_http::request::from_str(event).unwrap();
            let resp = handle(service(&[("STATUS_CODES", mode)]), req).await;
            assert_eq!(resp.status().as_u16(), 500, "{mode}");
            assert_eq!(
                text(&resp),
                r#"{"errno":"4500","errmsg":"内部错误","code":"internal"}"#
            );
            assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
        }
    }

    #[tokio::test]
    async fn a_refusal_is_http_200_in_ihome_mode_and_400_in_http_mode() {
        let body = r#"{"mobile":"12345","sms_code":"123456","password":"x","password2":"x"}"#;
        for (mode, status) in [(None, 200), (Some("ihome"), 200), (Some("http"), 400)] {
            let env: Vec<_> = mode.map(|m| ("STATUS_CODES", m)).into_iter().collect();
            let resp = handle(service(&env), request(body, &[])).await;
            assert_eq!(resp.status().as_u16(), status, "{mode:?}");
            assert_eq!(
                text(&resp),
                r#"{"errno":"4103","errmsg":"手机号格式错误","code":"invalid_mobile"}"#
            );
            assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
            assert!(resp.headers().get(RETRY_AFTER).is_none());
        }
    }

    /// The registered event sent to `path` with `method`, as HTTP API and as REST API (whose
    /// stage, `prod`, is not part of the route).
    fn sent_to(method: &str, path: &str) -> [Request; 2] {
        let mut http: serde_json::Value =
            serde_json::from_str(include_str!("../../events/http-api/registered.json")).unwrap();
        http["rawPath"] = path.into();
        http["requestContext"]["http"]["path"] = path.into();
        http["requestContext"]["http"]["method"] = method.into();
        let mut rest: serde_json::Value =
            serde_json::from_str(include_str!("../../events/rest-api/registered.json")).unwrap();
        rest["path"] = path.into();
        rest["httpMethod"] = method.into();
        rest["requestContext"]["httpMethod"] = method.into();
        [http, rest].map(|e| lambda_http::request::from_str(&e.to_string()).unwrap())
    }

    /// Routing runs before every store (they panic here): an unknown path is 404 whatever the
    /// method, a known one with another method 405 with `allow: POST`.
    #[tokio::test]
    async fn unknown_paths_are_404_and_other_methods_405_before_any_store() {
        for mode in ["ihome", "http"] {
            let service = service(&[("STATUS_CODES", mode)]);
            for (method, path) in [
                ("POST", "/api/v1.0/user"),
                ("POST", "/api/v1.0/users/"),
                ("POST", "/"),
                ("GET", "/index.html"),
                ("POST", "/prod/api/v1.0/users"),
            ] {
                for req in sent_to(method, path) {
                    let resp = handle(service.clone(), req).await;
                    assert_eq!(resp.status().as_u16(), 404, "{method} {path}");
                    assert_eq!(
                        text(&resp),
                        r#"{"errno":"4201","errmsg":"接口不存在","code":"not_found"}"#
                    );
                    assert!(resp.headers().get(ALLOW).is_none());
                }
            }
            for method in ["GET", "PUT", "DELETE", "OPTIONS"] {
                for req in sent_to(method, "/api/v1.0/users") {
                    let resp = handle(service.clone(), req).await;
                    assert_eq!(resp.status().as_u16(), 405, "{method}");
                    assert_eq!(resp.headers()[ALLOW], "POST");
                    assert!(text(&resp).contains(r#""code":"method_not_allowed""#));
                }
            }
        }
    }

    /// Issue 20: with the template's default (no `ALLOWED_ORIGINS`), a browser without Fetch
    /// Metadata posting from another site is refused on every route that sets or ends a
    /// session, before any store (they panic here), in both API payload versions.
    #[tokio::test]
    async fn a_foreign_origin_without_fetch_metadata_is_refused_on_every_route() {
        let routes = [
            ("POST", "/api/v1.0/users"),
            ("POST", "/api/v1.0/sessions"),
            ("DELETE", "/api/v1.0/sessions"),
            ("DELETE", "/api/v1.0/session"),
            ("PUT", "/api/v1.0/users/password"),
            ("POST", "/api/v1.0/password_resets"),
        ];
        for mode in ["ihome", "http"] {
            let service = service(&[("STATUS_CODES", mode)]);
            for (method, path) in routes {
                for mut req in sent_to(method, path) {
                    let h = req.headers_mut();
                    h.remove("sec-fetch-site");
                    h.insert("origin", HeaderValue::from_static("https://evil.example"));
                    h.insert("content-type", HeaderValue::from_static("text/plain"));
                    let resp = handle(service.clone(), req).await;
                    assert_eq!(resp.status().as_u16(), 403, "{method} {path}");
                    assert!(text(&resp).contains(r#""code":"forbidden_origin""#));
                    assert!(resp.headers().get(SET_COOKIE).is_none());
                }
            }
        }
    }

    /// The stores panic when touched: a 403 (not a 500) proves the check ran before them.
    #[tokio::test]
    async fn another_site_is_refused_before_any_store_is_touched() {
        let form = r#"{"mobile":"13812345678","sms_code":"123456","password":"correct horse battery","password2":"correct horse battery"}"#;
        let cross = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
            ("content-type", "text/plain"),
        ];
        let unlisted = [
            ("sec-fetch-site", "same-site"),
            ("origin", "https://evil.ihome.example"),
        ];
        let listed = [("ALLOWED_ORIGINS", "https://www.ihome.example")];
        for (env, headers) in [
            (&[][..], &cross[..]),
            (&listed[..], &cross[..]),
            (&listed[..], &unlisted[..]),
            (&listed[..], &[("origin", "null")][..]),
        ] {
            for mode in ["ihome", "http"] {
                let mut env = env.to_vec();
                env.push(("STATUS_CODES", mode));
                // Not even a body too large or not JSON is looked at first.
                for body in [form.to_owned(), "x".repeat(MAX_BODY_BYTES + 1)] {
                    let resp = handle(service(&env), request(&body, headers)).await;
                    assert_eq!(resp.status().as_u16(), 403, "{env:?} {headers:?}");
                    assert_eq!(
                        text(&resp),
                        r#"{"errno":"4201","errmsg":"非法请求","code":"forbidden_origin"}"#
                    );
                    assert!(resp.headers().get(SET_COOKIE).is_none());
                }
            }
        }
        // Listed, same-origin: the request goes on to the stores (which panic here: 500).
        let same = [
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://www.ihome.example"),
        ];
        let resp = handle(service(&listed), request(form, &same)).await;
        assert_eq!(resp.status().as_u16(), 500);
    }
}
