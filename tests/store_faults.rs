//! Store faults injected by proxies in front of the real servers: DynamoDB throttling, a hung
//! endpoint, a reply that comes back too late; Redis replies or commands delayed past the
//! timeout. Each fault answers 503 in the contract (or is absorbed), writes no partial user and
//! keeps the SMS code usable.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ihome_register::app::App;
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

#[tokio::test]
async fn replies_late_on_every_attempt_are_503_with_a_whole_user_and_the_code_released() {
    // The first attempt stores the user, and no reply arrives in time: the function cannot know
    // and answers 503. Nothing is half written, and the code is released; a retry then learns
    // the mobile is registered (the user signs in with the password just chosen).
    let late = Fault::LateReply(Duration::from_millis(1500));
    let (mut st, proxy, app, mobile) = setup(vec![], late).await;
    assert_eq!(
        register(&app, &mobile, "808080").await,
        (503, "user_store_unavailable".into())
    );
    assert_eq!(proxy.requests(), 3);
    let item = st.item(&mobile).await.expect("the first attempt landed");
    for field in ["mobile", "user_id", "name", "password_hash", "created_at"] {
        assert!(!s(&item, field).is_empty(), "{field}");
    }
    assert_eq!(st.count_items().await, 1);
    assert_eq!(st.code(&mobile).await.as_deref(), Some("808080"));

    let healthy = st.app().await;
    assert_eq!(
        register(&healthy, &mobile, "808080").await,
        (409, "mobile_exists".into())
    );
    assert_eq!(
        s(&st.item(&mobile).await.unwrap(), "user_id"),
        s(&item, "user_id")
    );
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
