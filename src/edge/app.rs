//! Wiring for the deployed function: the real Redis and DynamoDB adapters, built once per cold
//! start and shared by every invocation of the instance.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::core::account::Account;
use crate::core::domain::Mobile;
use crate::core::hashing;
use crate::core::login::Login;
use crate::core::register::Registrar;
use crate::core::session::Sessions;
use crate::edge::config::Config;
use crate::edge::http::Service;
use crate::edge::metrics::Timed;
use crate::edge::phases;
use crate::stores::redis::Redis;
use crate::stores::sessions::{self, RedisSessions};
use crate::stores::sms_codes::{self, CodeRules, Purpose, RedisSmsCodes};
use crate::stores::throttle::{self, RedisThrottle};
use crate::stores::users::DynamoUsers;

/// The function: each store's calls timed for the metrics line.
pub type App =
    Service<Timed<RedisSmsCodes>, Timed<DynamoUsers>, Timed<RedisThrottle>, Timed<RedisSessions>>;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The URL is not echoed: it may carry a password.
    #[error("REDIS_URL is not a usable Redis URL")]
    RedisUrl,
}

/// The longest the cold start waits for Redis.
pub const WARM_UP_LIMIT: std::time::Duration = std::time::Duration::from_millis(250);

/// DynamoDB attempts per request (the first and two retries).
pub const DYNAMODB_MAX_ATTEMPTS: u32 = 3;

/// The backoff before a retry after throttling is a random part of 100 ms, then of 200 ms. The
/// SDK's default is 1 s then 2 s. That holds a sign-up up to 3 s, and the backoff alone can use
/// up a short operation timeout, so a throttle that clears quickly would still give a 503.
/// Retries after other errors (timeouts, 5xx) wait no longer than that.
pub const DYNAMODB_THROTTLE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Builds the function's state and does at cold start what the first request would otherwise
/// pay for: the hash's working memory, the mobile pattern, the Redis connection and its
/// scripts, and the DynamoDB connection (TCP and TLS, issue 22). A store that is down at cold
/// start costs a warning, not the init: requests get 503 until it is back.
///
/// The set-up steps wait on nothing but their own work, so they run at once (issue 16): the
/// CPU-bound ones ([`prepare`]: the hash memory, the pattern and the NFKC tables) on a thread of
/// their own, which `main` starts before anything else (waited for here on the blocking pool,
/// or run there if nobody started it), and on the runtime Redis's round trips (started first,
/// so the network time overlaps the rest) and DynamoDB's: the SDK's configuration, then one
/// GetItem that opens the connection ([`open_dynamodb`]). Each store's warm-up waits at most
/// [`WARM_UP_LIMIT`] (or its own timeout, if shorter), and they overlap, so a store that does not
/// answer costs the init that limit once.
pub async fn build(config: &Config) -> Result<App, StartupError> {
    let redis = redis_store(config)?;
    phases::mark("redis client");
    let local = tokio::task::spawn_blocking(prepare);
    let warm_up = async {
        let scripts = sms_codes::scripts()
            .chain(throttle::scripts())
            .chain(sessions::scripts());
        redis
            .warm_up(config.redis_timeout.min(WARM_UP_LIMIT), scripts)
            .await;
        phases::mark("redis connect and SCRIPT LOAD");
    };
    let dynamodb = async {
        let client = dynamodb_client(config).await;
        if preconnect_enabled() {
            let limit = config.dynamodb_timeout.min(WARM_UP_LIMIT);
            open_dynamodb(&client, &config.users_table, limit).await;
            phases::mark("dynamodb connect (TCP, TLS) and GetItem");
        }
        client
    };
    let ((), client, local) = tokio::join!(warm_up, dynamodb, local);
    local.expect("preparing the hash memory and the pattern does not panic");
    phases::mark("set-up joined");
    let users = DynamoUsers::new(client, &config.users_table);
    let service = assemble(redis, users, config);
    phases::mark("sessions and service");
    Ok(service)
}

/// The key [`open_dynamodb`] reads: not a mobile (those are 11 digits), so no item has it.
pub const PRECONNECT_KEY: &str = "cold-start-connection";

/// Opens the DynamoDB connection at cold start, so the first request finds it ready: DNS, TCP,
/// the TLS handshake (in AWS the dearest part of a first call at a small memory size, paid here
/// at init's full vCPU), the credentials and the request signing. The call is a GetItem of
/// [`PRECONNECT_KEY`] on the users table, projected on the key: the role already grants it
/// (GetItem on the table, attributes within mobile, user_id, name, password_hash), it reads no
/// item and costs half a read unit (eventually consistent). The SDK's pool keeps the connection
/// for the requests. A failure or `limit` passing costs a warning, never the init: the first
/// request connects again.
pub async fn open_dynamodb(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    limit: std::time::Duration,
) {
    let call = client
        .get_item()
        .table_name(table)
        .key(
            "mobile",
            aws_sdk_dynamodb::types::AttributeValue::S(PRECONNECT_KEY.to_owned()),
        )
        .projection_expression("mobile")
        .send();
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
            "dynamodb not reachable at cold start"
        ),
        Err(_) => tracing::warn!(
            limit_ms = limit.as_millis() as u64,
            "dynamodb did not answer at cold start"
        ),
    }
}

/// Whether [`build`] opens the DynamoDB connection: always, but in a bench build (`test-ca`)
/// told otherwise by `IHOME_BENCH_NO_PRECONNECT=1`, for the before/after of issue 22 in one run.
fn preconnect_enabled() -> bool {
    #[cfg(feature = "test-ca")]
    if std::env::var_os("IHOME_BENCH_NO_PRECONNECT").is_some_and(|v| v == "1") {
        return false;
    }
    true
}

/// The Redis store over `REDIS_URL`. In a build with the `test-ca` feature, a `rediss://` URL
/// is verified against [`test_ca`]'s roots when it is set; otherwise (every shipped build) the
/// redis crate's Web PKI roots, as ElastiCache's certificates chain to them.
fn redis_store(config: &Config) -> Result<Redis, StartupError> {
    #[cfg(feature = "test-ca")]
    {
        use secrecy::ExposeSecret;
        let url = config.redis_url.expose_secret();
        // Only a TLS URL takes the roots (redis's TLS builder refuses a plain `redis://` one),
        // and only then is the file read.
        if let Some(root_cert) = url.starts_with("rediss://").then(test_ca).flatten() {
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            let client =
                redis::Client::build_with_tls(url, certs).map_err(|_| StartupError::RedisUrl)?;
            return Redis::with_client(client, config.redis_timeout)
                .map_err(|_| StartupError::RedisUrl);
        }
    }
    Redis::new(&config.redis_url, config.redis_timeout).map_err(|_| StartupError::RedisUrl)
}

/// Names a PEM file of root CAs that a build with the `test-ca` feature trusts besides its own
/// (scripts/bench, scripts/power-tune and tests/tls_stores.rs: the CA `scripts/lib.sh` makes per
/// run). A build without the feature never reads it.
pub const TEST_CA_FILE_ENV: &str = "IHOME_TEST_CA_FILE";

/// The test CA's PEM, read from [`TEST_CA_FILE_ENV`] once per call (at init).
///
/// Why a cargo feature and not a setting: a setting the deployed function reads is one
/// environment variable away from trusting any certificate someone can mint, for DynamoDB (the
/// password hashes) and Redis (the SMS codes), and a mistake in a stack's parameters would be
/// enough. With the feature the code that reads the variable is not in the shipped artifact at
/// all: `cargo lambda build --release` and `sam build` name no feature, the feature is off by
/// default, and only the benchmark scripts turn it on (tests/tls_stores.rs checks that a build
/// without it refuses the test CA even with the variable set). A set but unreadable file stops
/// the bench build, rather than quietly testing without TLS trust.
#[cfg(feature = "test-ca")]
fn test_ca() -> Option<Vec<u8>> {
    let path = std::env::var_os(TEST_CA_FILE_ENV)?;
    Some(std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{TEST_CA_FILE_ENV}={}: {e}",
            std::path::Path::new(&path).display()
        )
    }))
}

/// The CPU-bound set-up, once per process (a second call waits for the first): the hash's
/// working memory, the mobile pattern and the NFKC tables.
pub fn prepare() {
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(|| {
        hashing::prepare();
        phases::mark("argon2 memory (other thread)");
        Mobile::prepare();
        phases::mark("mobile pattern and NFKC tables (other thread)");
    });
}

/// The service over these stores (each timed), configured by `config`. Registration and reset
/// codes, the throttles and the session state share the one Redis connection.
pub fn assemble(redis: Redis, users: DynamoUsers, config: &Config) -> App {
    let codes = RedisSmsCodes::on(redis.clone(), code_rules(config));
    let reset_codes = codes.clone().for_purpose(Purpose::Reset);
    let throttle = Timed(RedisThrottle::on(redis.clone(), config.login_limits));
    let state = Timed(
        RedisSessions::on(redis)
            .waiting_for(config.session_wait_replicas, config.redis_timeout / 2),
    );
    let users = Timed(users);
    let sessions = Sessions::new(&config.session);
    let registrar = Registrar::new(Timed(codes), users.clone(), sessions.clone(), state.clone());
    let login = Login::new(
        users.clone(),
        throttle.clone(),
        sessions.clone(),
        state.clone(),
    );
    let account = Account::new(
        Timed(reset_codes),
        users,
        throttle,
        sessions,
        config.session.verifier(),
        state,
    );
    Service::new(registrar, login, account, config)
}

pub fn code_rules(config: &Config) -> CodeRules {
    CodeRules {
        lease: config.sms_code_lease,
        attempts: config.sms_code_attempts,
    }
}

/// The root CAs AWS service endpoints chain to (Amazon Trust Services): Amazon Root CA 1 to 4,
/// and Starfield Services Root CA G2, which cross-signs them. Taken from Debian's
/// ca-certificates (20230311); `openssl x509 -noout -subject -fingerprint -sha256` lists them.
const AWS_ROOT_CAS: &[u8] = include_bytes!("../../data/aws-root-cas.pem");

/// The SDK's HTTPS client (hyper, rustls with aws-lc), trusting the AWS root CAs only. The
/// default trusts the platform's roots, and reads all of them (on Debian ~150 files under
/// /etc/ssl/certs) when the client is built at init: 3-4 ms of a 13-20 ms init here (the table
/// by phase in docs/performance.md). DynamoDB, also through a gateway or interface endpoint,
/// presents a certificate under these roots; an endpoint override over `https` must too
/// (`http`, as for a local server, is unaffected). Unlike the default client it ignores
/// `HTTPS_PROXY`: the function's subnets have no proxy. A bench build (`test-ca` feature) adds
/// the roots named by [`TEST_CA_FILE_ENV`], see [`test_ca`].
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    #[allow(unused_mut)] // a shipped build adds nothing to it
    let mut roots = tls::TrustStore::empty().with_pem_certificate(AWS_ROOT_CAS);
    #[cfg(feature = "test-ca")]
    if let Some(pem) = test_ca() {
        roots = roots.with_pem_certificate(pem);
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .expect("a TLS context from PEM roots builds");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https()
}

/// A DynamoDB client with explicit timeouts, so a hung endpoint gives a 503 well inside the
/// function timeout: each attempt (connect included) is bounded by `DYNAMODB_TIMEOUT_MS`, the
/// whole call by the attempts plus backoff.
pub async fn dynamodb_client(config: &Config) -> aws_sdk_dynamodb::Client {
    dynamodb_client_with(config.dynamodb_timeout).await
}

/// As [`dynamodb_client`], each attempt bounded by `attempt` (the importer uses it too).
pub async fn dynamodb_client_with(attempt: std::time::Duration) -> aws_sdk_dynamodb::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(attempt)
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * DYNAMODB_MAX_ATTEMPTS + std::time::Duration::from_secs(1))
        .build();
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(DYNAMODB_MAX_ATTEMPTS)
                .with_initial_backoff(DYNAMODB_THROTTLE_BACKOFF),
        )
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&shared);
    phases::mark("aws-config and the DynamoDB client");
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_trusts_the_five_amazon_trust_services_roots() {
        let pem = std::str::from_utf8(AWS_ROOT_CAS).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 5);
    }

    #[tokio::test]
    async fn a_client_builds_over_them() {
        // The SDK parses the PEM when the client is built (and panics on a bad certificate).
        let config = Config::from_lookup(|k| match k {
            "USERS_TABLE" => Some("t".into()),
            "REDIS_URL" => Some("redis://127.0.0.1:1".into()),
            "JWT_SECRET" => Some("k".repeat(32)),
            _ => None,
        })
        .unwrap();
        dynamodb_client(&config).await;
    }

    #[test]
    fn the_key_read_at_cold_start_is_no_mobile() {
        // No user can have it, so the GetItem at init never reads an item.
        assert!(Mobile::parse(PRECONNECT_KEY).is_err());
    }
}
