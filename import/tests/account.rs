//! `ihome-account` end to end: the built binary against the local DynamoDB server and Redis.
//! Disabling writes the item (`disabled`, `session_version` + 1) and then the verifiers' copy in
//! Redis; an unknown mobile exits 1 and writes nothing; enabling removes `disabled` only.

use std::process::Command;

#[path = "../../tests/support/tables.rs"]
mod tables;

use aws_sdk_dynamodb::types::AttributeValue;
use redis::AsyncCommands;

fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set (scripts/test sets it)"))
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn account(table: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ihome-account"))
        .args(args)
        .env("USERS_TABLE", table)
        .env("REDIS_URL", require_env("REDIS_URL"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn disable_ends_every_session_in_both_stores_and_enable_lifts_it() {
    require_env("AWS_ENDPOINT_URL_DYNAMODB");
    let ddb = ihome_import::dynamodb_client(std::time::Duration::from_secs(10), None).await;
    let table = format!("account-test-{:016x}", random_u64());
    tables::create_table(&ddb, &table).await;
    let mobile = format!("139{:08}", random_u64() % 100_000_000);
    let user_id = uuid::Uuid::now_v7().to_string();
    let s = |v: &str| AttributeValue::S(v.to_owned());
    ddb.put_item()
        .table_name(&table)
        .item("mobile", s(&mobile))
        .item("user_id", s(&user_id))
        .item("name", s(&mobile))
        .item("password_hash", s("$argon2id$v=19$m=19456,t=2,p=1$x$y"))
        .item("session_version", AttributeValue::N("4".into()))
        .send()
        .await
        .unwrap();
    let item = || async {
        ddb.get_item()
            .table_name(&table)
            .key("mobile", s(&mobile))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    let mut redis = redis::Client::open(require_env("REDIS_URL"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("session_user:{user_id}");

    // In the typed form a user might give it: the function's own parser reads it.
    let spaced = format!("+86 {}", &mobile);
    let (code, out, err) = account(&table, &["disable", &spaced]);
    assert_eq!(code, 0, "{err}");
    let masked = format!("{}****{}", &mobile[..3], &mobile[7..]);
    assert!(out.contains(&masked) && !out.contains(&mobile), "{out}");
    let got = item().await;
    assert_eq!(got.get("disabled"), Some(&AttributeValue::Bool(true)));
    assert_eq!(got["session_version"].as_n().unwrap(), "5");
    let copy: Option<String> = redis.get(&key).await.unwrap();
    assert_eq!(copy.as_deref(), Some("5"));
    let ttl: i64 = redis.pttl(&key).await.unwrap();
    assert!(ttl > 86_400_000 && ttl <= 86_460_000, "{ttl}");

    let unknown = format!("137{:08}", random_u64() % 100_000_000);
    let (code, _, err) = account(&table, &["disable", &unknown]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains(&unknown));
    let (code, _, _) = account(&table, &["disable", "12345"]);
    assert_eq!(code, 2);

    let (code, out, err) = account(&table, &["enable", &mobile]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("enabled"));
    let got = item().await;
    assert_eq!(got.get("disabled"), None);
    assert_eq!(
        got["session_version"].as_n().unwrap(),
        "5",
        "sessions stay ended"
    );
}
