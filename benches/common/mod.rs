//! Shared by the benchmarks (`benches/lambda.rs`, `benches/power_tune.rs`): the events they
//! send the function, how an invocation is checked and timed, and the statistics.

#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::runtime_api::{Cap, Function, Reply, RuntimeApi};

/// Calls `each` with every flag on the command line and a way to take the value after it
/// (empty when there is none). Unknown flags are the caller's to ignore: cargo bench passes
/// `--bench`.
pub fn for_each_flag(mut each: impl FnMut(&str, &mut dyn FnMut() -> String)) {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        each(flag, &mut || it.next().cloned().unwrap_or_default());
    }
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench"))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank quantile of sorted samples.
fn at(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn summary(samples: &[f64]) -> Value {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    json!({"n": s.len(), "median": at(&s, 0.5), "p99": at(&s, 0.99), "mean": mean,
           "min": s[0], "max": s[s.len() - 1]})
}

pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    at(&s, 0.5)
}

/// `{"summary": ..., "samples": [...]}`, the shape `scripts/bench-report.py` reads.
pub fn series(samples: &[f64]) -> Value {
    json!({"summary": summary(samples), "samples": samples})
}

/// A run's own table name and JWT key, and the function's configuration over them (for the
/// harness's own DynamoDB client and in-process checks).
pub fn bench_config(prefix: &str) -> (String, String, ihome_register::edge::config::Config) {
    let secret = format!("{:064}", std::process::id());
    let table = format!("{prefix}-{}", std::process::id());
    let config = ihome_register::edge::config::Config::from_lookup(|k| match k {
        "USERS_TABLE" => Some(table.clone()),
        "REDIS_URL" => Some(env("REDIS_URL")),
        "JWT_SECRET" => Some(secret.clone()),
        "ALLOWED_ORIGINS" => Some("https://www.ihome.example".into()),
        _ => None,
    })
    .unwrap();
    (table, secret, config)
}

/// Whether the function talks to both stores over TLS (issue 22): `scripts/lib.sh`'s
/// `start_tls_stores` exported the TLS endpoints and the per-run test CA.
pub fn tls_stores() -> bool {
    std::env::var_os("BENCH_FUNCTION_DYNAMODB_URL").is_some()
}

/// The function's Redis URL: over TLS when [`tls_stores`], else the harness's own.
pub fn function_redis_url() -> String {
    std::env::var("BENCH_FUNCTION_REDIS_URL").unwrap_or_else(|_| env("REDIS_URL"))
}

/// The function's DynamoDB endpoint: moto's TLS front when [`tls_stores`], else moto itself.
pub fn function_dynamodb_url() -> String {
    std::env::var("BENCH_FUNCTION_DYNAMODB_URL")
        .unwrap_or_else(|_| env("AWS_ENDPOINT_URL_DYNAMODB"))
}

/// The test CA's PEM, when [`tls_stores`].
pub fn test_ca_pem() -> Option<Vec<u8>> {
    let path = std::env::var_os("IHOME_TEST_CA_FILE")?;
    Some(std::fs::read(path).expect("IHOME_TEST_CA_FILE is readable"))
}

/// A DynamoDB client as the function builds it (its timeouts, retries and HTTPS client, which
/// in a `test-ca` build trusts the test CA), on `endpoint`.
pub async fn dynamodb_client_on(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let client = ihome_register::edge::app::dynamodb_client_with(Duration::from_secs(2)).await;
    let conf = client.config().to_builder().endpoint_url(endpoint).build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// A Redis client for `url`, trusting the test CA for `rediss://` when there is one.
pub fn redis_client(url: &str) -> redis::Client {
    match (url.starts_with("rediss://"), test_ca_pem()) {
        (true, Some(root_cert)) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )
        .unwrap(),
        _ => redis::Client::open(url).unwrap(),
    }
}

/// `env` with the function told not to open DynamoDB's connection at init (a `test-ca` build
/// only): the "before" of issue 22's A/B.
pub fn without_preconnect(env: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = env.to_vec();
    env.push(("IHOME_BENCH_NO_PRECONNECT", "1".into()));
    env
}

/// The function's environment, pointed at the local servers (over TLS when [`tls_stores`]).
pub fn function_env(table: &str, secret: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("USERS_TABLE", table.to_owned()),
        ("REDIS_URL", function_redis_url()),
        ("JWT_SECRET", secret.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", function_dynamodb_url()),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN".into()),
        // Real statuses, so each invocation's answer is checked by its status alone.
        ("STATUS_CODES", "http".into()),
        ("ALLOWED_ORIGINS", "https://www.ihome.example".into()),
        // The benchmarks fail thousands of logins from one address on purpose: limits out of
        // reach, so every attempt is verified. The throttle's script runs (and costs) the same
        // whatever its limits.
        ("LOGIN_LIMIT_MOBILE_IP", "100000000/60".into()),
        ("LOGIN_LIMIT_IP", "100000000/60".into()),
        ("LOGIN_LIMIT_MOBILE", "100000000/60".into()),
    ];
    if let Ok(ca) = std::env::var("IHOME_TEST_CA_FILE") {
        env.push(("IHOME_TEST_CA_FILE", ca));
    }
    env
}

/// Builds the events: a registration for a fresh mobile (its code put in Redis first), an
/// invalid one, another site's form, a login.
pub struct Events {
    pub redis: redis::aio::MultiplexedConnection,
    template: Value,
    login_template: Value,
    next_mobile: u64,
}

pub const PASSWORD: &str = "correct horse battery";

impl Events {
    pub async fn new() -> Self {
        let redis = redis::Client::open(env("REDIS_URL"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        Self {
            redis,
            template: serde_json::from_str(include_str!("../../events/http-api/registered.json"))
                .unwrap(),
            login_template: serde_json::from_str(include_str!(
                "../../events/http-api/logged_in.json"
            ))
            .unwrap(),
            next_mobile: u64::from(std::process::id() % 9_000) * 100_000,
        }
    }

    pub fn mobile(&mut self) -> String {
        self.next_mobile += 1;
        format!("18{:09}", self.next_mobile % 1_000_000_000)
    }

    fn with_body(&self, body: Value) -> Value {
        let mut e = self.template.clone();
        e["body"] = json!(body.to_string());
        e
    }

    /// A registration event for a fresh mobile whose code is already in Redis.
    pub async fn success(&mut self) -> (String, Vec<u8>) {
        let mobile = self.mobile();
        let _: () = redis::cmd("SET")
            .arg(format!("sms_code_{mobile}"))
            .arg("246810")
            .arg("EX")
            .arg(600)
            .query_async(&mut self.redis)
            .await
            .unwrap();
        let e = self.with_body(json!({"mobile": mobile, "sms_code": "246810",
                                      "password": PASSWORD, "password2": PASSWORD}));
        (mobile, e.to_string().into_bytes())
    }

    /// A login of `mobile` with [`PASSWORD`] (the user is the caller's to store).
    pub fn login(&self, mobile: &str) -> Vec<u8> {
        self.login_with(mobile, PASSWORD)
    }

    /// A login of `mobile` with `password`.
    pub fn login_with(&self, mobile: &str, password: &str) -> Vec<u8> {
        let mut e = self.login_template.clone();
        e["body"] = json!(json!({"mobile": mobile, "password": password}).to_string());
        e.to_string().into_bytes()
    }

    /// A registration refused before any store is asked: the mobile is invalid.
    pub fn rejected(&self) -> Vec<u8> {
        let e = self.with_body(json!({"mobile": "138123456789999", "sms_code": "246810",
                                      "password": PASSWORD, "password2": PASSWORD}));
        e.to_string().into_bytes()
    }

    /// Another site's form post carrying a whole registration: refused by the origin check
    /// before the body is parsed.
    pub fn cross_site(&self) -> Vec<u8> {
        let mut e: Value = serde_json::from_slice(&self.rejected()).unwrap();
        e["headers"]["sec-fetch-site"] = json!("cross-site");
        e["headers"]["origin"] = json!("https://evil.example");
        e["headers"]["content-type"] = json!("text/plain");
        e.to_string().into_bytes()
    }
}

/// The contract's `code` in an answer's body, or "".
pub fn code_of(answer: &Value) -> String {
    answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|b| b["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub async fn invoke(api: &RuntimeApi, event: &[u8], want: u64) -> Duration {
    let (reply, took) = api.invoke_timed(event).await;
    match reply {
        Reply::Response(v) if v["statusCode"] == want => took,
        other => panic!("expected {want}, got {other:?}"),
    }
}

/// One cold start: init (process start to its first `/invocation/next`), the first
/// invocation, the process's peak RSS after it, and its output.
pub struct ColdStart {
    pub init_ms: f64,
    pub first_ms: f64,
    pub rss_mib: f64,
    pub output: String,
    /// The wall clock at the spawn, ns since the epoch (for the init-phases marks).
    pub spawned_ns: u128,
    /// Init's end on the same clock.
    pub first_poll_ns: u128,
}

pub async fn cold_start(
    binary: &str,
    env: &[(&'static str, String)],
    cap: &Cap,
    event: &[u8],
    want: u64,
) -> ColdStart {
    let api = RuntimeApi::start().await;
    let spawned_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let started = Instant::now();
    let function = Function::spawn_capped(binary, &api, env, cap);
    let took = invoke(&api, event, want).await;
    let since_spawn = api.first_poll().unwrap() - started;
    // Capped from the start: from the exec, after the harness's own cost of the join.
    let init = api.first_poll().unwrap() - function.joined().unwrap_or(started);
    let rss_mib = function.peak_rss_kib().unwrap() as f64 / 1024.0;
    let output = function.stop().await;
    ColdStart {
        init_ms: ms(init),
        first_ms: ms(took),
        rss_mib,
        output,
        spawned_ns,
        first_poll_ns: spawned_ns + since_spawn.as_nanos(),
    }
}

/// The init phases a build with the `init-phases` feature printed, as (phase, ms) in order:
/// `before main` (exec, the loader, the standard library's start), each marked phase, and
/// `runtime client to the first /next` (lambda_http's set-up and the first poll).
pub fn init_phases(cold: &ColdStart) -> Option<Vec<(String, f64)>> {
    let line = cold.output.lines().find_map(|l| {
        serde_json::from_str::<Value>(l)
            .ok()?
            .get("init_phases")
            .cloned()
    })?;
    let marks: Vec<(String, u128)> = serde_json::from_value(line).ok()?;
    let mut out = Vec::new();
    let mut prev = cold.spawned_ns;
    for (name, at) in marks {
        let name = if name == "main" {
            "before main".to_owned()
        } else {
            name
        };
        out.push((name, (at.saturating_sub(prev)) as f64 / 1e6));
        prev = at;
    }
    out.push((
        "runtime client to the first /next".to_owned(),
        cold.first_poll_ns.saturating_sub(prev) as f64 / 1e6,
    ));
    Some(out)
}
