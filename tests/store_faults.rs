//! DynamoDB faults injected by a proxy in front of the real server: throttling, a hung
//! endpoint, a reply that comes back too late. Each fault answers 503 in the contract (or is
//! absorbed), writes no partial user and keeps the SMS code usable.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ihome_register::app::App;
use support::faults::{DynamoProxy, Fault};
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
