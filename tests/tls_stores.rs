//! Both stores over TLS, as in AWS (issue 22): DynamoDB (moto) behind a TLS front
//! (scripts/tls-front.py) and a redis-server speaking only TLS, both with certificates from a CA
//! made for the test by openssl. The function binary runs under the Lambda Runtime API harness.
//!
//! - With the `test-ca` feature (`cargo test --features test-ca --test tls_stores`), told of the
//!   CA: it opens DynamoDB's TLS connection during init, before any invocation, and registers
//!   over it (one connection for init and every request after), the user stored and the code
//!   consumed.
//! - Without the feature (every shipped build; `cargo test`): told of the same CA by the same
//!   variable, it refuses both stores' certificates, answers 503 and stores nothing.
//! - Either way, a DynamoDB endpoint that never answers costs init the warm-up limit (250 ms,
//!   overlapped with Redis's), and a warning, never a failed init.

mod support;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ihome_register::edge::app::{TEST_CA_FILE_ENV, WARM_UP_LIMIT};
use serde_json::{Value, json};
use support::runtime_api::{Function, Reply, RuntimeApi};
use support::{RedisServer, Stores, free_port, random_mobile, random_u64, require_env};

/// moto behind scripts/tls-front.py, with the certificate `RedisServer::start_tls` made.
struct TlsFront {
    url: String,
    /// TLS connections the front accepted (handshake completed).
    #[cfg_attr(not(feature = "test-ca"), allow(dead_code))]
    accepted: Arc<AtomicUsize>,
    child: Child,
}

impl TlsFront {
    fn start(dir: &std::path::Path) -> Self {
        let moto = require_env("AWS_ENDPOINT_URL_DYNAMODB");
        let upstream = moto.trim_start_matches("http://").trim_end_matches('/');
        let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tls-front.py"))
            .args(["--listen", "127.0.0.1:0", "--to", upstream])
            .args(["--cert", &file("cert.pem"), "--key", &file("key.pem")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs scripts/tls-front.py");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().expect("the front prints its address").unwrap();
        let addr = ready
            .strip_prefix("ready ")
            .expect("the front's first line is `ready HOST:PORT`")
            .to_owned();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if line.starts_with("accepted ") {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self {
            url: format!("https://{addr}"),
            accepted,
            child,
        }
    }

    #[cfg_attr(not(feature = "test-ca"), allow(dead_code))]
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's stores over TLS: a table on moto (the harness reaches it plain), a TLS-only
/// redis-server and moto's TLS front, both certificates from one throwaway CA (`ca`).
struct Tls {
    st: Stores,
    redis: RedisServer,
    front: TlsFront,
    ca: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Tls {
    async fn start() -> Self {
        let st = Stores::fresh().await;
        let dir = std::env::temp_dir().join(format!("tls-stores-{:016x}", random_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let redis = RedisServer::start_tls(free_port(), &dir).await;
        let front = TlsFront::start(&dir);
        let ca = dir.join("ca.pem").to_str().unwrap().to_owned();
        Self {
            st,
            redis,
            front,
            ca,
            _dir: TempDir(dir),
        }
    }

    fn rediss_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.redis.port)
    }

    /// The harness's own connection to the TLS Redis, trusting the test CA.
    async fn redis(&self) -> redis::aio::MultiplexedConnection {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(&self.ca).unwrap()),
        };
        redis::Client::build_with_tls(self.rediss_url(), certs)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// The function's environment: both stores over TLS, the test CA named.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("USERS_TABLE", self.st.table.clone()),
            ("REDIS_URL", self.rediss_url()),
            ("JWT_SECRET", self.st.secret.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.front.url.clone()),
            ("STATUS_CODES", "http".into()),
            (TEST_CA_FILE_ENV, self.ca.clone()),
        ]
    }
}

fn registration(mobile: &str, code: &str) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["body"] = json!(
        json!({"mobile": mobile, "sms_code": code, "password": support::PASSWORD,
               "password2": support::PASSWORD})
        .to_string()
    );
    e.to_string().into_bytes()
}

fn status_and_code(reply: &Reply) -> (u64, String) {
    match reply {
        Reply::Response(v) => {
            let body: Value = serde_json::from_str(v["body"].as_str().unwrap_or("{}")).unwrap();
            (
                v["statusCode"].as_u64().unwrap(),
                body["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
        Reply::Error(e) => panic!("the function failed the invocation: {e}"),
    }
}

/// Waits (bounded) until the function has asked for its first invocation: its init is over.
async fn init_done(api: &RuntimeApi) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(at) = api.first_poll() {
            return at;
        }
        assert!(Instant::now() < deadline, "the function never polled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn set_code(redis: &mut redis::aio::MultiplexedConnection, mobile: &str, code: &str) {
    let _: () = redis::cmd("SET")
        .arg(support::key(mobile))
        .arg(code)
        .arg("EX")
        .arg(300)
        .query_async(redis)
        .await
        .unwrap();
}

async fn get_code(redis: &mut redis::aio::MultiplexedConnection, mobile: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(support::key(mobile))
        .query_async(redis)
        .await
        .unwrap()
}

#[cfg(feature = "test-ca")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tls_to_both_stores_on_the_connection_opened_at_init() {
    let tls = Tls::start().await;
    let mut redis = tls.redis().await;
    let api = RuntimeApi::start().await;
    let function = Function::spawn(env!("CARGO_BIN_EXE_ihome-register"), &api, &tls.env());
    init_done(&api).await;
    // No invocation has been handed out: a TLS connection to DynamoDB now is init's.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tls.front.accepted() == 0 {
        if Instant::now() > deadline {
            let output = function.stop().await;
            panic!("init did not open DynamoDB's TLS connection: {output}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    for _ in 0..2 {
        let mobile = random_mobile();
        set_code(&mut redis, &mobile, "135790").await;
        let reply = api.invoke(&registration(&mobile, "135790")).await;
        assert_eq!(status_and_code(&reply), (201, "registered".into()));
        let item = tls.st.item(&mobile).await.expect("the user is stored");
        assert!(support::s(&item, "password_hash").starts_with("$argon2id$"));
        assert_eq!(get_code(&mut redis, &mobile).await, None, "code consumed");
    }
    let output = function.stop().await;
    assert_eq!(
        tls.front.accepted(),
        1,
        "init's connection served both registrations: {output}"
    );
    assert!(!output.contains("not reachable at cold start"), "{output}");
}

#[cfg(not(feature = "test-ca"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_without_test_ca_refuses_the_test_ca_even_when_told_of_it() {
    let tls = Tls::start().await;
    let mut redis = tls.redis().await;
    let api = RuntimeApi::start().await;
    // The variable is set, as a careless stack might set it: this build never reads it.
    let function = Function::spawn(env!("CARGO_BIN_EXE_ihome-register"), &api, &tls.env());
    let mobile = random_mobile();
    set_code(&mut redis, &mobile, "135790").await;
    let reply = api.invoke(&registration(&mobile, "135790")).await;
    let output = function.stop().await;
    let (status, code) = status_and_code(&reply);
    assert_eq!(status, 503, "{code}: {output}");
    for store in ["redis", "dynamodb"] {
        assert!(
            output.lines().any(|l| {
                l.contains(&format!("{store} not reachable at cold start"))
                    && l.contains("UnknownIssuer")
            }),
            "{store}'s certificate refused at init: {output}"
        );
    }
    assert!(tls.st.item(&mobile).await.is_none(), "nothing stored");
    assert_eq!(
        get_code(&mut redis, &mobile).await.as_deref(),
        Some("135790"),
        "the code is still the user's"
    );
}

/// A DynamoDB and a Redis that accept TCP connections and never answer: init waits the warm-up
/// limit once (the two overlap), warns for each, and the function then serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_that_never_answer_cost_init_the_warm_up_limit_once_and_a_warning() {
    let st = Stores::fresh().await;
    // Listening, never accepting: connects complete (the backlog), nothing is ever answered.
    let dynamodb = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redis = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let env = vec![
        ("USERS_TABLE", st.table.clone()),
        (
            "REDIS_URL",
            format!("redis://{}", redis.local_addr().unwrap()),
        ),
        ("JWT_SECRET", st.secret.clone()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            format!("https://{}", dynamodb.local_addr().unwrap()),
        ),
        ("STATUS_CODES", "http".into()),
        // Roots named with a plain `redis://` URL (as a bench run's environment leaves them):
        // the test-ca build must still start, not refuse the URL.
        (
            TEST_CA_FILE_ENV,
            concat!(env!("CARGO_MANIFEST_DIR"), "/data/aws-root-cas.pem").into(),
        ),
    ];
    let api = RuntimeApi::start().await;
    let spawned = Instant::now();
    let function = Function::spawn(env!("CARGO_BIN_EXE_ihome-register"), &api, &env);
    let init = init_done(&api).await - spawned;
    // An invalid mobile: answered without either store, so the function is up and serving.
    let mut rejected: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    rejected["body"] = json!(
        json!({"mobile": "1", "sms_code": "1", "password": "x",
                                    "password2": "x"})
        .to_string()
    );
    let reply = api.invoke(rejected.to_string().as_bytes()).await;
    let output = function.stop().await;
    assert_eq!(status_and_code(&reply).0, 400, "{output}");
    assert!(
        init >= WARM_UP_LIMIT,
        "init waited for the stores: {init:?}"
    );
    assert!(
        init < WARM_UP_LIMIT * 2,
        "the two warm-ups overlap, each bounded by the limit: init took {init:?}"
    );
    assert!(
        output.contains("dynamodb did not answer at cold start"),
        "{output}"
    );
    assert!(
        output.contains("redis did not answer at cold start"),
        "{output}"
    );
    drop((dynamodb, redis));
}
