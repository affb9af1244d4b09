//! Races as Lambda runs them: many function processes (each serving one request at a time),
//! all at once, against the same Redis and DynamoDB. Each test checks the answers and the
//! stored state.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use support::runtime_api::{Function, Reply, RuntimeApi};
use support::{PASSWORD, Stores, random_mobile, s};

const PROCESSES: usize = 8;

struct Fleet {
    apis: Vec<Arc<RuntimeApi>>,
    functions: Vec<Function>,
}

async fn fleet(st: &Stores) -> Fleet {
    let (mut apis, mut functions) = (Vec::new(), Vec::new());
    for _ in 0..PROCESSES {
        let api = RuntimeApi::start().await;
        let env = [
            ("USERS_TABLE", st.table.clone()),
            ("REDIS_URL", st.redis_url.clone()),
            ("JWT_SECRET", st.secret.clone()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                support::require_env("AWS_ENDPOINT_URL_DYNAMODB"),
            ),
        ];
        functions.push(Function::spawn(
            env!("CARGO_BIN_EXE_ihome-register"),
            &api,
            &env,
        ));
        apis.push(Arc::new(api));
    }
    Fleet { apis, functions }
}

impl Fleet {
    /// Stops every process and fails on any code, mobile, password, token, hash or secret in
    /// all they logged.
    async fn assert_logs_clean(self, st: &Stores, secrets: &[&str]) {
        let mut logs = String::new();
        for function in self.functions {
            logs.push_str(&function.stop().await);
        }
        assert!(logs.lines().count() >= PROCESSES, "every process logged");
        let always = [PASSWORD, "eyJ", "$argon2", st.secret.as_str()];
        for secret in secrets.iter().chain(&always) {
            assert!(!logs.contains(secret), "the logs contain {secret:?}");
        }
    }
}

fn event(mobile: &str, code: &str) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["body"] = json!(
        json!({"mobile": mobile, "sms_code": code,
               "password": PASSWORD, "password2": PASSWORD})
        .to_string()
    );
    e.to_string().into_bytes()
}

/// Sends every event at once, spread over the fleet; returns each answer's (status, code).
async fn race(fleet: &Fleet, events: Vec<Vec<u8>>) -> Vec<(u64, String)> {
    let tasks: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let api = fleet.apis[i % PROCESSES].clone();
            tokio::spawn(async move { answer(&api, &event).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

async fn answer(api: &RuntimeApi, event: &[u8]) -> (u64, String) {
    match api.invoke(event).await {
        Reply::Response(v) => {
            let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
            (
                v["statusCode"].as_u64().unwrap(),
                body["code"].as_str().unwrap().to_owned(),
            )
        }
        Reply::Error(e) => panic!("invocation failed: {e}"),
    }
}

fn count(answers: &[(u64, String)], code: &str) -> usize {
    answers.iter().filter(|(_, c)| c == code).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_requests_with_one_code_over_eight_processes_register_one_user() {
    let mut st = Stores::fresh().await;
    let fleet = fleet(&st).await;
    let mobile = random_mobile();
    st.set_code(&mobile, "192837", 300).await;

    let answers = race(&fleet, vec![event(&mobile, "192837"); 50]).await;
    assert_eq!(count(&answers, "registered"), 1, "{answers:?}");
    assert_eq!(count(&answers, "sms_code_expired"), 49, "{answers:?}");
    assert_eq!(st.count_items().await, 1);
    assert!(st.item(&mobile).await.is_some());
    assert_eq!(st.code(&mobile).await, None);
    fleet
        .assert_logs_clean(&st, &["192837", mobile.as_str()])
        .await;
}

/// Requests per code in the two-codes race: fewer than the 5 wrong tries a code takes, so the
/// requests still carrying the first code cannot use the second one up.
const PER_CODE: usize = 4;

/// One mobile's part of the two-codes race: requests with the first code in flight, the second
/// code issued (at once, or `after_first_answer`), then requests with the second code.
async fn two_codes(
    fleet: Arc<Fleet>,
    mut redis: redis::aio::MultiplexedConnection,
    mobile: String,
    after_first_answer: bool,
) -> Vec<(u64, String)> {
    let mut flying = tokio::task::JoinSet::new();
    for i in 0..PER_CODE {
        let (api, event) = (fleet.apis[i % PROCESSES].clone(), event(&mobile, "111222"));
        flying.spawn(async move { answer(&api, &event).await });
    }
    let mut answers = Vec::new();
    if after_first_answer {
        answers.push(flying.join_next().await.unwrap().unwrap());
    }
    let _: () = redis::cmd("SET")
        .arg(support::key(&mobile))
        .arg("333444")
        .arg("EX")
        .arg(300)
        .query_async(&mut redis)
        .await
        .unwrap();
    for i in 0..PER_CODE {
        let (api, event) = (
            fleet.apis[(i + 4) % PROCESSES].clone(),
            event(&mobile, "333444"),
        );
        flying.spawn(async move { answer(&api, &event).await });
    }
    answers.extend(flying.join_all().await);
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_codes_issued_one_after_the_other_mid_race_give_exactly_one_user() {
    let mut st = Stores::fresh().await;
    let fleet = Arc::new(fleet(&st).await);
    let mobiles: Vec<String> = (0..16).map(|_| random_mobile()).collect();
    for m in &mobiles {
        st.set_code(m, "111222", 300).await;
    }
    // Half the mobiles get their second code at once (the first code's requests mostly arrive
    // after it), half once a first answer is back (a request may hold the first code).
    let rounds: Vec<_> = mobiles
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let round = two_codes(fleet.clone(), st.redis.clone(), m.clone(), i % 2 == 1);
            tokio::spawn(round)
        })
        .collect();
    let mut answers = Vec::new();
    for round in rounds {
        answers.extend(round.await.unwrap());
    }

    for (status, code) in &answers {
        assert!(
            matches!(
                code.as_str(),
                "registered" | "sms_code_expired" | "sms_code_mismatch" | "mobile_exists"
            ),
            "{status} {code}"
        );
    }
    eprintln!(
        "two codes, {} requests: {} registered, {} mobile_exists, {} sms_code_mismatch, {} sms_code_expired",
        answers.len(),
        count(&answers, "registered"),
        count(&answers, "mobile_exists"),
        count(&answers, "sms_code_mismatch"),
        count(&answers, "sms_code_expired"),
    );
    assert_eq!(count(&answers, "registered"), mobiles.len(), "{answers:?}");
    assert_eq!(st.count_items().await, mobiles.len());
    for m in &mobiles {
        assert!(st.item(m).await.is_some(), "exactly one user each");
        assert_eq!(
            st.code(m).await,
            None,
            "the second code is spent, not left claimed"
        );
    }
    let fleet = Arc::try_unwrap(fleet).unwrap_or_else(|_| panic!("every round is over"));
    let mut secrets = vec!["111222", "333444"];
    secrets.extend(mobiles.iter().map(String::as_str));
    fleet.assert_logs_clean(&st, &secrets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_distinct_registrations_in_parallel_all_land() {
    let mut st = Stores::fresh().await;
    let fleet = fleet(&st).await;
    let mut mobiles = HashSet::new();
    while mobiles.len() < 200 {
        mobiles.insert(random_mobile());
    }
    let mut events = Vec::new();
    for m in &mobiles {
        st.set_code(m, "564738", 300).await;
        events.push(event(m, "564738"));
    }
    let answers = race(&fleet, events).await;
    assert_eq!(count(&answers, "registered"), 200, "{answers:?}");
    assert_eq!(st.count_items().await, 200);
    let mut ids = HashSet::new();
    for m in &mobiles {
        let item = st.item(m).await.expect("every user is stored");
        ids.insert(s(&item, "user_id").to_owned());
        assert_eq!(st.code(m).await, None);
    }
    assert_eq!(ids.len(), 200, "each user has its own user_id");
    let mut secrets = vec!["564738"];
    secrets.extend(mobiles.iter().map(String::as_str));
    fleet.assert_logs_clean(&st, &secrets).await;
}
