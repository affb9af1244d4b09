//! The Redis adapter on a real Redis: atomic take with TTL, give-back rules.

mod support;

use std::time::Duration;

use ihome_register::domain::Mobile;
use ihome_register::sms_codes::{RedisSmsCodes, Restored, SmsCodeStore, TakenCode};
use redis::AsyncCommands;
use secrecy::SecretString;
use support::{Stores, random_mobile};

async fn store(st: &Stores) -> (RedisSmsCodes, Mobile) {
    let codes = RedisSmsCodes::new(
        &SecretString::from(st.redis_url.clone()),
        Duration::from_secs(1),
    )
    .unwrap();
    (codes, Mobile::parse(&random_mobile()).unwrap())
}

#[tokio::test]
async fn take_returns_the_code_and_its_ttl_and_deletes_it() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st).await;
    assert!(codes.take(&mobile).await.unwrap().is_none());

    st.set_code(mobile.as_str(), "123456", 120).await;
    let taken = codes.take(&mobile).await.unwrap().unwrap();
    assert_eq!(taken.value(), b"123456");
    let left = taken.remaining().unwrap();
    assert!(
        left > Duration::from_secs(100) && left <= Duration::from_secs(120),
        "{left:?}"
    );
    assert_eq!(st.code(mobile.as_str()).await, None);
    assert!(
        codes.take(&mobile).await.unwrap().is_none(),
        "a code is taken once"
    );
}

#[tokio::test]
async fn restore_puts_the_code_back_with_the_ttl_it_had_left() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st).await;
    st.set_code(mobile.as_str(), "654321", 60).await;
    let taken = codes.take(&mobile).await.unwrap().unwrap();
    assert_eq!(
        codes.restore(&mobile, &taken).await.unwrap(),
        Restored::Restored
    );
    assert_eq!(st.code(mobile.as_str()).await.as_deref(), Some("654321"));
    let pttl = st.pttl(mobile.as_str()).await;
    assert!(pttl > 0 && pttl <= 60_000, "{pttl}");
}

#[tokio::test]
async fn restore_never_overwrites_a_newer_code() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st).await;
    st.set_code(mobile.as_str(), "111111", 60).await;
    let taken = codes.take(&mobile).await.unwrap().unwrap();
    st.set_code(mobile.as_str(), "222222", 300).await;
    assert_eq!(
        codes.restore(&mobile, &taken).await.unwrap(),
        Restored::NewerCodeKept
    );
    assert_eq!(st.code(mobile.as_str()).await.as_deref(), Some("222222"));
    assert!(
        st.pttl(mobile.as_str()).await > 60_000,
        "the newer code keeps its own TTL"
    );
}

#[tokio::test]
async fn a_code_without_ttl_is_restored_without_one_and_an_expired_one_is_not() {
    let mut st = Stores::fresh().await;
    let (codes, mobile) = store(&st).await;
    let _: () = st
        .redis
        .set(support::key(mobile.as_str()), "777777")
        .await
        .unwrap();
    let taken = codes.take(&mobile).await.unwrap().unwrap();
    assert_eq!(taken.remaining(), None);
    assert_eq!(
        codes.restore(&mobile, &taken).await.unwrap(),
        Restored::Restored
    );
    assert_eq!(st.pttl(mobile.as_str()).await, -1);

    let spent = TakenCode::new(b"888888".to_vec(), Some(Duration::ZERO));
    st.del_code(mobile.as_str()).await;
    assert_eq!(
        codes.restore(&mobile, &spent).await.unwrap(),
        Restored::Expired
    );
    assert_eq!(st.code(mobile.as_str()).await, None);
}
