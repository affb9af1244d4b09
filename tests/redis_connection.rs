//! The Redis connection: TLS (`rediss://`, as ElastiCache uses) with certificates verified, and
//! it outlives its failures: built lazily, remade after it drops, and a Redis that is down at
//! cold start costs 503 answers, not the instance. Each test runs its own
//! redis-server so killing connections cannot disturb other tests. A cache with AUTH takes its
//! token in `REDIS_URL` (`rediss://:<token>@host:port`), plain and over TLS, and the token never
//! reaches a log line or an answer.

mod support;

use std::time::Duration;

use ihome_register::edge::app;
use ihome_register::stores::redis::Redis;
use redis::AsyncCommands;
use support::{RedisServer, Stores, free_port, random_mobile, register};

#[tokio::test]
async fn a_connection_killed_while_idle_is_remade_without_failing_the_next_request() {
    let st = Stores::fresh().await;
    let redis = RedisServer::start_on(free_port()).await;
    let app = st.app_with(Some(&redis.url()), None).await;
    let mut admin = redis.connection().await;

    let first = random_mobile();
    let _: () = admin
        .set_ex(support::key(&first), "121212", 300)
        .await
        .unwrap();
    assert_eq!(
        register(&app, &first, "121212").await,
        (201, "registered".into())
    );

    // Kill every client connection but ours: the function's connection is gone while idle.
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1, "the function held one connection");

    let second = random_mobile();
    let _: () = admin
        .set_ex(support::key(&second), "343434", 300)
        .await
        .unwrap();
    assert_eq!(
        register(&app, &second, "343434").await,
        (201, "registered".into())
    );
    assert!(st.item(&second).await.is_some());
    let left: Option<String> = admin.get(support::key(&second)).await.unwrap();
    assert_eq!(left, None);
}

#[tokio::test]
async fn redis_down_at_cold_start_gives_503_then_recovers_without_a_restart() {
    let st = Stores::fresh().await;
    let port = free_port();
    let app = st
        .app_with(Some(&format!("redis://127.0.0.1:{port}")), None)
        .await;
    let mobile = random_mobile();

    assert_eq!(
        register(&app, &mobile, "565656").await,
        (503, "sms_store_unavailable".into())
    );
    assert_eq!(st.count_items().await, 0);

    let redis = RedisServer::start_on(port).await;
    let mut admin = redis.connection().await;
    let _: () = admin
        .set_ex(support::key(&mobile), "565656", 300)
        .await
        .unwrap();
    assert_eq!(
        register(&app, &mobile, "565656").await,
        (201, "registered".into())
    );
    assert!(st.item(&mobile).await.is_some());
}

#[tokio::test]
async fn rediss_speaks_tls_and_refuses_an_untrusted_certificate() {
    let st = Stores::fresh().await;
    let dir = std::env::temp_dir().join(format!("redis-tls-{:016x}", support::random_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _redis = RedisServer::start_tls(port, &dir).await;
    let mobile = random_mobile();

    // The self-signed certificate is not trusted: no connection, a 503, nothing consumed.
    let verified = st
        .app_with(Some(&format!("rediss://127.0.0.1:{port}")), None)
        .await;
    assert_eq!(
        register(&verified, &mobile, "787878").await,
        (503, "sms_store_unavailable".into())
    );

    // Trusting that CA, the same TLS stack registers end to end.
    let tls = || {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(dir.join("ca.pem")).unwrap()),
        };
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}"), certs).unwrap()
    };
    let mut admin = tls().get_multiplexed_async_connection().await.unwrap();
    let _: () = admin
        .set_ex(support::key(&mobile), "787878", 300)
        .await
        .unwrap();
    let redis = Redis::with_client(tls(), Duration::from_secs(1)).unwrap();
    let app = st.app_with_redis(redis, None).await;
    assert_eq!(
        register(&app, &mobile, "787878").await,
        (201, "registered".into())
    );
    let left: Option<String> = admin.get(support::key(&mobile)).await.unwrap();
    assert_eq!(left, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn redis_killed_and_restarted_mid_run_costs_503s_then_recovers() {
    let st = Stores::fresh().await;
    let port = free_port();
    let redis = RedisServer::start_on(port).await;
    let app = st.app_with(Some(&redis.url()), None).await;
    let mut admin = redis.connection().await;
    let first = random_mobile();
    let _: () = admin
        .set_ex(support::key(&first), "919191", 300)
        .await
        .unwrap();
    assert_eq!(
        register(&app, &first, "919191").await,
        (201, "registered".into())
    );

    drop(redis); // killed
    let second = random_mobile();
    assert_eq!(
        register(&app, &second, "929292").await,
        (503, "sms_store_unavailable".into())
    );

    let redis = RedisServer::start_on(port).await; // back, empty, as after a failover
    let mut admin = redis.connection().await;
    let _: () = admin
        .set_ex(support::key(&second), "929292", 300)
        .await
        .unwrap();
    assert_eq!(
        register(&app, &second, "929292").await,
        (201, "registered".into())
    );
    assert_eq!(st.count_items().await, 2);
}

/// An AUTH token that needs percent-encoding in a URL, that encoding, and the URL's user part.
fn token() -> (String, String) {
    let token = format!("{}/+{}", support::random_secret(), support::random_secret());
    let encoded = token.replace('/', "%2F").replace('+', "%2B");
    support::logs::forbid([&token, &encoded]);
    (token, encoded)
}

/// Registers `mobile` with `code` through `app`, the code stored by `admin`; returns the answer
/// and what is left of the code.
async fn register_via(
    app: &std::sync::Arc<app::App>,
    admin: &mut redis::aio::MultiplexedConnection,
    mobile: &str,
    code: &str,
) -> ((u16, String), Option<String>) {
    let _: () = admin.set_ex(support::key(mobile), code, 300).await.unwrap();
    let answer = register(app, mobile, code).await;
    let left: Option<String> = admin.get(support::key(mobile)).await.unwrap();
    (answer, left)
}

#[tokio::test]
async fn a_token_in_redis_url_authenticates_and_never_reaches_a_log() {
    let st = Stores::fresh().await;
    let (token, encoded) = token();
    let wrong = support::random_secret();
    support::logs::forbid([&wrong]);
    let port = free_port();
    let port_arg = port.to_string();
    let _redis =
        RedisServer::start_with(port, &["--port", &port_arg, "--requirepass", &token]).await;
    let url = |user: &str| format!("redis://{user}127.0.0.1:{port}");
    let mut admin = redis::Client::open(url(&format!(":{encoded}@")))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the percent-encoded token authenticates");

    // No token, or a wrong one: 503, the code neither claimed nor counted, nothing written.
    for bad in [url(""), url(&format!(":{wrong}@"))] {
        let app = st.app_with(Some(&bad), None).await;
        let mobile = random_mobile();
        let (answer, left) = register_via(&app, &mut admin, &mobile, "121212").await;
        assert_eq!(answer, (503, "sms_store_unavailable".into()));
        assert_eq!(left.as_deref(), Some("121212"));
        assert!(st.item(&mobile).await.is_none());
    }

    // The token in the URL: the whole registration.
    let app = st.app_with(Some(&url(&format!(":{encoded}@"))), None).await;
    let mobile = random_mobile();
    let (answer, left) = register_via(&app, &mut admin, &mobile, "343434").await;
    assert_eq!(answer, (201, "registered".into()));
    assert_eq!(left, None, "the code is spent");
    assert!(st.item(&mobile).await.is_some(), "the user is stored");
    support::logs::assert_clean();
}

#[tokio::test]
async fn a_token_in_a_rediss_url_authenticates_over_tls() {
    let st = Stores::fresh().await;
    let (token, encoded) = token();
    let dir = std::env::temp_dir().join(format!("redis-tls-{:016x}", support::random_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let _redis = RedisServer::start_tls_with(port, &dir, &["--requirepass", &token]).await;
    let tls = |user: &str| {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(dir.join("ca.pem")).unwrap()),
        };
        redis::Client::build_with_tls(format!("rediss://{user}127.0.0.1:{port}"), certs).unwrap()
    };
    let with_token = format!(":{encoded}@");
    let mut admin = tls(&with_token)
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let redis = Redis::with_client(tls(""), Duration::from_secs(1)).unwrap();
    let anonymous = st.app_with_redis(redis, None).await;
    let mobile = random_mobile();
    let (answer, left) = register_via(&anonymous, &mut admin, &mobile, "565656").await;
    assert_eq!(answer, (503, "sms_store_unavailable".into()));
    assert_eq!(left.as_deref(), Some("565656"));

    let redis = Redis::with_client(tls(&with_token), Duration::from_secs(1)).unwrap();
    let app = st.app_with_redis(redis, None).await;
    let (answer, left) = register_via(&app, &mut admin, &mobile, "565656").await;
    assert_eq!(answer, (201, "registered".into()));
    assert_eq!(left, None);
    assert!(st.item(&mobile).await.is_some());
    support::logs::assert_clean();
    std::fs::remove_dir_all(&dir).unwrap();
}
