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
pub type App = Service<
    Timed<RedisSmsCodes>,
    Timed<DynamoUsers>,
    Timed<RedisThrottle>,
    Timed<RedisSessions>,
>;

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
/// scripts. A store that is down at cold start costs a warning, not the init: requests get 503
/// until it is back.
///
/// The set-up steps wait on nothing but their own work, so they run at once (issue 16): the
/// CPU-bound ones ([`prepare`]: the hash memory, the pattern and the NFKC tables) on a thread of
/// their own, which `main` starts before anything else (waited for here on the blocking pool,
/// or run there if nobody started it), and on the runtime Redis's round trips (started first,
/// so the network time overlaps the rest) and the SDK's configuration.
pub async fn build(config: &Config) -> Result<App, StartupError> {
    let redis =
        Redis::new(&config.redis_url, config.redis_timeout).map_err(|_| StartupError::RedisUrl)?;
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
    let ((), client, local) = tokio::join!(warm_up, dynamodb_client(config), local);
    local.expect("preparing the hash memory and the pattern does not panic");
    phases::mark("set-up joined");
    let users = DynamoUsers::new(client, &config.users_table);
    let service = assemble(redis, users, config);
    phases::mark("sessions and service");
    Ok(service)
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
    let registrar = Registrar::new(
        Timed(codes),
        users.clone(),
        sessions.clone(),
        state.clone(),
    );
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
/// `HTTPS_PROXY`: the function's subnets have no proxy.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let context = tls::TlsContext::builder()
        .with_trust_store(tls::TrustStore::empty().with_pem_certificate(AWS_ROOT_CAS))
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
}
