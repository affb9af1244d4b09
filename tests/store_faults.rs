//! Store faults injected by proxies in front of the real servers: DynamoDB throttling, a hung
//! endpoint, a reply that comes back too late; Redis replies or commands delayed past the
//! timeout. Each fault answers 503 in the contract (or is absorbed), writes no partial user and
//! keeps the SMS code usable. A write whose outcome the function never learnt is finished by
//! the retry with the same code, under the same user id; nothing else is ever replaced.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ihome_register::edge::app::App;
use support::faults::{DynamoProxy, Fault, Lag, RedisProxy};
use support::{Stores, random_mobile, register, require_env, s};

async fn setup(plan: Vec<Fault>, then: Fault) -> (Stores, DynamoProxy, Arc<App>, String) {
    let mut st = Stores::fresh().await;
    let proxy = DynamoProxy::start(&require_env("AWS_ENDPOINT_URL_DYNAMODB"), plan, then).await;
    let app = st.app_with(None, Some(&proxy.url)).await;
    let mobile = random_mobile();
    st.set_code(&mobile, "808080", 300).await;
    (st, proxy, app, mobile)
}

#[tokio::test]
async fn short_throttling_is_absorbed_by_the_sdk_retries() {
    let plan = vec![Fault::Throttle, Fault::ThroughputExceeded];
    let (mut st, proxy, app, mobile) = setup(plan, Fault::Pass).await;
    assert_eq!(
        register(&app, &mobile, "808080").await,
        (201, "registered".into())
    );
    assert_eq!(
        proxy.requests(),
        3,
        "two throttled attempts, then the one that landed"
    );
    assert!(st.item(&mobile).await.is_some());
    assert_eq!(st.code(&mobile).await, None);
}

#[tokio::test]
async fn throttling_past_the_retries_is_503_and_the_code_survives() {
    let (mut st, proxy, app, mobile) = setup(vec![], Fault::Throttle).await;
    assert_eq!(
        register(&app, &mobile, "808080").await,
        (503, "user_store_unavailable".into())
    );
    assert_eq!(proxy.requests(), 3, "the SDK gave up after three attempts");
    assert!(st.item(&mobile).await.is_none());
    assert_eq!(st.code(&mobile).await.as_deref(), Some("808080"));

    // Once DynamoDB takes requests again, the same code registers.
    let healthy = st.app().await;
    assert_eq!(
        register(&healthy, &mobile, "808080").await,
        (201, "registered".into())
    );
}

#[tokio::test]
async fn a_hung_endpoint_is_503_within_the_timeouts_and_the_code_survives() {
    let (mut st, proxy, app, mobile) = setup(vec![], Fault::Hang).await;
    // The function's timeout (template: 10 s) bounds the answer; the test's
    // DYNAMODB_TIMEOUT_MS is 500 ms per attempt.
    let answer = tokio::time::timeout(Duration::from_secs(10), register(&app, &mobile, "808080"))
        .await
        .expect("a 503 inside the function timeout");
    assert_eq!(answer, (503, "user_store_unavailable".into()));
    // Attempts of 500 ms each, cut off by the whole-call timeout: the SDK retried.
    assert!(proxy.requests() >= 2, "{} attempts", proxy.requests());
    assert!(st.item(&mobile).await.is_none());
    assert_eq!(st.code(&mobile).await.as_deref(), Some("808080"));
}

#[tokio::test]
async fn a_write_whose_reply_came_too_late_is_recognised_on_retry() {
    // The first attempt reaches DynamoDB and stores the user, but its reply misses the attempt
    // timeout; the SDK's retry then meets the condition, and the old item shows it was ours.
    let plan = vec![Fault::LateReply(Duration::from_millis(1500))];
    let (mut st, proxy, app, mobile) = setup(plan, Fault::Pass).await;
    assert_eq!(
        register(&app, &mobile, "808080").await,
        (201, "registered".into())
    );
    assert_eq!(proxy.requests(), 2);
    let item = st.item(&mobile).await.unwrap();
    assert_eq!(s(&item, "mobile"), mobile);
    assert_eq!(st.count_items().await, 1);
    assert_eq!(st.code(&mobile).await, None);
}

/// One registration through the handler with `password`: (status, code, the cookie's `sub`).
/// None of its secrets may reach the logs.
async fn register_with(
    st: &Stores,
    app: &Arc<App>,
    mobile: &str,
    code: &str,
    password: &str,
) -> (u16, String, Option<String>) {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::{Value, json};
    support::logs::forbid([mobile, code, password]);
    let body =
        json!({"mobile": mobile, "sms_code": code, "password": password, "password2": password});
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["body"] = json!(body.to_string());
    let req = lambda_http::request::from_str(&e.to_string()).unwrap();
    let resp = ihome_register::edge::http::handle(app.clone(), req).await;
    support::logs::assert_clean();
    let lambda_http::Body::Text(text) = resp.body() else {
        panic!("text body")
    };
    let answer: Value = serde_json::from_str(text).unwrap();
    let sub = resp.headers().get("set-cookie").map(|c| {
        let token = c.to_str().unwrap().split(['=', ';']).nth(1).unwrap();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["ihome"]);
        let key = DecodingKey::from_secret(st.secret.as_bytes());
        jsonwebtoken::decode::<ihome_register::core::session::Claims>(token, &key, &validation)
            .unwrap()
            .claims
            .sub
    });
    let code = answer["code"].as_str().unwrap().to_owned();
    (resp.status().as_u16(), code, sub)
}

/// Whether the stored hash verifies `password`.
fn hash_verifies(item: &support::Item, password: &str) -> bool {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    let hash = PasswordHash::new(s(item, "password_hash")).unwrap();
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

const FIRST: &str = "first choice of password";
const SECOND: &str = "second thought password";

/// DynamoDB stores the user (password `FIRST`) but every attempt's reply is late: 503, a whole
/// user, and the code released remembering that user's id, which it returns.
async fn a_write_of_unknown_outcome(st: &mut Stores, mobile: &str, code: &str) -> String {
    let late = Fault::LateReply(Duration::from_millis(1500));
    let proxy = DynamoProxy::start(&require_env("AWS_ENDPOINT_URL_DYNAMODB"), vec![], late).await;
    let app = st.app_with(None, Some(&proxy.url)).await;
    st.set_code(mobile, code, 300).await;
    assert_eq!(
        register_with(st, &app, mobile, code, FIRST).await,
        (503, "user_store_unavailable".into(), None)
    );
    assert_eq!(proxy.requests(), 3);
    let item = st.item(mobile).await.expect("the first attempt landed");
    for field in ["mobile", "user_id", "name", "password_hash", "created_at"] {
        assert!(!s(&item, field).is_empty(), "{field}");
    }
    assert!(hash_verifies(&item, FIRST));
    assert_eq!(st.count_items().await, 1);
    let user_id = s(&item, "user_id").to_owned();
    let left = st.stored(mobile).await.expect("the code is released");
    assert_eq!(
        (left.digits.as_str(), left.wrong, left.claimed),
        (code, 0, false)
    );
    assert_eq!(
        left.pending.as_deref(),
        Some(
            uuid::Uuid::parse_str(&user_id)
                .unwrap()
                .simple()
                .to_string()
                .as_str()
        ),
        "the code remembers whose write it may have been"
    );
    user_id
}

#[tokio::test]
async fn a_retry_after_a_write_of_unknown_outcome_registers_under_that_id() {
    // The user retries with the same code, and (having forgotten, or retyped) another password:
    // 201 with a session for the user the first write created, whose password is now the one
    // just typed. Never a false 409.
    let mut st = Stores::fresh().await;
    let mobile = random_mobile();
    let first_id = a_write_of_unknown_outcome(&mut st, &mobile, "808080").await;

    let healthy = st.app().await;
    let (status, code, sub) = register_with(&st, &healthy, &mobile, "808080", SECOND).await;
    assert_eq!((status, code.as_str()), (201, "registered"));
    assert_eq!(st.count_items().await, 1);
    let item = st.item(&mobile).await.unwrap();
    assert_eq!(s(&item, "user_id"), first_id);
    assert_eq!(sub.as_deref(), Some(first_id.as_str()), "the cookie's sub");
    assert!(hash_verifies(&item, SECOND), "the retry's password wins");
    assert!(!hash_verifies(&item, FIRST));
    assert_eq!(
        (s(&item, "mobile"), s(&item, "name")),
        (mobile.as_str(), mobile.as_str())
    );
    assert_eq!(st.code(&mobile).await, None, "the code is spent");
}

#[tokio::test]
async fn a_wrong_code_never_learns_or_uses_the_pending_id() {
    let mut st = Stores::fresh().await;
    let mobile = random_mobile();
    let first_id = a_write_of_unknown_outcome(&mut st, &mobile, "818181").await;
    let before = st.item(&mobile).await.unwrap();

    let healthy = st.app().await;
    assert_eq!(
        register_with(&st, &healthy, &mobile, "181818", SECOND).await,
        (400, "sms_code_mismatch".into(), None)
    );
    assert_eq!(
        st.item(&mobile).await.unwrap(),
        before,
        "the user is untouched"
    );
    let left = st.stored(&mobile).await.unwrap();
    assert_eq!((left.wrong, left.claimed), (1, false));
    assert!(left.pending.is_some(), "still there for the right code");

    let (status, _, sub) = register_with(&st, &healthy, &mobile, "818181", SECOND).await;
    assert_eq!((status, sub.as_deref()), (201, Some(first_id.as_str())));
}

#[tokio::test]
async fn a_new_code_from_the_issuer_forgets_the_pending_id_and_the_user_is_told_409() {
    // The user asked for another code instead of retrying: the issuer's plain SET replaces the
    // record, so nothing can replace the user the first write created. The answer is 409; the
    // user signs in with the password of the first attempt (or resets it).
    let mut st = Stores::fresh().await;
    let mobile = random_mobile();
    a_write_of_unknown_outcome(&mut st, &mobile, "828282").await;
    let before = st.item(&mobile).await.unwrap();
    st.set_code(&mobile, "383838", 300).await;
    assert_eq!(st.stored(&mobile).await.unwrap().pending, None);

    let healthy = st.app().await;
    assert_eq!(
        register_with(&st, &healthy, &mobile, "383838", SECOND).await,
        (409, "mobile_exists".into(), None)
    );
    let after = st.item(&mobile).await.unwrap();
    assert_eq!(after, before, "the item is unchanged");
    assert!(hash_verifies(&after, FIRST) && !hash_verifies(&after, SECOND));
    assert_eq!(st.code(&mobile).await, None);
}

#[tokio::test]
async fn a_user_registered_under_another_id_is_never_replaced_by_a_pending_retry() {
    // Every attempt is throttled: nothing is written, but the function cannot tell, so the code
    // remembers its id. Meanwhile another registration stores the mobile under another id; the
    // retry must meet the condition and get 409, that user untouched.
    let mut st = Stores::fresh().await;
    let proxy = DynamoProxy::start(
        &require_env("AWS_ENDPOINT_URL_DYNAMODB"),
        vec![],
        Fault::Throttle,
    )
    .await;
    let app = st.app_with(None, Some(&proxy.url)).await;
    let mobile = random_mobile();
    st.set_code(&mobile, "848484", 300).await;
    assert_eq!(
        register_with(&st, &app, &mobile, "848484", FIRST).await,
        (503, "user_store_unavailable".into(), None)
    );
    assert!(st.item(&mobile).await.is_none());
    assert!(st.stored(&mobile).await.unwrap().pending.is_some());

    st.put_user(&mobile, "earlier-user").await;
    let before = st.item(&mobile).await.unwrap();
    let healthy = st.app().await;
    assert_eq!(
        register_with(&st, &healthy, &mobile, "848484", SECOND).await,
        (409, "mobile_exists".into(), None)
    );
    assert_eq!(st.item(&mobile).await.unwrap(), before);
    assert_eq!(st.count_items().await, 1);
    assert_eq!(
        st.code(&mobile).await,
        None,
        "spent: the mobile has its user"
    );
}

#[tokio::test]
async fn two_retries_in_flight_at_once_have_exactly_one_winner() {
    let mut st = Stores::fresh().await;
    let mobile = random_mobile();
    let first_id = a_write_of_unknown_outcome(&mut st, &mobile, "858585").await;

    let healthy = st.app().await;
    let third = "third password typed";
    let (a, b) = tokio::join!(
        register_with(&st, &healthy, &mobile, "858585", SECOND),
        register_with(&st, &healthy, &mobile, "858585", third),
    );
    let mut answers = [a.clone(), b.clone()].map(|(status, code, _)| (status, code));
    answers.sort();
    assert_eq!(
        answers,
        [(201, "registered".into()), (400, "sms_code_expired".into())],
        "{a:?} {b:?}"
    );
    let (winner, password) = if a.0 == 201 { (a, SECOND) } else { (b, third) };
    assert_eq!(winner.2.as_deref(), Some(first_id.as_str()));
    let item = st.item(&mobile).await.unwrap();
    assert_eq!(s(&item, "user_id"), first_id);
    assert!(hash_verifies(&item, password), "the winner's password");
    assert_eq!(st.count_items().await, 1);
    assert_eq!(st.code(&mobile).await, None);
}

/// The function behind a Redis proxy, with a code for a fresh mobile (stored directly).
async fn behind_redis_proxy() -> (Stores, RedisProxy, Arc<App>, String) {
    let mut st = Stores::fresh().await;
    let upstream = st
        .redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = RedisProxy::start(upstream).await;
    let app = st.app_with(Some(&proxy.url), None).await;
    let mobile = random_mobile();
    st.set_code(&mobile, "606060", 300).await;
    (st, proxy, app, mobile)
}

/// Redis is slow by `lag` (three times the test's 500 ms timeout) for one request: 503, nothing
/// written, and, once it is healthy, the code shows it was released (a wrong try finds it
/// unclaimed) and still registers.
async fn a_slow_redis_loses_nothing(lag: Lag) {
    let (mut st, proxy, app, mobile) = behind_redis_proxy().await;
    assert_eq!(
        register(&app, &mobile, "606060").await,
        (201, "registered".into()),
        "healthy through the proxy"
    );
    let mobile = random_mobile();
    st.set_code(&mobile, "707070", 300).await;

    proxy.lag(lag);
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), register(&app, &mobile, "707070"))
        .await
        .expect("an answer inside the function timeout");
    let took = started.elapsed();
    assert_eq!(answer, (503, "sms_store_unavailable".into()), "{lag:?}");
    eprintln!("{lag:?}: 503 after {took:?} (claim and release, 500 ms each at most)");
    assert!(st.item(&mobile).await.is_none());

    // Healing passes on every held byte; the function's next command on its connection then
    // runs after its late claim and release.
    proxy.heal().await;
    assert_eq!(
        register(&app, &mobile, "070707").await,
        (400, "sms_code_mismatch".into()),
        "the code is there"
    );
    let left = st.stored(&mobile).await.expect("the code was not lost");
    assert_eq!(
        (left.digits.as_str(), left.wrong, left.claimed),
        ("707070", 1, false)
    );
    assert_eq!(
        register(&app, &mobile, "707070").await,
        (201, "registered".into())
    );
    assert!(st.item(&mobile).await.is_some());
    assert_eq!(st.code(&mobile).await, None);
}

#[tokio::test]
async fn redis_replies_delayed_past_the_timeout_are_503_and_the_claim_is_released() {
    a_slow_redis_loses_nothing(Lag::Replies(Duration::from_millis(1500))).await;
}

#[tokio::test]
async fn redis_commands_delayed_past_the_timeout_are_503_and_the_claim_is_released() {
    a_slow_redis_loses_nothing(Lag::Requests(Duration::from_millis(1500))).await;
}
