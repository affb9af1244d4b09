//! Races as Lambda runs them: many function processes (each serving one request at a time),
//! all at once, against the same Redis and DynamoDB. Each test checks the answers and the
//! stored state: registrations with one SMS code, and login guesses against the throttles
//! (whose proof of "no more verified than the limit" is the processes' own metrics lines).

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ihome_register::core::session::Claims;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use support::runtime_api::{Function, Reply, RuntimeApi};
use support::{PASSWORD, Stores, random_mobile, s};

const PROCESSES: usize = 8;

struct Fleet {
    apis: Vec<Arc<RuntimeApi>>,
    functions: Vec<Function>,
}

async fn fleet(st: &Stores) -> Fleet {
    fleet_with(st, &st.redis_url, &[]).await
}

/// The fleet on `redis_url`, with `extra` variables (e.g. `STATUS_CODES`), every process
/// waiting for its first invocation.
async fn fleet_with(st: &Stores, redis_url: &str, extra: &[(&str, &str)]) -> Fleet {
    let (mut apis, mut functions) = (Vec::new(), Vec::new());
    for _ in 0..PROCESSES {
        let api = RuntimeApi::start().await;
        let mut env = vec![
            ("USERS_TABLE", st.table.clone()),
            ("REDIS_URL", redis_url.to_owned()),
            ("JWT_SECRET", st.secret.clone()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                support::require_env("AWS_ENDPOINT_URL_DYNAMODB"),
            ),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        functions.push(Function::spawn(
            env!("CARGO_BIN_EXE_ihome-register"),
            &api,
            &env,
        ));
        apis.push(Arc::new(api));
    }
    // A race is only a race if every process is there for its start: wait until each has asked
    // for an invocation (its init done).
    let deadline = Instant::now() + Duration::from_secs(60);
    while apis.iter().any(|api| api.first_poll().is_none()) {
        assert!(Instant::now() < deadline, "a function process never polled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Fleet { apis, functions }
}

impl Fleet {
    /// Stops every process and fails on any code, mobile, password, token, hash or secret in
    /// all they logged; returns what they logged.
    async fn assert_logs_clean(self, st: &Stores, secrets: &[&str]) -> String {
        let mut logs = String::new();
        for function in self.functions {
            logs.push_str(&function.stop().await);
        }
        assert!(logs.lines().count() >= PROCESSES, "every process logged");
        let always = [PASSWORD, "eyJ", "$argon2", st.secret.as_str()];
        for secret in secrets.iter().chain(&always) {
            assert!(!logs.contains(secret), "the logs contain {secret:?}");
        }
        logs
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
    let answers = fire(fleet, events).await;
    answers.into_iter().map(|a| (a.status, a.code)).collect()
}

/// One answer of a race: status, code, the session cookie if any, and when the function held
/// the invocation (from the event handed over to the answer, as the test saw it).
struct Answer {
    status: u64,
    code: String,
    cookie: Option<String>,
    held: (Instant, Instant),
}

/// Status and code, and whether a cookie came: never the token itself.
impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cookie = self.cookie.as_ref().map_or("", |_| " +cookie");
        write!(f, "{} {}{cookie}", self.status, self.code)
    }
}

/// Puts every event in the fleet's queues (event `i` to process `i % PROCESSES`) in one loop
/// without an await, so the whole race is queued before any answer is read; then collects the
/// answers, in the events' order.
async fn fire(fleet: &Fleet, events: Vec<Vec<u8>>) -> Vec<Answer> {
    let receivers: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, event)| fleet.apis[i % PROCESSES].enqueue(event))
        .collect();
    let waiting: Vec<_> = receivers
        .into_iter()
        .map(|answer| {
            tokio::spawn(async move {
                let (reply, took) = answer.await.expect("the function answered");
                let now = Instant::now();
                (reply, (now - took, now))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in waiting {
        let (reply, held) = task.await.unwrap();
        let Reply::Response(v) = reply else {
            panic!("invocation failed: {reply:?}")
        };
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        let cookie = v["cookies"].as_array().and_then(|c| c.first()).cloned();
        answers.push(Answer {
            status: v["statusCode"].as_u64().unwrap(),
            code: body["code"].as_str().unwrap().to_owned(),
            cookie: cookie.map(|c| c.as_str().unwrap().to_owned()),
            held,
        });
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

// Logins: guesses at one account all at once. The throttle counts an attempt before verifying
// it, in one atomic script, so however many processes race no more than a limit's worth are
// verified. Each test reads that from the processes' own metrics lines (one per invocation;
// only an invocation that verified a password carries `HashTime`), apart from the answers.

/// A login from `ip`, as API Gateway (HTTP API) hands it over.
fn login_event(mobile: &str, password: &str, ip: &str) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["rawPath"] = json!("/api/v1.0/sessions");
    e["routeKey"] = json!("POST /api/v1.0/sessions");
    e["requestContext"]["routeKey"] = json!("POST /api/v1.0/sessions");
    e["requestContext"]["http"]["path"] = json!("/api/v1.0/sessions");
    e["requestContext"]["http"]["sourceIp"] = json!(ip);
    e["body"] = json!(json!({"mobile": mobile, "password": password}).to_string());
    e.to_string().into_bytes()
}

/// Registers `mobile` (with [`PASSWORD`]) through the fleet; returns its stored user_id.
async fn register_one(st: &mut Stores, fleet: &Fleet, mobile: &str) -> String {
    st.set_code(mobile, "918273", 300).await;
    assert_eq!(
        answer(&fleet.apis[0], &event(mobile, "918273")).await.1,
        "registered"
    );
    s(&st.item(mobile).await.unwrap(), "user_id").to_owned()
}

/// A fresh address per call, so tests sharing Redis never share a source's count.
fn fresh_ip() -> String {
    let n = support::random_u64();
    format!(
        "100.{}.{}.{}",
        64 + n % 64,
        (n >> 8) % 256,
        (n >> 16) % 254 + 1
    )
}

/// The three failure counts of `mobile` from `ip` (mobile + ip, ip, mobile), and the seconds
/// left on the first.
async fn counts(st: &mut Stores, mobile: &str, ip: &str) -> ([i64; 3], i64) {
    use redis::AsyncCommands;
    let ttl: i64 = st
        .redis
        .ttl(&support::login_keys(mobile, ip)[0])
        .await
        .unwrap();
    (st.login_counts(mobile, ip).await, ttl)
}

/// The metrics lines among everything the processes printed, by outcome: (all lines of that
/// outcome, those of them that verified a password).
struct Lines(Vec<Value>);

impl Lines {
    fn of(logs: &str) -> Self {
        let lines = logs
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect();
        Self(lines)
    }

    fn count(&self, outcome: &str) -> usize {
        self.0.iter().filter(|l| l["Outcome"] == outcome).count()
    }

    /// Invocations that verified a password (the registration's hash aside).
    fn verified(&self) -> usize {
        let hashed = |l: &&Value| l["HashTime"].is_number() && l["Outcome"] != "registered";
        self.0.iter().filter(hashed).count()
    }
}

/// The most invocations the fleet held at once, from the answers' holding intervals.
fn most_at_once(answers: &[Answer]) -> usize {
    answers
        .iter()
        .map(|a| {
            let start = a.held.0;
            answers
                .iter()
                .filter(|b| b.held.0 <= start && start < b.held.1)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn codes(answers: &[Answer], code: &str) -> usize {
    answers.iter().filter(|a| a.code == code).count()
}

fn claims(st: &Stores, set_cookie: &str) -> Claims {
    let token = set_cookie
        .strip_prefix("__Host-session=")
        .and_then(|rest| rest.split(';').next())
        .expect("a __Host-session cookie");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["ihome"]);
    let key = DecodingKey::from_secret(st.secret.as_bytes());
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .unwrap()
        .claims
}

const WRONG: &str = "wrong guess 0042";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_wrong_guesses_from_one_address_over_eight_processes_verify_five() {
    let mut st = Stores::fresh().await;
    let fleet = fleet_with(&st, &st.redis_url, &[("STATUS_CODES", "http")]).await;
    let mobile = random_mobile();
    let ip = fresh_ip();
    register_one(&mut st, &fleet, &mobile).await;

    let answers = fire(&fleet, vec![login_event(&mobile, WRONG, &ip); 50]).await;
    let at_once = most_at_once(&answers);
    eprintln!("one address: {at_once} invocations held at once");
    assert!(
        at_once > 5,
        "more guesses in flight together than the limit"
    );
    assert_eq!(codes(&answers, "bad_credentials"), 5, "{answers:?}");
    assert_eq!(codes(&answers, "too_many_attempts"), 45, "{answers:?}");
    for a in &answers {
        let status = if a.code == "bad_credentials" {
            401
        } else {
            429
        };
        assert_eq!(a.status, status, "{a:?}");
        assert!(a.cookie.is_none());
    }
    // Exactly the verified ones are counted, and reaching the limit locks out for its window.
    let (stored, ttl) = counts(&mut st, &mobile, &ip).await;
    assert_eq!(stored, [5, 5, 5]);
    assert!((590..=600).contains(&ttl), "{ttl}");

    let logs = fleet
        .assert_logs_clean(&st, &[WRONG, mobile.as_str(), ip.as_str()])
        .await;
    let lines = Lines::of(&logs);
    assert_eq!(lines.0.len(), 51, "one metrics line per invocation");
    assert_eq!(
        lines.verified(),
        5,
        "five passwords verified, whatever the answers said"
    );
    assert_eq!(lines.count("too_many_attempts"), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_guesses_from_fifty_addresses_verify_the_per_mobile_twenty() {
    let mut st = Stores::fresh().await;
    let fleet = fleet_with(&st, &st.redis_url, &[("STATUS_CODES", "http")]).await;
    let mobile = random_mobile();
    register_one(&mut st, &fleet, &mobile).await;
    let mut ips = HashSet::new();
    while ips.len() < 50 {
        ips.insert(fresh_ip());
    }
    let ips: Vec<String> = ips.into_iter().collect();

    let events = ips.iter().map(|ip| login_event(&mobile, WRONG, ip));
    let answers = fire(&fleet, events.collect()).await;
    eprintln!(
        "fifty addresses: {} invocations held at once",
        most_at_once(&answers)
    );
    assert_eq!(codes(&answers, "bad_credentials"), 20, "{answers:?}");
    assert_eq!(codes(&answers, "too_many_attempts"), 30, "{answers:?}");
    // Each address's counts say whether its one guess was verified; together they are the 20.
    for (ip, a) in ips.iter().zip(&answers) {
        let (stored, _) = counts(&mut st, &mobile, ip).await;
        let n = i64::from(a.code == "bad_credentials");
        assert_eq!(stored, [n, n, 20], "{ip}: {a:?}");
    }

    let mut secrets = vec![WRONG, mobile.as_str()];
    secrets.extend(ips.iter().map(String::as_str));
    let lines = Lines::of(&fleet.assert_logs_clean(&st, &secrets).await);
    assert_eq!(lines.0.len(), 51, "one metrics line per invocation");
    assert_eq!(
        lines.verified(),
        20,
        "the per-mobile limit, across addresses"
    );
}

/// The owner's right password among 49 wrong guesses from the owner's address, for two mobiles
/// raced together from two addresses. Event `i` goes to process `i % 8` and the two mobiles'
/// events alternate, so the early mobile's run on processes 0, 2, 4 and 6, its owner's at the
/// head of process 0's queue (a place is most likely free); the late mobile's run on 1, 3, 5
/// and 7, its owner's last in process 3's queue, after twelve of its guesses that process alone
/// has counted (the limit is reached whatever the others did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_among_wrong_ones_gets_in_only_while_a_place_is_free() {
    let mut st = Stores::fresh().await;
    let fleet = fleet_with(&st, &st.redis_url, &[("STATUS_CODES", "http")]).await;
    let (early, late) = (random_mobile(), random_mobile());
    let (early_ip, late_ip) = (fresh_ip(), fresh_ip());
    let early_id = register_one(&mut st, &fleet, &early).await;
    register_one(&mut st, &fleet, &late).await;

    let mut events = Vec::new();
    for i in 0..50 {
        let early_pw = if i == 0 { PASSWORD } else { WRONG };
        let late_pw = if i == 49 { PASSWORD } else { WRONG };
        events.push(login_event(&early, early_pw, &early_ip));
        events.push(login_event(&late, late_pw, &late_ip));
    }
    let (mut early_answers, mut late_answers) = (Vec::new(), Vec::new());
    for (i, a) in fire(&fleet, events).await.into_iter().enumerate() {
        match i % 2 {
            0 => early_answers.push(a),
            _ => late_answers.push(a),
        }
    }

    // Late: refused like every guess after the fifth, before any verification.
    let owner = &late_answers[49];
    assert_eq!(
        (owner.status, owner.code.as_str()),
        (429, "too_many_attempts")
    );
    assert!(owner.cookie.is_none());
    assert_eq!(
        codes(&late_answers, "bad_credentials"),
        5,
        "{late_answers:?}"
    );
    assert_eq!(codes(&late_answers, "too_many_attempts"), 45);
    assert_eq!(counts(&mut st, &late, &late_ip).await.0, [5, 5, 5]);

    // Early: whichever way the race went, the answers and the counts agree.
    let owner = &early_answers[0];
    let bad = codes(&early_answers, "bad_credentials");
    let logged_in = codes(&early_answers, "logged_in");
    assert_eq!(
        bad + logged_in + codes(&early_answers, "too_many_attempts"),
        50
    );
    let (stored, _) = counts(&mut st, &early, &early_ip).await;
    eprintln!(
        "right password first: {}; {bad} wrong guesses verified, counts {stored:?}",
        owner.code
    );
    // A success gives its place back in the address's and the mobile's counts: they hold each
    // verified failure.
    assert_eq!(stored[1..], [bad as i64, bad as i64]);
    match owner.code.as_str() {
        "logged_in" => {
            assert_eq!(logged_in, 1);
            let c = claims(&st, owner.cookie.as_deref().expect("a session cookie"));
            assert_eq!(
                (c.sub.as_str(), c.mobile.as_str()),
                (early_id.as_str(), early.as_str())
            );
            // The success deleted the (mobile, address) count: it holds the failures counted
            // after that, at most the limit; at most four others shared the window before it.
            let after = stored[0] as usize;
            assert!(after <= 5 && bad - after <= 4, "{bad} {stored:?}");
        }
        "too_many_attempts" => {
            assert_eq!(logged_in, 0);
            assert!(owner.cookie.is_none());
            assert_eq!((bad, stored[0]), (5, 5));
        }
        other => panic!("the owner got {other}"),
    }

    let secrets = [WRONG, &early, &late, &early_ip, &late_ip];
    let lines = Lines::of(&fleet.assert_logs_clean(&st, &secrets).await);
    assert_eq!(lines.0.len(), 102, "one metrics line per invocation");
    assert_eq!(lines.count("logged_in"), logged_in);
    assert_eq!(
        lines.verified(),
        bad + 5 + logged_in,
        "every verified password, and only those, answered as verified"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_unreachable_fifty_right_passwords_are_503_and_none_is_verified() {
    let mut st = Stores::fresh().await;
    let mobile = random_mobile();
    st.set_code(&mobile, "564738", 300).await;
    let app = st.app().await;
    assert_eq!(
        support::register(&app, &mobile, "564738").await.1,
        "registered"
    );
    let down = format!("redis://{}", support::closed_port());
    let fleet = fleet_with(&st, &down, &[("STATUS_CODES", "http")]).await;
    let ip = fresh_ip();

    let answers = fire(&fleet, vec![login_event(&mobile, PASSWORD, &ip); 50]).await;
    for a in &answers {
        assert_eq!(
            (a.status, a.code.as_str()),
            (503, "throttle_store_unavailable")
        );
        assert!(a.cookie.is_none(), "never an unthrottled login");
    }
    assert_eq!(counts(&mut st, &mobile, &ip).await.0, [0, 0, 0]);
    let lines = Lines::of(
        &fleet
            .assert_logs_clean(&st, &[mobile.as_str(), ip.as_str()])
            .await,
    );
    assert_eq!(lines.0.len(), 50, "one metrics line per invocation");
    assert_eq!(lines.verified(), 0, "never an unthrottled guess");
}

/// `method path` with `body` and the session cookie `cookie` (a `set-cookie` value), as the HTTP
/// API sends it, from `ip`.
fn session_event(method: &str, path: &str, body: Value, cookie: &str, ip: &str) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_str(&String::from_utf8(login_event("", "", ip)).unwrap()).unwrap();
    e["rawPath"] = json!(path);
    e["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["routeKey"] = json!(format!("{method} {path}"));
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!(method);
    e["body"] = json!(body.to_string());
    let token = cookie.split(';').next().unwrap();
    e["cookies"] = json!([token]);
    e.to_string().into_bytes()
}

/// Issue 19's race: a password change and logins with the old password at the same moment, over
/// eight processes. Whatever the interleaving, no session that the old password opened outlives
/// the change: a login that read the old hash carries the old version, which the change ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_racing_logins_with_the_old_password_leaves_none_of_them_open() {
    const NEW: &str = "the new passphrase 77";
    let mut st = Stores::fresh().await;
    let fleet = fleet(&st).await;
    for round in 0..3 {
        let mobile = random_mobile();
        register_one(&mut st, &fleet, &mobile).await;
        let login = login_event(&mobile, PASSWORD, &fresh_ip());
        let Reply::Response(v) = fleet.apis[0].invoke(&login).await else {
            panic!("login failed")
        };
        let cookie = v["cookies"][0].as_str().unwrap().to_owned();
        let old_hash = s(&st.item(&mobile).await.unwrap(), "password_hash").to_owned();
        // The change in the middle of the queue, logins with the old password around it.
        let mut events: Vec<Vec<u8>> = (0..15)
            .map(|_| login_event(&mobile, PASSWORD, &fresh_ip()))
            .collect();
        let change = json!({"password": PASSWORD, "new_password": NEW, "new_password2": NEW});
        let change = session_event(
            "PUT",
            "/api/v1.0/users/password",
            change,
            &cookie,
            &fresh_ip(),
        );
        events.insert(3 + round, change);
        let answers = fire(&fleet, events).await;
        assert_eq!(codes(&answers, "password_changed"), 1, "{answers:?}");
        assert_eq!(
            codes(&answers, "logged_in") + codes(&answers, "bad_credentials"),
            15,
            "{answers:?}"
        );
        let item = st.item(&mobile).await.unwrap();
        assert_ne!(s(&item, "password_hash"), old_hash);
        assert_eq!(item["session_version"].as_n().unwrap(), "1");
        // Every session the old password opened is refused from now on, at the function.
        for a in answers.iter().filter(|a| a.code == "logged_in") {
            let cookie = a.cookie.as_deref().unwrap();
            assert_eq!(claims(&st, cookie).sv, 0);
            let logout = session_event(
                "DELETE",
                "/api/v1.0/session",
                json!({}),
                cookie,
                &fresh_ip(),
            );
            assert_eq!(answer(&fleet.apis[1], &logout).await.1, "not_logged_in");
        }
        let renewed = answers
            .iter()
            .find(|a| a.code == "password_changed")
            .unwrap();
        let renewed = renewed.cookie.as_deref().unwrap();
        assert_eq!(claims(&st, renewed).sv, 1);
        let logout = session_event(
            "DELETE",
            "/api/v1.0/session",
            json!({}),
            renewed,
            &fresh_ip(),
        );
        assert_eq!(answer(&fleet.apis[2], &logout).await.1, "logged_out");
        let late = login_event(&mobile, PASSWORD, &fresh_ip());
        assert_eq!(answer(&fleet.apis[3], &late).await.1, "bad_credentials");
    }
    fleet.assert_logs_clean(&st, &[NEW]).await;
}
