//! The handler against real Redis and the local DynamoDB server, one contract row at a time,
//! each checking the answer and the stored state: the item in DynamoDB and the key in Redis.

mod support;

use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use ihome_register::edge::app::App;
use ihome_register::edge::http;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use support::{PASSWORD, Stores, closed_port, random_mobile, s};

/// A real HTTP API (2.0) event from `events/`, with the given method, body and headers.
fn event(method: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Request {
    let text = include_str!("../events/http-api/registered.json");
    let mut e: Value = serde_json::from_str(text).unwrap();
    e["requestContext"]["http"]["method"] = json!(method);
    e["body"] = body.map_or(Value::Null, |b| json!(b));
    for (k, v) in headers {
        e["headers"][k] = json!(v);
    }
    lambda_http::request::from_str(&e.to_string()).unwrap()
}

fn form(mobile: &str, code: &str) -> String {
    json!({"mobile": mobile, "sms_code": code, "password": PASSWORD, "password2": PASSWORD})
        .to_string()
}

/// Posts `body`; its mobile, code and password (when long enough to mean anything) must never
/// reach the logs.
async fn post(app: &Arc<App>, body: &str) -> (u16, Value, Response<Body>) {
    if let Ok(Value::Object(fields)) = serde_json::from_str(body) {
        let typed = fields.values().filter_map(Value::as_str);
        support::logs::forbid(typed.filter(|v| v.trim().len() >= 6));
    }
    send(app, event("POST", Some(body), &[])).await
}

async fn send(app: &Arc<App>, req: Request) -> (u16, Value, Response<Body>) {
    let resp = http::handle(app.clone(), req).await;
    support::logs::assert_clean();
    let body: Value = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("answer body is not text: {other:?}"),
    };
    (resp.status().as_u16(), body, resp)
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

fn assert_contract(status: u16, body: &Value, resp: &Response<Body>, want: (u16, &str, &str)) {
    assert_eq!(
        (
            status,
            body["errno"].as_str().unwrap(),
            body["code"].as_str().unwrap()
        ),
        want,
        "{body}"
    );
    assert!(body["errmsg"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        body.as_object().unwrap().len(),
        3,
        "exactly errno, errmsg, code: {body}"
    );
    assert_eq!(
        header(resp, "content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(header(resp, "cache-control"), Some("no-store"));
    assert_eq!(header(resp, "retry-after").is_some(), status == 503);
    if status != 201 {
        assert_eq!(header(resp, "set-cookie"), None);
    }
}

#[tokio::test]
async fn registers_a_user_with_a_session_cookie_and_consumes_the_code() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "246810", 300).await;

    let (status, body, resp) = post(&app, &form(&format!(" +86{mobile}\n"), "246810")).await;
    assert_contract(status, &body, &resp, (201, "0", "registered"));
    assert_eq!(body["errmsg"], "注册成功");

    let item = st
        .item(&mobile)
        .await
        .expect("the user is stored under the 11-digit mobile");
    assert_eq!(
        item.len(),
        5,
        "mobile, user_id, name, password_hash, created_at"
    );
    assert_eq!(
        (s(&item, "mobile"), s(&item, "name")),
        (mobile.as_str(), mobile.as_str())
    );
    let user_id = uuid::Uuid::parse_str(s(&item, "user_id")).unwrap();
    assert_eq!(user_id.get_version_num(), 7);
    let hash = s(&item, "password_hash");
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let parsed = PasswordHash::new(hash).unwrap();
    assert!(
        Argon2::default()
            .verify_password(PASSWORD.as_bytes(), &parsed)
            .is_ok()
    );
    let created = s(&item, "created_at");
    assert!(
        created.ends_with('Z') && created.len() == 24 && created.as_bytes()[19] == b'.',
        "{created}"
    );
    assert_eq!(st.code(&mobile).await, None, "the code is used up");

    let cookie = header(&resp, "set-cookie").expect("a session cookie");
    let (token, attrs) = cookie
        .strip_prefix("__Host-session=")
        .and_then(|rest| rest.split_once("; "))
        .unwrap();
    assert_eq!(
        attrs,
        "Path=/; Max-Age=86400; HttpOnly; Secure; SameSite=Lax"
    );
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["ihome"]);
    let claims = jsonwebtoken::decode::<ihome_register::core::session::Claims>(
        token,
        &DecodingKey::from_secret(st.secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims.sub, user_id.to_string());
    assert_eq!(
        (claims.mobile.as_str(), claims.name.as_str()),
        (mobile.as_str(), mobile.as_str())
    );
    assert_eq!(claims.exp - claims.iat, 86_400);
}

#[tokio::test]
async fn requests_rejected_without_redis_leave_the_code_and_write_nothing() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "135790", 300).await;
    let with = |k: &str, v: Value| {
        let mut o = json!({"mobile": mobile, "sms_code": "135790", "password": PASSWORD, "password2": PASSWORD});
        o[k] = v;
        o.to_string()
    };
    let cases = [
        (with("password2", json!("something else")), (400, "4103", "password_mismatch")),
        (with("password2", Value::Null), (400, "4103", "missing_field")),
        (with("sms_code", json!(135790)), (400, "4103", "missing_field")),
        (with("sms_code", json!("13579")), (400, "4103", "invalid_sms_code")),
        (with("mobile", json!(format!("{mobile}0"))), (400, "4103", "invalid_mobile")),
        (with("mobile", json!(format!("{mobile}abc"))), (400, "4103", "invalid_mobile")),
        (
            json!({"mobile": mobile, "sms_code": "135790", "password": "Password1", "password2": "Password1"}).to_string(),
            (400, "4103", "weak_password"),
        ),
        (
            json!({"mobile": mobile, "sms_code": "135790", "password": mobile, "password2": mobile}).to_string(),
            (400, "4103", "weak_password"),
        ),
        ("{\"mobile\": ".to_owned(), (400, "4103", "invalid_body")),
        ("[]".to_owned(), (400, "4103", "invalid_body")),
        (String::new(), (400, "4103", "invalid_body")),
    ];
    for (body, want) in cases {
        let (status, answer, resp) = post(&app, &body).await;
        assert_contract(status, &answer, &resp, want);
        assert!(
            !answer.to_string().contains("135790"),
            "no answer echoes the code"
        );
    }
    let (status, answer, resp) = send(&app, event("GET", None, &[])).await;
    assert_contract(status, &answer, &resp, (405, "4201", "method_not_allowed"));
    assert_eq!(header(&resp, "allow"), Some("POST"));
    let huge = with("padding", json!("x".repeat(http::MAX_BODY_BYTES)));
    let (status, answer, resp) = post(&app, &huge).await;
    assert_contract(status, &answer, &resp, (413, "4201", "body_too_large"));

    assert_eq!(
        st.code(&mobile).await.as_deref(),
        Some("135790"),
        "the code is untouched"
    );
    assert_eq!(st.count_items().await, 0);
}

#[tokio::test]
async fn a_base64_body_with_any_content_type_is_read() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "112233", 300).await;
    let text = include_str!("../events/rest-api/registered--base64.json");
    let mut e: Value = serde_json::from_str(text).unwrap();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(form(&mobile, "112233"));
    e["body"] = json!(encoded);
    e["headers"]["content-type"] = json!("text/plain");
    let req = lambda_http::request::from_str(&e.to_string()).unwrap();
    let (status, body, resp) = send(&app, req).await;
    assert_contract(status, &body, &resp, (201, "0", "registered"));
    assert!(st.item(&mobile).await.is_some());
}

#[tokio::test]
async fn no_code_is_expired_and_wrong_codes_count_until_the_fifth_deletes_it() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();

    let (status, body, resp) = post(&app, &form(&mobile, "111111")).await;
    assert_contract(status, &body, &resp, (400, "4002", "sms_code_expired"));
    assert_eq!(body["errmsg"], "短信验证码失效");

    st.set_code(&mobile, "222222", 300).await;
    for tries in 1..=4 {
        let (status, body, resp) = post(&app, &form(&mobile, "111111")).await;
        assert_contract(status, &body, &resp, (400, "4002", "sms_code_mismatch"));
        assert_eq!(body["errmsg"], "短信验证码错误");
        let left = st
            .stored(&mobile)
            .await
            .expect("the code survives a wrong try");
        assert_eq!((left.digits.as_str(), left.wrong), ("222222", tries));
    }
    let (status, body, resp) = post(&app, &form(&mobile, "111111")).await;
    assert_contract(status, &body, &resp, (400, "4002", "sms_code_mismatch"));
    assert_eq!(
        st.code(&mobile).await,
        None,
        "the fifth wrong try deletes it"
    );

    // The right code, now that it is gone, no longer works.
    let (status, body, resp) = post(&app, &form(&mobile, "222222")).await;
    assert_contract(status, &body, &resp, (400, "4002", "sms_code_expired"));
    assert_eq!(st.count_items().await, 0);
}

#[tokio::test]
async fn the_right_code_after_wrong_tries_registers() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "909090", 300).await;
    let (status, body, resp) = post(&app, &form(&mobile, "090909")).await;
    assert_contract(status, &body, &resp, (400, "4002", "sms_code_mismatch"));
    let (status, body, resp) = post(&app, &form(&mobile, "909090")).await;
    assert_contract(status, &body, &resp, (201, "0", "registered"));
    assert!(st.item(&mobile).await.is_some());
    assert_eq!(st.code(&mobile).await, None, "spent once the user exists");
}

#[tokio::test]
async fn a_registered_mobile_is_refused_and_the_first_user_is_kept() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.put_user(&mobile, "first-user").await;
    st.set_code(&mobile, "333333", 300).await;

    let req = event(
        "POST",
        Some(&form(&mobile, "333333")),
        &[("accept-language", "en-US,en;q=0.9")],
    );
    let (status, body, resp) = send(&app, req).await;
    assert_contract(status, &body, &resp, (409, "4003", "mobile_exists"));
    assert_eq!(body["errmsg"], "this mobile number is already registered");
    let item = st.item(&mobile).await.unwrap();
    assert_eq!(s(&item, "user_id"), "first-user");
    assert_eq!(
        s(&item, "password_hash"),
        "$argon2id$v=19$m=19456,t=2,p=1$earlier$user"
    );
    assert_eq!(st.count_items().await, 1);
}

#[tokio::test]
async fn redis_unreachable_is_503_and_nothing_is_written() {
    let mut st = Stores::fresh().await;
    let app = st
        .app_with(Some(&format!("redis://{}", closed_port())), None)
        .await;
    let mobile = random_mobile();
    st.set_code(&mobile, "444444", 300).await;

    let (status, body, resp) = post(&app, &form(&mobile, "444444")).await;
    assert_contract(status, &body, &resp, (503, "4001", "sms_store_unavailable"));
    assert_eq!(body["errmsg"], "读取真实短信验证码异常");
    assert_eq!(
        header(&resp, "retry-after"),
        Some(http::RETRY_AFTER_SECONDS)
    );
    assert_eq!(st.count_items().await, 0);
    assert_eq!(st.code(&mobile).await.as_deref(), Some("444444"));
}

#[tokio::test]
async fn dynamodb_unreachable_is_503_and_the_code_is_given_back_with_its_ttl() {
    let mut st = Stores::fresh().await;
    let app = st
        .app_with(None, Some(&format!("http://{}", closed_port())))
        .await;
    let mobile = random_mobile();
    st.set_code(&mobile, "555555", 300).await;

    let (status, body, resp) = post(&app, &form(&mobile, "555555")).await;
    assert_contract(
        status,
        &body,
        &resp,
        (503, "4001", "user_store_unavailable"),
    );
    assert_eq!(body["errmsg"], "查询数据库异常");
    assert_eq!(
        st.code(&mobile).await.as_deref(),
        Some("555555"),
        "the code is back"
    );
    let pttl = st.pttl(&mobile).await;
    assert!(
        pttl > 0 && pttl <= 300_000,
        "released, keeping what was left of its TTL: {pttl}"
    );
    assert_eq!(st.count_items().await, 0);

    // The user retries with the same code once the store is back.
    let healthy = st.app().await;
    let (status, body, resp) = post(&healthy, &form(&mobile, "555555")).await;
    assert_contract(status, &body, &resp, (201, "0", "registered"));
    assert!(st.item(&mobile).await.is_some());
}

/// The argon2id hash in `item` verifies `typed` as a login must present it: in NFKC.
fn login_verifies(item: &support::Item, typed: &str) -> bool {
    let nfkc = ihome_register::core::domain::nfkc(typed);
    let hash = PasswordHash::new(s(item, "password_hash")).unwrap();
    Argon2::default()
        .verify_password(nfkc.as_bytes(), &hash)
        .is_ok()
}

#[tokio::test]
async fn a_password_typed_full_width_signs_in_typed_half_width_and_back() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    // A Chinese input method left in full-width mode, then the same keys half-width.
    let (full, half) = ("ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　ｂａｔｔｅｒｙ", PASSWORD);
    for (typed_here, typed_at_login) in [(full, half), (half, full)] {
        let mobile = random_mobile();
        st.set_code(&mobile, "868686", 300).await;
        let body = json!({"mobile": mobile, "sms_code": "868686",
                          "password": typed_here, "password2": typed_here});
        let (status, answer, resp) = post(&app, &body.to_string()).await;
        assert_contract(status, &answer, &resp, (201, "0", "registered"));
        let item = st.item(&mobile).await.unwrap();
        assert!(
            login_verifies(&item, typed_at_login),
            "{typed_here} / {typed_at_login}"
        );
        assert!(login_verifies(&item, typed_here));
        let raw = PasswordHash::new(s(&item, "password_hash")).unwrap();
        assert!(
            Argon2::default()
                .verify_password(full.as_bytes(), &raw)
                .is_err(),
            "the hash is of the normalised password, never of the full-width bytes"
        );
        assert_eq!(st.code(&mobile).await, None);
    }
}

#[tokio::test]
async fn password_fields_in_two_widths_are_one_password_and_still_face_the_policy() {
    let mut st = Stores::fresh().await;
    let app = st.app().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "979797", 300).await;
    let full_width_mobile: String = mobile
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    let try_with = |password: &str, password2: &str| {
        json!({"mobile": mobile, "sms_code": "979797", "password": password, "password2": password2})
            .to_string()
    };
    for (body, want) in [
        (
            try_with("ｉｌｏｖｅｙｏｕ", "iloveyou"),
            (400, "4103", "weak_password"),
        ),
        (
            try_with(&full_width_mobile, &mobile),
            (400, "4103", "weak_password"),
        ),
        (
            try_with("\u{fb03}\u{fb03}a", "ffiffia"),
            (400, "4103", "weak_password"),
        ),
    ] {
        let (status, answer, resp) = post(&app, &body).await;
        assert_contract(status, &answer, &resp, want);
    }
    assert_eq!(
        st.code(&mobile).await.as_deref(),
        Some("979797"),
        "nothing consumed"
    );
    // 4 characters typed, 8 after NFKC: long enough, and typed differently in the two fields.
    let (status, answer, resp) = post(&app, &try_with("\u{fb03}\u{fb03}ab", "ffiffiab")).await;
    assert_contract(status, &answer, &resp, (201, "0", "registered"));
    let item = st.item(&mobile).await.unwrap();
    assert!(login_verifies(&item, "ffiffiab"));
    assert!(login_verifies(&item, "\u{fb03}\u{fb03}ab"));
    assert_eq!(st.count_items().await, 1);
}
