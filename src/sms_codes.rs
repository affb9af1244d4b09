//! The one-time SMS codes, in Redis under `sms_code_<mobile>` (the key the iHome code issuer
//! writes). A code is taken (read and deleted) in one atomic round trip, so two requests can
//! never both pass with it, and can be given back when the user could not be stored.

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::domain::Mobile;

/// Redis could not be reached, or did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("sms code store unavailable: {0}")]
pub struct SmsStoreError(String);

/// A code taken out of the store, with what is needed to put it back.
pub struct TakenCode {
    value: SecretSlice<u8>,
    /// When the code would have expired; `None` if it had no TTL.
    expires_at: Option<Instant>,
}

impl TakenCode {
    pub fn new(value: Vec<u8>, remaining: Option<Duration>) -> Self {
        Self {
            value: value.into(),
            expires_at: remaining.map(|ttl| Instant::now() + ttl),
        }
    }

    pub fn value(&self) -> &[u8] {
        self.value.expose_secret()
    }

    /// The TTL the code has left now; `Some(ZERO)` once it has run out.
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// What happened when a taken code was given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    Restored,
    /// A newer code was issued meanwhile; it is kept.
    NewerCodeKept,
    /// The code would have expired by now, so there is nothing to give back.
    Expired,
}

/// Where the SMS codes live. `take` must be atomic: one code, one winner.
pub trait SmsCodeStore: Send + Sync + 'static {
    fn take(
        &self,
        mobile: &Mobile,
    ) -> impl Future<Output = Result<Option<TakenCode>, SmsStoreError>> + Send;
    fn restore(
        &self,
        mobile: &Mobile,
        code: &TakenCode,
    ) -> impl Future<Output = Result<Restored, SmsStoreError>> + Send;
}

pub fn key(mobile: &Mobile) -> String {
    format!("sms_code_{}", mobile.as_str())
}

/// The Redis adapter. Its connection is made lazily on first use (so Redis down at cold start
/// gives 503 answers, not a failed init), shared by every request of the instance, and remade by
/// redis-rs after it drops.
#[derive(Clone)]
pub struct RedisSmsCodes {
    conn: ConnectionManager,
}

impl RedisSmsCodes {
    /// `timeout` bounds both connecting and each reply. A connection found dead is remade and
    /// the command sent once more, inside the same request (see `with_reconnect`).
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, redis::RedisError> {
        Self::with_client(redis::Client::open(url.expose_secret())?, timeout)
    }

    /// As [`RedisSmsCodes::new`], for a client built otherwise (e.g. trusting another CA).
    pub fn with_client(
        client: redis::Client,
        timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(50));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { conn })
    }

    /// Connects ahead of the first request (Lambda runs init at full CPU), waiting at most
    /// `limit`. A failure is only logged: the first request connects again.
    pub async fn warm_up(&self, limit: Duration) {
        let ping = self.with_reconnect(|mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        });
        match tokio::time::timeout(limit, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "redis not reachable at cold start"),
            Err(_) => tracing::warn!("redis did not answer at cold start"),
        }
    }

    /// Runs `op`, and once more if the connection turned out to be dead (for example closed by
    /// the server while the function was frozen): a connection already dead never delivered the
    /// command. A timeout is not retried, since the command may have run. (Only a server that
    /// dies between running a take and replying can make the retry find the code gone: a 4002,
    /// never a second consumer.)
    async fn with_reconnect<T, F, Fut>(&self, op: F) -> Result<T, SmsStoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
                tracing::info!(error = %e, "redis connection lost; reconnecting");
                op(self.conn.clone()).await
            }
            other => other,
        }
        .map_err(|e| SmsStoreError(e.to_string()))
    }
}

impl SmsCodeStore for RedisSmsCodes {
    async fn take(&self, mobile: &Mobile) -> Result<Option<TakenCode>, SmsStoreError> {
        let key = key(mobile);
        // MULTI PTTL GETDEL EXEC: one round trip, atomic, and it tells the TTL to restore.
        let (pttl, value): (i64, Option<Vec<u8>>) = self
            .with_reconnect(|mut conn| {
                let key = key.clone();
                async move {
                    redis::pipe()
                        .atomic()
                        .cmd("PTTL")
                        .arg(&key)
                        .cmd("GETDEL")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        // PTTL is -1 for a key without expiry (and -2 for none, when value is None too).
        let remaining = u64::try_from(pttl).ok().map(Duration::from_millis);
        Ok(value.map(|v| TakenCode::new(v, remaining)))
    }

    async fn restore(&self, mobile: &Mobile, code: &TakenCode) -> Result<Restored, SmsStoreError> {
        let remaining = code.remaining();
        if remaining == Some(Duration::ZERO) {
            return Ok(Restored::Expired);
        }
        let key = key(mobile);
        // SET NX: a code issued since we took ours is newer and wins.
        let set: Option<String> = self
            .with_reconnect(|mut conn| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(code.value()).arg("NX");
                if let Some(ttl) = remaining {
                    cmd.arg("PX").arg(ttl.as_millis().max(1) as u64);
                }
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        Ok(match set {
            Some(_) => Restored::Restored,
            None => Restored::NewerCodeKept,
        })
    }
}
