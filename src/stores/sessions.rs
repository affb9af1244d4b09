//! The verifiers' fast copy of what ended sessions, in Redis (docs/sessions.md, "What ends a
//! session"):
//!
//! - `session_ended:<jti>` = `1`: that token was logged out. It expires with the token (its `exp`
//!   plus the verifiers' leeway), so the set never grows past the live tokens.
//! - `session_user:<user_id>` = the user's session version, a decimal integer. Every token
//!   carries the version it was issued under (`sv`); one carrying less was ended by a log out
//!   everywhere, a password change or reset, or a disable. Written at every registration and
//!   login (so a live token's user always has it) and at every ending, never lowered (a late
//!   write of an older version keeps the newer one), and kept for longer than a token lives.
//!
//! With `SESSION_WAIT_REPLICAS`, every write is followed by `WAIT`, so an answered ending is on
//! a replica before the client learns of it.
//!
//! A verifier reads both in one `MGET`. The durable copy of the version is the DynamoDB item's
//! `session_version`, written first; a missing user key means Redis lost its data, and the token
//! is refused (the next login writes it again from the item).

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use crate::core::ports::{SessionStore, SessionStoreError, Standing, UserId};
use crate::stores::redis::Redis;

pub fn ended_key(jti: &str) -> String {
    format!("session_ended:{jti}")
}

pub fn user_key(user_id: &str) -> String {
    format!("session_user:{user_id}")
}

/// KEYS[1] the user's key; ARGV[1] the version, ARGV[2] the ms to keep it at least. Keeps the
/// higher of the stored and the given version, and the longer of the two lifetimes.
const REMEMBER: &str = r"
local v = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current and current > v then v = current end
local keep = tonumber(ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > keep then keep = ttl end
redis.call('SET', KEYS[1], string.format('%d', v), 'PX', keep)
return v
";

static REMEMBER_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(REMEMBER));

/// The script's source, for [`Redis::warm_up`].
pub fn scripts() -> impl Iterator<Item = &'static str> {
    [REMEMBER].into_iter()
}

/// The Redis adapter for session state, on the instance's shared connection.
#[derive(Clone)]
pub struct RedisSessions {
    redis: Redis,
    /// After each write: `WAIT <replicas> <timeout ms>`, when `replicas` > 0.
    wait: Option<(u32, u64)>,
}

impl RedisSessions {
    pub fn on(redis: Redis) -> Self {
        Self { redis, wait: None }
    }

    /// Each write is followed by Redis's `WAIT`: the answer comes once `replicas` replicas
    /// acknowledged it, or after `timeout` (shorter than the connection's reply timeout), then
    /// with a warning: the durable record in DynamoDB is written already, and the function's own
    /// routes check it. A replica promoted by a failover then holds every ending that was
    /// answered. `replicas` = 0 waits for nothing.
    pub fn waiting_for(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then(|| (replicas, timeout.as_millis().max(1) as u64));
        self
    }

    async fn replicated(&self) {
        let Some((replicas, timeout)) = self.wait else {
            return;
        };
        let acked = self
            .redis
            .with_reconnect(|mut conn| async move {
                redis::cmd("WAIT")
                    .arg(replicas)
                    .arg(timeout)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        match acked {
            Ok(n) if n >= i64::from(replicas) => {}
            Ok(n) => tracing::warn!(
                acked = n,
                replicas,
                "session record not yet on the replicas"
            ),
            Err(e) => tracing::warn!(error = %e, "could not wait for the replicas"),
        }
    }
}

fn unavailable(e: redis::RedisError) -> SessionStoreError {
    SessionStoreError::new(e.to_string())
}

impl SessionStore for RedisSessions {
    async fn standing(&self, jti: &str, user_id: &str) -> Result<Standing, SessionStoreError> {
        let keys = [ended_key(jti), user_key(user_id)];
        let (ended, version): (Option<String>, Option<String>) = self
            .redis
            .with_reconnect(|mut conn| {
                let keys = keys.clone();
                async move { redis::cmd("MGET").arg(&keys).query_async(&mut conn).await }
            })
            .await
            .map_err(unavailable)?;
        let version = match version {
            None => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| SessionStoreError::new("unreadable session version"))?,
            ),
        };
        Ok(Standing {
            token_ended: ended.is_some(),
            version,
        })
    }

    async fn end_token(&self, jti: &str, until: SystemTime) -> Result<(), SessionStoreError> {
        let at = until
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .to_string();
        let key = ended_key(jti);
        // One command (PXAT: Redis 6.2, the oldest this project runs on).
        self.redis
            .with_reconnect(|mut conn| {
                let set = redis::cmd("SET")
                    .arg(&key)
                    .arg("1")
                    .arg("PXAT")
                    .arg(&at)
                    .clone();
                async move { set.query_async::<()>(&mut conn).await }
            })
            .await
            .map_err(unavailable)?;
        self.replicated().await;
        Ok(())
    }

    async fn remember(
        &self,
        user_id: UserId,
        version: u64,
        keep: Duration,
    ) -> Result<(), SessionStoreError> {
        let key = user_key(&user_id.to_string());
        let args = [version.to_string(), keep.as_millis().max(1).to_string()];
        self.redis
            .run::<i64>(&REMEMBER_SCRIPT, &[&key], &[&args[0], &args[1]])
            .await
            .map_err(unavailable)?;
        self.replicated().await;
        Ok(())
    }
}
