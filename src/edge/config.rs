//! Configuration from the environment, read once at cold start. A missing or bad value stops
//! the start with a message that names the variable and never echoes a secret.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::core::ports::{Limit, Limits};
use crate::core::session::{MIN_KEY_BYTES, SessionSettings};
use crate::edge::contract::StatusMode;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is missing or empty")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, &'static str),
}

/// Everything the function reads from its environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `USERS_TABLE` | required | DynamoDB table keyed by `mobile` |
/// | `REDIS_URL` | required | `redis://` or `rediss://` (TLS) URL of the SMS-code store |
/// | `JWT_SECRET` | required | HS256 key, at least 32 bytes |
/// | `SESSION_TTL_SECONDS` | 86400 | lifetime of the JWT and its cookie |
/// | `SESSION_COOKIE_NAME` | `__Host-session` | cookie name (an RFC 6265 token) |
/// | `JWT_ISSUER` | `ihome` | the token's `iss` claim |
/// | `REDIS_TIMEOUT_MS` | 1000 | Redis connect and reply timeout |
/// | `DYNAMODB_TIMEOUT_MS` | 1000 | DynamoDB connect and per-attempt timeout (3 attempts) |
/// | `SMS_CODE_ATTEMPTS` | 5 | tries a code takes; the last wrong one deletes it (1 = the seed's rule) |
/// | `SMS_CODE_LEASE_MS` | 10000 | how long a request's claim on a code lasts if never ended |
/// | `STATUS_CODES` | `ihome` | `ihome`: HTTP 200 where the seed answered in JSON; `http`: real statuses |
/// | `ALLOWED_ORIGINS` | none | comma-separated exact origins a browser may register or log in from |
/// | `LOGIN_LIMIT_MOBILE_IP` | `5/600` | failed logins / seconds, per mobile and source address |
/// | `LOGIN_LIMIT_IP` | `100/3600` | failed logins / seconds, per source address |
/// | `LOGIN_LIMIT_MOBILE` | `20/3600` | failed logins / seconds, per mobile across addresses |
/// | `METRICS_NAMESPACE` | `IHome/Registration` | CloudWatch namespace of the EMF metrics |
/// | `SESSION_WAIT_REPLICAS` | 0 | replicas that must hold a session record before the answer (Redis `WAIT`; 0 = don't wait) |
///
/// The lease should be at least the function timeout, so a claim outlives the request holding it.
///
/// The AWS SDK reads its own variables (`AWS_REGION`, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` for a local server).
#[derive(Debug)]
pub struct Config {
    pub users_table: String,
    pub redis_url: SecretString,
    /// `JWT_SECRET`, `SESSION_TTL_SECONDS`, `JWT_ISSUER`, `SESSION_COOKIE_NAME`.
    pub session: SessionSettings,
    pub redis_timeout: Duration,
    pub dynamodb_timeout: Duration,
    pub sms_code_attempts: u32,
    pub sms_code_lease: Duration,
    pub status_mode: StatusMode,
    /// Lowercase origins (`scheme://host[:port]`); empty when `ALLOWED_ORIGINS` is unset.
    pub allowed_origins: Vec<String>,
    pub metrics_namespace: String,
    /// `LOGIN_LIMIT_*`: reaching a limit refuses logins for its window.
    pub login_limits: Limits,
    /// `SESSION_WAIT_REPLICAS`: after writing a session record, wait (at most the Redis timeout)
    /// until this many replicas hold it, so a failover to a replica does not lose an ending.
    pub session_wait_replicas: u32,
}

/// The default login limits (docs/login.md says why each).
pub const DEFAULT_LOGIN_LIMITS: Limits = Limits {
    per_mobile_source: Limit {
        failures: 5,
        window: Duration::from_secs(600),
    },
    per_source: Limit {
        failures: 100,
        window: Duration::from_secs(3600),
    },
    per_mobile: Limit {
        failures: 20,
        window: Duration::from_secs(3600),
    },
};

/// `<failures>/<seconds>`, e.g. `5/600`: both whole numbers above zero.
fn parse_limit(value: &str) -> Option<Limit> {
    let (failures, seconds) = value.trim().split_once('/')?;
    let failures = failures.trim().parse::<u32>().ok().filter(|n| *n > 0)?;
    let seconds = seconds.trim().parse::<u64>().ok().filter(|n| *n > 0)?;
    Some(Limit {
        failures,
        window: Duration::from_secs(seconds),
    })
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests need not touch the process env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let millis = |name: &'static str, default: u64| match get(name) {
            None => Ok(Duration::from_millis(default)),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
                _ => Err(ConfigError::Invalid(
                    name,
                    "expected a positive whole number",
                )),
            },
        };

        let jwt_secret = SecretString::from(required("JWT_SECRET")?);
        if jwt_secret.expose_secret().len() < MIN_KEY_BYTES {
            return Err(ConfigError::Invalid(
                "JWT_SECRET",
                "must be at least 32 bytes",
            ));
        }
        let session_ttl = match get("SESSION_TTL_SECONDS") {
            None => Duration::from_secs(86_400),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_secs(n),
                _ => {
                    return Err(ConfigError::Invalid(
                        "SESSION_TTL_SECONDS",
                        "expected a positive whole number of seconds",
                    ));
                }
            },
        };
        let cookie_name = get("SESSION_COOKIE_NAME").unwrap_or_else(|| "__Host-session".into());
        if !is_cookie_token(&cookie_name) {
            return Err(ConfigError::Invalid(
                "SESSION_COOKIE_NAME",
                "must be a cookie token (letters, digits and !#$%&'*+-.^_`|~)",
            ));
        }
        let redis_url = required("REDIS_URL")?;
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(ConfigError::Invalid(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }
        let limit = |name: &'static str, default: Limit| match get(name) {
            None => Ok(default),
            Some(v) => parse_limit(&v).ok_or(ConfigError::Invalid(
                name,
                "expected <failures>/<seconds>, e.g. 5/600",
            )),
        };
        let login_limits = Limits {
            per_mobile_source: limit(
                "LOGIN_LIMIT_MOBILE_IP",
                DEFAULT_LOGIN_LIMITS.per_mobile_source,
            )?,
            per_source: limit("LOGIN_LIMIT_IP", DEFAULT_LOGIN_LIMITS.per_source)?,
            per_mobile: limit("LOGIN_LIMIT_MOBILE", DEFAULT_LOGIN_LIMITS.per_mobile)?,
        };
        let session_wait_replicas = match get("SESSION_WAIT_REPLICAS") {
            None => 0,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n @ 0..=5) => n,
                _ => {
                    return Err(ConfigError::Invalid(
                        "SESSION_WAIT_REPLICAS",
                        "expected a whole number from 0 to 5",
                    ));
                }
            },
        };
        Ok(Self {
            login_limits,
            session_wait_replicas,
            users_table: required("USERS_TABLE")?,
            redis_url: SecretString::from(redis_url),
            session: SessionSettings {
                secret: jwt_secret,
                ttl: session_ttl,
                issuer: get("JWT_ISSUER").unwrap_or_else(|| "ihome".into()),
                cookie_name,
            },
            redis_timeout: millis("REDIS_TIMEOUT_MS", 1000)?,
            dynamodb_timeout: millis("DYNAMODB_TIMEOUT_MS", 1000)?,
            sms_code_attempts: match get("SMS_CODE_ATTEMPTS") {
                None => 5,
                Some(v) => match v.trim().parse::<u32>() {
                    Ok(n @ 1..=100) => n,
                    _ => {
                        return Err(ConfigError::Invalid(
                            "SMS_CODE_ATTEMPTS",
                            "expected a whole number from 1 to 100",
                        ));
                    }
                },
            },
            sms_code_lease: millis("SMS_CODE_LEASE_MS", 10_000)?,
            status_mode: match get("STATUS_CODES").as_deref().map(str::trim) {
                None | Some("ihome") => StatusMode::Ihome,
                Some("http") => StatusMode::Http,
                Some(_) => {
                    return Err(ConfigError::Invalid(
                        "STATUS_CODES",
                        "expected ihome or http",
                    ));
                }
            },
            metrics_namespace: get("METRICS_NAMESPACE")
                .map(|n| n.trim().to_owned())
                .unwrap_or_else(|| crate::edge::metrics::DEFAULT_NAMESPACE.to_owned()),
            allowed_origins: match get("ALLOWED_ORIGINS") {
                None => Vec::new(),
                Some(list) => parse_origins(&list).ok_or(ConfigError::Invalid(
                    "ALLOWED_ORIGINS",
                    "expected comma-separated origins such as https://www.example.com \
                     (scheme, host, optional port; no path, no trailing slash)",
                ))?,
            },
        })
    }
}

/// Parses `https://a.example, http://127.0.0.1:8080` into lowercase origins. An entry with a
/// path, a query, user info, a trailing slash or a scheme other than http(s) is refused rather
/// than silently never matching what browsers send.
fn parse_origins(list: &str) -> Option<Vec<String>> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let (scheme, authority) = origin.split_once("://")?;
            let port_at = authority
                .rfind(':')
                .filter(|&i| !authority[i..].contains(']'));
            let host = port_at
                .map(|i| authority.split_at(i))
                .map_or(authority, |(host, port)| {
                    let port = &port[1..];
                    match !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                        true => host,
                        false => "", // not a port: refused below
                    }
                });
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
            (matches!(scheme, "http" | "https") && host_ok).then(|| origin.to_ascii_lowercase())
        })
        .collect::<Option<Vec<_>>>()
        .filter(|origins| !origins.is_empty())
}

fn is_cookie_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let base = [
            ("USERS_TABLE", "users"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("JWT_SECRET", SECRET),
        ];
        Config::from_lookup(|name| {
            pairs
                .iter()
                .chain(base.iter())
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.users_table, "users");
        assert_eq!(c.session.ttl, Duration::from_secs(86_400));
        assert_eq!(c.session.cookie_name, "__Host-session");
        assert_eq!(c.session.issuer, "ihome");
        assert_eq!(c.redis_timeout, Duration::from_millis(1000));
        assert_eq!(c.sms_code_attempts, 5);
        assert_eq!(c.sms_code_lease, Duration::from_secs(10));
        assert_eq!(c.status_mode, StatusMode::Ihome);
        assert_eq!(c.metrics_namespace, "IHome/Registration");
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.login_limits, DEFAULT_LOGIN_LIMITS);
        assert_eq!(
            c.login_limits.per_mobile_source,
            Limit {
                failures: 5,
                window: Duration::from_secs(600)
            }
        );
    }

    #[test]
    fn login_limits_are_failures_per_seconds() {
        let c = with(&[
            ("LOGIN_LIMIT_MOBILE_IP", " 3 / 60 "),
            ("LOGIN_LIMIT_IP", "1000/86400"),
            ("LOGIN_LIMIT_MOBILE", "7/120"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.login_limits.per_mobile_source,
                c.login_limits.per_source.failures,
                c.login_limits.per_mobile.window
            ),
            (
                Limit {
                    failures: 3,
                    window: Duration::from_secs(60)
                },
                1000,
                Duration::from_secs(120)
            )
        );
        for bad in [
            "5", "0/600", "5/0", "-1/600", "5/10m", "five/600", "/", "5/600/1",
        ] {
            for name in [
                "LOGIN_LIMIT_MOBILE_IP",
                "LOGIN_LIMIT_IP",
                "LOGIN_LIMIT_MOBILE",
            ] {
                assert!(
                    matches!(with(&[(name, bad)]).unwrap_err(), ConfigError::Invalid(n, _) if n == name),
                    "{name}={bad}"
                );
            }
        }
    }

    #[test]
    fn status_codes_and_allowed_origins() {
        assert_eq!(
            with(&[("STATUS_CODES", "http")]).unwrap().status_mode,
            StatusMode::Http
        );
        assert_eq!(
            with(&[("STATUS_CODES", "ihome")]).unwrap().status_mode,
            StatusMode::Ihome
        );
        let c = with(&[(
            "ALLOWED_ORIGINS",
            " https://www.iHome.example ,http://127.0.0.1:8080,https://[::1]:443",
        )])
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            [
                "https://www.ihome.example",
                "http://127.0.0.1:8080",
                "https://[::1]:443"
            ]
        );
        assert_eq!(
            with(&[("ALLOWED_ORIGINS", "https://[::1]")])
                .unwrap()
                .allowed_origins,
            ["https://[::1]"]
        );
        for bad in [
            "www.ihome.example",
            "https://www.ihome.example/",
            "https://www.ihome.example/register",
            "https://user@www.ihome.example",
            "ftp://www.ihome.example",
            "https://www.ihome.example:port",
            "https://",
            "null",
            ",",
        ] {
            assert_eq!(
                with(&[("ALLOWED_ORIGINS", bad)]).unwrap_err(),
                ConfigError::Invalid(
                    "ALLOWED_ORIGINS",
                    "expected comma-separated origins such as https://www.example.com \
                     (scheme, host, optional port; no path, no trailing slash)"
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_required_variable_is_named_when_missing_or_empty() {
        for name in ["USERS_TABLE", "REDIS_URL", "JWT_SECRET"] {
            assert_eq!(with(&[(name, "")]).unwrap_err(), ConfigError::Missing(name));
            assert_eq!(
                with(&[(name, "  ")]).unwrap_err(),
                ConfigError::Missing(name)
            );
        }
    }

    #[test]
    fn bad_values_are_refused_without_echoing_them() {
        let short = with(&[("JWT_SECRET", "too-short-secret")]).unwrap_err();
        assert_eq!(
            short,
            ConfigError::Invalid("JWT_SECRET", "must be at least 32 bytes")
        );
        assert!(!short.to_string().contains("too-short-secret"));
        for (k, v) in [
            ("SESSION_TTL_SECONDS", "0"),
            ("SESSION_TTL_SECONDS", "1d"),
            ("SESSION_COOKIE_NAME", "my session"),
            ("SESSION_COOKIE_NAME", "a;b"),
            ("REDIS_URL", "http://cache:6379"),
            ("REDIS_TIMEOUT_MS", "-1"),
            ("SMS_CODE_ATTEMPTS", "0"),
            ("SMS_CODE_ATTEMPTS", "five"),
            ("SMS_CODE_LEASE_MS", "0"),
            ("STATUS_CODES", "200"),
        ] {
            let err = with(&[(k, v)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid(name, _) if name == k),
                "{k}={v}"
            );
        }
        let c = with(&[
            ("SESSION_TTL_SECONDS", "3600"),
            ("SESSION_COOKIE_NAME", "sid"),
        ])
        .unwrap();
        assert_eq!(
            (c.session.ttl.as_secs(), c.session.cookie_name.as_str()),
            (3600, "sid")
        );
    }
}
