//! The function's login in this process, over the table an import wrote: the handler as deployed
//! (`app::assemble` on the real Redis and the local DynamoDB server) fed API Gateway (HTTP API)
//! events for `POST /api/v1.0/sessions`, as tests/login.rs drives it. Every answer is followed by
//! a check that the function's logs (metrics lines included) hold no password, hash or token.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use ihome_register::core::domain::{Mobile, Source};
use ihome_register::core::session::Claims;
use ihome_register::edge::app::{self, App};
use ihome_register::edge::config::Config;
use ihome_register::edge::metrics::{DEFAULT_NAMESPACE, Metrics};
use ihome_register::stores::redis::Redis;
use ihome_register::stores::users::DynamoUsers;
use redis::AsyncCommands;
use serde_json::{Value, json};

use super::{logs, require_env, root};

/// One answer of the login route.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub code: String,
    pub cookie: Option<String>,
}

/// The function on `table`, reached from one source address of its own.
pub struct Function {
    app: Arc<App>,
    secret: String,
    redis: redis::aio::MultiplexedConnection,
    /// API Gateway's `sourceIp` for every attempt: random per test, so tests sharing Redis never
    /// share a per-address count.
    pub ip: String,
}

fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

impl Function {
    pub async fn on(table: &str) -> Self {
        logs::capture();
        let redis_url = require_env("REDIS_URL");
        require_env("AWS_ENDPOINT_URL_DYNAMODB");
        let secret = format!(
            "{:016x}{:016x}{:016x}",
            random_u64(),
            random_u64(),
            random_u64()
        );
        logs::forbid([&secret]);
        let config = Config::from_lookup(|k| {
            Some(match k {
                "USERS_TABLE" => table.to_owned(),
                "REDIS_URL" => redis_url.clone(),
                "JWT_SECRET" => secret.clone(),
                "STATUS_CODES" => "http".to_owned(),
                // The local DynamoDB server is one Python process, slow while the other tests'
                // imports write to it; a timeout here would be a 503, not what is tested.
                "DYNAMODB_TIMEOUT_MS" => "5000".to_owned(),
                "REDIS_TIMEOUT_MS" => "2000".to_owned(),
                // The fixture's mobiles are fixed (the report's masked mobiles are checked
                // against them) and shared by the three sources' tests, running at once, and by
                // every run of the suite within the hour: their wrong passwords would add up past
                // the per-mobile default (20 an hour) and turn a later run's bad_credentials into
                // too_many_attempts. tests/login.rs proves that limit; the per (mobile, address)
                // limit stays at its default and is read below.
                "LOGIN_LIMIT_MOBILE" => "100000/3600".to_owned(),
                _ => return None,
            })
        })
        .expect("the test configuration is valid");
        let client = app::dynamodb_client(&config).await;
        let store = Redis::new(&config.redis_url, config.redis_timeout).unwrap();
        let mut app = app::assemble(store, DynamoUsers::new(client, table), &config);
        app.metrics = Metrics::with_sink(DEFAULT_NAMESPACE, logs::write_line);
        let n = random_u64();
        let ip = format!(
            "198.{}.{}.{}",
            n % 200 + 18,
            (n >> 8) % 256,
            (n >> 16) % 250 + 1
        );
        let redis = redis::Client::open(redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("the test Redis answers");
        Self {
            app: Arc::new(app),
            secret,
            redis,
            ip,
        }
    }

    /// Posts `{mobile, password}` to `/api/v1.0/sessions` from this function's address.
    pub async fn log_in(&self, mobile: &str, password: &str) -> Answer {
        logs::forbid([password]);
        let event = std::fs::read_to_string(root().join("events/http-api/registered.json"))
            .expect("the HTTP API event");
        let mut e: Value = serde_json::from_str(&event).unwrap();
        e["rawPath"] = json!("/api/v1.0/sessions");
        e["routeKey"] = json!("POST /api/v1.0/sessions");
        e["requestContext"]["routeKey"] = json!("POST /api/v1.0/sessions");
        e["requestContext"]["http"]["path"] = json!("/api/v1.0/sessions");
        e["requestContext"]["http"]["sourceIp"] = json!(self.ip);
        e["body"] = json!(json!({"mobile": mobile, "password": password}).to_string());
        let req = lambda_http::request::from_str(&e.to_string()).unwrap();
        let resp = ihome_register::edge::http::handle(self.app.clone(), req).await;
        let lambda_http::Body::Text(text) = resp.body() else {
            panic!("a text body")
        };
        let body: Value = serde_json::from_str(text).unwrap();
        let cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(c) = &cookie {
            logs::forbid([token(c)]);
        }
        logs::assert_clean();
        Answer {
            status: resp.status().as_u16(),
            code: body["code"].as_str().unwrap().to_owned(),
            cookie,
        }
    }

    /// The claims of a `set-cookie` this function answered, verified with its key by
    /// jsonwebtoken (not the function's own verifier).
    pub fn claims(&self, set_cookie: &str) -> Claims {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&["ihome"]);
        jsonwebtoken::decode::<Claims>(
            token(set_cookie),
            &jsonwebtoken::DecodingKey::from_secret(self.secret.as_bytes()),
            &validation,
        )
        .expect("a session this function signed")
        .claims
    }

    /// The failures counted for `mobile` from this address (the (mobile, address) count), 0
    /// where none is stored.
    pub async fn failures(&mut self, mobile: &str) -> i64 {
        let [key, _, _] = ihome_register::stores::throttle::keys(
            &Mobile::parse(mobile).unwrap(),
            &Source::from_address(Some(&self.ip)),
        );
        let n: Option<i64> = self.redis.get(key).await.unwrap();
        n.unwrap_or(0)
    }
}

/// The JWT in a `set-cookie` value.
fn token(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("__Host-session=")
        .and_then(|rest| rest.split(';').next())
        .expect("the session cookie")
}
