//! Shared by the integration tests: isolated real storage (a fresh DynamoDB table per test,
//! random mobiles in the shared Redis), and the function's configuration pointed at it.
//! `scripts/test` starts the servers and exports REDIS_URL and AWS_ENDPOINT_URL_DYNAMODB.
#![allow(dead_code)]

pub mod faults;
pub mod logs;
pub mod runtime_api;
pub mod tables;

pub use tables::create_table;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use ihome_register::edge::app::{self, App};
use ihome_register::edge::config::Config;
use ihome_register::edge::http;
use ihome_register::edge::metrics::Metrics;
use ihome_register::stores::redis::Redis;
use ihome_register::stores::users::DynamoUsers;
use lambda_http::Body;
use redis::AsyncCommands;
use serde_json::{Value, json};

pub type Item = HashMap<String, AttributeValue>;

pub fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts Redis and the DynamoDB server")
    })
}

/// 64 random bits from the standard library's per-process random keys.
pub fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A random mobile in the 15x range the events never use, so parallel tests never share a key.
pub fn random_mobile() -> String {
    format!("15{:09}", random_u64() % 1_000_000_000)
}

pub fn random_secret() -> String {
    format!(
        "{:016x}{:016x}{:016x}",
        random_u64(),
        random_u64(),
        random_u64()
    )
}

/// The function's configuration on the test's stores. Answers carry real statuses
/// (`STATUS_CODES=http`), which is what most tests read; `extra` overrides any variable (the
/// iHome mode has its own tests in `registration.rs` and `events.rs`).
pub fn config_with(table: &str, redis_url: &str, secret: &str) -> Config {
    config_with_env(table, redis_url, secret, &[])
}

pub fn config_with_env(
    table: &str,
    redis_url: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> Config {
    Config::from_lookup(|k| {
        if let Some((_, v)) = extra.iter().find(|(name, _)| *name == k) {
            return Some(v.to_string());
        }
        match k {
            "USERS_TABLE" => Some(table.to_owned()),
            "REDIS_URL" => Some(redis_url.to_owned()),
            "JWT_SECRET" => Some(secret.to_owned()),
            "REDIS_TIMEOUT_MS" | "DYNAMODB_TIMEOUT_MS" => Some("500".to_owned()),
            "STATUS_CODES" => Some("http".to_owned()),
            _ => None,
        }
    })
    .expect("test configuration is valid")
}

/// A DynamoDB client for `endpoint`, built like the function's (timeouts, retries).
pub async fn dynamodb_at(endpoint: &str, config: &Config) -> aws_sdk_dynamodb::Client {
    let base = app::dynamodb_client(config).await;
    let conf = base.config().to_builder().endpoint_url(endpoint).build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The test's own view of the real servers, and a fresh table.
pub struct Stores {
    pub redis: redis::aio::MultiplexedConnection,
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub redis_url: String,
    pub secret: String,
}

impl Stores {
    pub async fn fresh() -> Self {
        logs::capture();
        let redis_url = require_env("REDIS_URL");
        require_env("AWS_ENDPOINT_URL_DYNAMODB");
        let table = format!("users-test-{:016x}", random_u64());
        let secret = random_secret();
        logs::forbid([&secret]);
        let ddb = app::dynamodb_client(&config_with(&table, &redis_url, &secret)).await;
        create_table(&ddb, &table).await;
        let redis = redis::Client::open(redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("the test Redis answers");
        Self {
            redis,
            ddb,
            table,
            redis_url,
            secret,
        }
    }

    pub fn config(&self) -> Config {
        config_with(&self.table, &self.redis_url, &self.secret)
    }

    /// The function as deployed, on these stores.
    pub async fn app(&self) -> Arc<App> {
        captured(app::build(&self.config()).await.unwrap())
    }

    /// The function as deployed, on these stores, with `env` set (e.g. `STATUS_CODES`).
    pub async fn app_env(&self, env: &[(&str, &str)]) -> Arc<App> {
        let config = config_with_env(&self.table, &self.redis_url, &self.secret, env);
        captured(app::build(&config).await.unwrap())
    }

    /// The function with its Redis or DynamoDB endpoint replaced (e.g. by a closed port).
    pub async fn app_with(&self, redis_url: Option<&str>, dynamodb: Option<&str>) -> Arc<App> {
        let config = config_with(
            &self.table,
            redis_url.unwrap_or(&self.redis_url),
            &self.secret,
        );
        let redis = Redis::new(&config.redis_url, config.redis_timeout).unwrap();
        self.app_with_redis(redis, dynamodb).await
    }

    /// The function with its own Redis connection, and its DynamoDB endpoint maybe replaced.
    pub async fn app_with_redis(&self, redis: Redis, dynamodb: Option<&str>) -> Arc<App> {
        self.app_on(redis, dynamodb, &self.config()).await
    }

    /// The function on `redis`, its DynamoDB endpoint maybe replaced, configured by `config`.
    pub async fn app_on(&self, redis: Redis, dynamodb: Option<&str>, config: &Config) -> Arc<App> {
        let client = match dynamodb {
            Some(endpoint) => dynamodb_at(endpoint, config).await,
            None => app::dynamodb_client(config).await,
        };
        let users = DynamoUsers::new(client, &self.table);
        captured(app::assemble(redis, users, config))
    }

    pub async fn set_code(&mut self, mobile: &str, code: &str, ttl_secs: u64) {
        let _: () = self
            .redis
            .set_ex(key(mobile), code, ttl_secs)
            .await
            .unwrap();
    }

    /// The code as a user could type it now: its digits, or `"<digits> (claimed)"` while a
    /// request's claim is on it.
    pub async fn code(&mut self, mobile: &str) -> Option<String> {
        self.stored(mobile).await.map(|c| match c.claimed {
            true => format!("{} (claimed)", c.digits),
            false => c.digits,
        })
    }

    /// The stored record, read the way the function's scripts read it.
    pub async fn stored(&mut self, mobile: &str) -> Option<StoredCode> {
        let raw: Option<String> = self.redis.get(key(mobile)).await.unwrap();
        raw.map(|v| StoredCode::parse(&v))
    }

    pub async fn pttl(&mut self, mobile: &str) -> i64 {
        self.redis.pttl(key(mobile)).await.unwrap()
    }

    pub async fn del_code(&mut self, mobile: &str) {
        let _: () = self.redis.del(key(mobile)).await.unwrap();
    }

    /// The three failure counts of a login of `mobile` from `ip` (mobile + ip, ip, mobile), as
    /// the throttle keys them; 0 where no key is stored.
    pub async fn login_counts(&mut self, mobile: &str, ip: &str) -> [i64; 3] {
        let mut out = [0; 3];
        for (i, key) in login_keys(mobile, ip).iter().enumerate() {
            let n: Option<i64> = self.redis.get(key).await.unwrap();
            out[i] = n.unwrap_or(0);
        }
        out
    }

    pub async fn item(&self, mobile: &str) -> Option<Item> {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key("mobile", AttributeValue::S(mobile.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    pub async fn count_items(&self) -> usize {
        self.ddb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap()
            .items()
            .len()
    }

    /// Stores a user directly, as an earlier registration would have.
    pub async fn put_user(&self, mobile: &str, user_id: &str) {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("mobile", s(mobile))
            .item("user_id", s(user_id))
            .item("name", s(mobile))
            .item(
                "password_hash",
                s("$argon2id$v=19$m=19456,t=2,p=1$earlier$user"),
            )
            .item("created_at", s("2026-01-01T00:00:00Z"))
            .send()
            .await
            .unwrap();
    }
}

/// The app with its metrics lines written into the captured logs (checked for secrets like
/// every log line) instead of the test binary's stdout.
fn captured(mut app: App) -> Arc<App> {
    app.metrics = Metrics::with_sink(
        ihome_register::edge::metrics::DEFAULT_NAMESPACE,
        logs::write_line,
    );
    Arc::new(app)
}

/// `<code>` as the issuer writes it, or `<code>|<wrong tries>|<claim id>|<lease end>`, then
/// `|<pending user id>` if one is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub digits: String,
    pub wrong: u32,
    pub claimed: bool,
    /// The user id (32 hex digits) a write of unknown outcome used, if the record remembers one.
    pub pending: Option<String>,
}

impl StoredCode {
    pub fn parse(raw: &str) -> Self {
        let fields: Vec<&str> = raw.split('|').collect();
        match fields[..] {
            [digits] => Self {
                digits: digits.into(),
                wrong: 0,
                claimed: false,
                pending: None,
            },
            [digits, wrong, claim, _] => Self {
                digits: digits.into(),
                wrong: wrong.parse().unwrap(),
                claimed: !claim.is_empty(),
                pending: None,
            },
            [digits, wrong, claim, _, pending] if !pending.is_empty() => Self {
                digits: digits.into(),
                wrong: wrong.parse().unwrap(),
                claimed: !claim.is_empty(),
                pending: Some(pending.into()),
            },
            _ => panic!("unexpected stored code layout ({} fields)", fields.len()),
        }
    }
}

/// The keys of a login's three failure counts (`stores::throttle::keys`), for `mobile` as it
/// parses and `ip` as API Gateway gives it.
pub fn login_keys(mobile: &str, ip: &str) -> [String; 3] {
    ihome_register::stores::throttle::keys(
        &ihome_register::core::domain::Mobile::parse(mobile).unwrap(),
        &ihome_register::core::domain::Source::from_address(Some(ip)),
    )
}

pub fn key(mobile: &str) -> String {
    format!("sms_code_{mobile}")
}

/// A loopback address where nothing listens: connecting to it is refused at once.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

pub fn s<'a>(item: &'a Item, field: &str) -> &'a str {
    item.get(field)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("item has no string {field}"))
}

/// A private redis-server on a loopback port, for tests that kill or stop it.
pub struct RedisServer {
    pub port: u16,
    child: std::process::Child,
}

impl RedisServer {
    /// Starts redis-server on `port` and returns once it logs that it accepts connections.
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, &["--port", &port.to_string()]).await
    }

    /// Starts redis-server speaking only TLS on `port`, its certificate for 127.0.0.1 issued by
    /// a throwaway CA (`dir/ca.pem`); openssl makes both in `dir`.
    pub async fn start_tls(port: u16, dir: &std::path::Path) -> Self {
        Self::start_tls_with(port, dir, &[]).await
    }

    /// As [`RedisServer::start_tls`], with more server arguments (e.g. `--requirepass`).
    pub async fn start_tls_with(port: u16, dir: &std::path::Path, extra: &[&str]) -> Self {
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        for cmd in [
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
             -subj /CN=test-ca -keyout ca.key -out ca.pem",
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -subj /CN=127.0.0.1 -keyout key.pem -out leaf.csr",
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
             -extfile leaf.ext -out cert.pem",
        ] {
            let made = std::process::Command::new("openssl")
                .args(cmd.split_whitespace())
                .current_dir(dir)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl is installed (scripts/test installs it)");
            assert!(made.success(), "openssl {cmd}");
        }
        let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let (cert, key, ca) = (file("cert.pem"), file("key.pem"), file("ca.pem"));
        let tls_port = port.to_string();
        let args = [
            "--port",
            "0",
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        Self::start_with(port, &[&args[..], extra].concat()).await
    }

    /// Starts redis-server on `port` with `args` (which name the port).
    pub async fn start_with(port: u16, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(args)
            .args(["--save", "", "--appendonly", "no", "--loglevel", "notice"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        let stdout = child.stdout.take().unwrap();
        let server = Self { port, child };
        let ready = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let ready = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|line| line.contains("Ready to accept connections"));
            // Keep draining so the server never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            ready
        });
        assert!(
            ready.await.unwrap(),
            "redis-server on port {port} did not start"
        );
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id (to stop and continue it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    closed_port().rsplit(':').next().unwrap().parse().unwrap()
}

pub const PASSWORD: &str = "correct horse battery";

/// One registration through the handler, as a real HTTP API event; returns (status, code).
/// Checks that the logs so far hold none of its secrets, nor any other test's.
pub async fn register(app: &Arc<App>, mobile: &str, code: &str) -> (u16, String) {
    logs::forbid([mobile, code, PASSWORD]);
    let body = json!({"mobile": mobile, "sms_code": code,
                      "password": PASSWORD, "password2": PASSWORD});
    let mut e: Value =
        serde_json::from_str(include_str!("../../events/http-api/registered.json")).unwrap();
    e["body"] = json!(body.to_string());
    let req = lambda_http::request::from_str(&e.to_string()).unwrap();
    let resp = http::handle(app.clone(), req).await;
    let Body::Text(text) = resp.body() else {
        panic!("text body")
    };
    let v: Value = serde_json::from_str(text).unwrap();
    logs::assert_clean();
    (
        resp.status().as_u16(),
        v["code"].as_str().unwrap().to_owned(),
    )
}
