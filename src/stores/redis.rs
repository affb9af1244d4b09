//! The one Redis connection of an instance, shared by the SMS codes and the login throttles:
//! made lazily (Redis down at cold start gives 503 answers, not a failed init), remade by
//! redis-rs after it drops, and every call bounded by the configured timeout.

use std::future::Future;
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
}

impl Redis {
    /// `timeout` bounds both connecting and each reply. A connection found dead is remade and
    /// the command sent once more, inside the same request (see `with_reconnect`).
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, redis::RedisError> {
        Self::with_client(redis::Client::open(url.expose_secret())?, timeout)
    }

    /// As [`Redis::new`], for a client built otherwise (e.g. trusting another CA).
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

    /// Connects and loads `scripts` ahead of the first request (Lambda runs init at full CPU),
    /// in one pipelined round trip, waiting at most `limit`. A failure is only logged: the first
    /// request connects again, and a script Redis does not hold is sent with its call
    /// (`NOSCRIPT`, then `EVAL`).
    pub async fn warm_up<'a>(&self, limit: Duration, scripts: impl IntoIterator<Item = &'a str>) {
        let scripts: Vec<&str> = scripts.into_iter().collect();
        let load = self.with_reconnect(|mut conn| {
            let mut pipe = redis::pipe();
            for script in &scripts {
                pipe.cmd("SCRIPT").arg("LOAD").arg(*script);
            }
            async move { pipe.query_async::<Vec<String>>(&mut conn).await }
        });
        match tokio::time::timeout(limit, load).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "redis not reachable at cold start"),
            Err(_) => tracing::warn!("redis did not answer at cold start"),
        }
    }

    /// Runs `op`, and once more if the connection turned out to be dead (for example closed by
    /// the server while the function was frozen). A timeout is not retried here: the caller
    /// decides (a code's claim is released instead). Every script of this crate is idempotent
    /// for its caller's ids or counts an attempt the caller then settles, so a command sent
    /// twice after a dropped connection does no harm.
    pub async fn with_reconnect<T, F, Fut>(&self, op: F) -> redis::RedisResult<T>
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
    }

    /// Runs `script` over `keys` with `args` (`EVALSHA`, or `EVAL` when Redis lost it).
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> redis::RedisResult<T> {
        self.with_reconnect(|mut conn| {
            let mut call = script.prepare_invoke();
            for key in keys {
                call.key(*key);
            }
            for arg in args {
                call.arg(*arg);
            }
            async move { call.invoke_async(&mut conn).await }
        })
        .await
    }
}
