//! Login throttles in Redis: three failure counts per attempt, under
//! `login_fail:ms:<mobile>:<source>`, `login_fail:s:<source>` and `login_fail:m:<mobile>`, each
//! expiring a window after its first failure (and again a window after the failure that reached
//! its limit, so reaching it refuses for a whole window).
//!
//! An attempt is counted *before* its password is verified, in the same atomic script that checks
//! the limits: attempts arriving together each take a place, and once a limit's worth are in
//! flight the next is refused, so no more than the limit are ever verified whatever the
//! concurrency. A success then clears the (mobile, source) count and gives its place back in the
//! other two; an attempt that was never judged (the user store failed) gives every place back.
//! A refused attempt is not counted: hammering a locked account does not extend the lock.
//!
//! The script touches three keys, which Redis Cluster would need in one hash slot; the template's
//! replication group runs with cluster mode disabled, as the SMS codes' one-key scripts allow.
//! A command resent after a dropped connection may count one attempt twice: a failure too many,
//! never one too few.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::core::domain::{Mobile, Source};
use crate::core::ports::{Admission, Limits, LoginThrottle, ThrottleError};
use crate::stores::redis::Redis;

/// KEYS: per (mobile, source), per source, per mobile. ARGV: each one's limit, then its window in
/// ms. Answers 0 when the attempt is admitted (and counted), else the ms until it may be retried.
const ADMIT: &str = r"
local wait = 0
for i = 1, 3 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      ttl = tonumber(ARGV[2 * i])
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, 3 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 or n >= tonumber(ARGV[2 * i - 1]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
  end
end
return 0
";

/// KEYS as for ADMIT; ARGV[1] `succeeded` or `withdraw`. A success deletes the (mobile, source)
/// count; either gives the attempt's place back in the others (never below zero, TTLs kept).
const SETTLE: &str = r"
local first = 1
if ARGV[1] == 'succeeded' then
  redis.call('DEL', KEYS[1])
  first = 2
end
for i = first, 3 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
";

static ADMIT_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ADMIT));
static SETTLE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(SETTLE));

/// The scripts' sources, for [`Redis::warm_up`].
pub fn scripts() -> impl Iterator<Item = &'static str> {
    [ADMIT, SETTLE].into_iter()
}

/// The keys of an attempt's three counts.
pub fn keys(mobile: &Mobile, source: &Source) -> [String; 3] {
    let (m, s) = (mobile.as_str(), source.as_str());
    [
        format!("login_fail:ms:{m}:{s}"),
        format!("login_fail:s:{s}"),
        format!("login_fail:m:{m}"),
    ]
}

/// The Redis adapter for login throttles, on the instance's shared connection.
#[derive(Clone)]
pub struct RedisThrottle {
    redis: Redis,
    limits: Limits,
}

impl RedisThrottle {
    pub fn on(redis: Redis, limits: Limits) -> Self {
        Self { redis, limits }
    }

    async fn settle(
        &self,
        how: &str,
        mobile: &Mobile,
        source: &Source,
    ) -> Result<(), ThrottleError> {
        let keys = keys(mobile, source);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.redis
            .run::<i64>(&SETTLE_SCRIPT, &keys, &[how])
            .await
            .map(drop)
            .map_err(|e| ThrottleError::new(e.to_string()))
    }
}

impl LoginThrottle for RedisThrottle {
    async fn admit(&self, mobile: &Mobile, source: &Source) -> Result<Admission, ThrottleError> {
        let keys = keys(mobile, source);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let l = &self.limits;
        let args: Vec<String> = [l.per_mobile_source, l.per_source, l.per_mobile]
            .iter()
            .flat_map(|limit| {
                [
                    limit.failures.to_string(),
                    limit.window.as_millis().to_string(),
                ]
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let wait: i64 = self
            .redis
            .run(&ADMIT_SCRIPT, &keys, &args)
            .await
            .map_err(|e| ThrottleError::new(e.to_string()))?;
        Ok(match wait {
            ..=0 => Admission::Admitted,
            ms => Admission::Refused {
                retry_after: Duration::from_millis(ms as u64),
            },
        })
    }

    async fn succeeded(&self, mobile: &Mobile, source: &Source) -> Result<(), ThrottleError> {
        self.settle("succeeded", mobile, source).await
    }

    async fn withdraw(&self, mobile: &Mobile, source: &Source) -> Result<(), ThrottleError> {
        self.settle("withdraw", mobile, source).await
    }

    async fn forgive(&self, mobile: &Mobile, source: &Source) -> Result<(), ThrottleError> {
        let [mobile_source, _, mobile_only] = keys(mobile, source);
        self.redis
            .with_reconnect(|mut conn| {
                let keys = [mobile_source.clone(), mobile_only.clone()];
                async move {
                    redis::cmd("DEL")
                        .arg(&keys)
                        .query_async::<i64>(&mut conn)
                        .await
                }
            })
            .await
            .map(drop)
            .map_err(|e| ThrottleError::new(e.to_string()))
    }
}
