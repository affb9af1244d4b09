//! The one-time SMS codes, in Redis under `sms_code_<mobile>` (the key the iHome code issuer
//! writes, as a bare code with a TTL).
//!
//! A request does not delete the code outright; it *claims* it, in one atomic script:
//! - the right code is marked as claimed by the request (its claim id) for a lease, so no other
//!   request can pass with it. The request then *consumes* it once the user is stored, or
//!   *releases* it when storing failed for a reason not the user's, so the user can retry;
//! - a wrong code counts against the stored code, which is deleted at the `attempts`-th wrong
//!   try (6 digits, 5 tries: 1 in 200,000 per code issued). A new code from the issuer replaces
//!   the record and so starts its count afresh. (Counting instead of deleting at the first wrong
//!   try is what lets a request still carrying the previous code, after a resend, leave the new
//!   one usable.)
//!
//! Claiming is what makes a lost reply harmless. When Redis ran the claim but its reply came too
//! late, the request releases its claim before answering 503 (the release queues behind the
//! claim and undoes it); if even that cannot reach Redis, the lease runs out and the code is
//! usable again. A claim is idempotent for its own id, so resending it after a dropped
//! connection is safe. Only Redis's own clock (`TIME`) is compared with the lease.
//!
//! A release after a user write whose outcome is unknown (every attempt timed out: DynamoDB may
//! have stored the user) *remembers the pending user id* in the record. The next request that
//! proves the same code gets it back from its claim, creates the user under that id, and may
//! replace an item with that id (and only that id). A wrong code never sees it; a new code from
//! the issuer (a plain `SET`) replaces the record and forgets it.
//!
//! Once a request has looked at it the key holds `<code>|<wrong tries>|<claim id>|<lease end, ms>`,
//! then `|<pending user id>` only if one is remembered, with the TTL the issuer gave it
//! (`KEEPTTL`); the one-key layout keeps it valid for Redis Cluster too. Without a pending id the
//! record is the previous version's, so instances of both can run side by side during a
//! deployment (an old one would misread only a record with a pending id).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use secrecy::SecretString;
use uuid::Uuid;

use crate::core::domain::{Mobile, SmsCode};
use crate::core::ports::{Attempt, ClaimId, SmsCodeStore, SmsStoreError, UserId};
use crate::stores::redis::Redis;

/// The key of a registration code (the one the iHome issuer has always written).
pub fn key(mobile: &Mobile) -> String {
    Purpose::Register.key(mobile)
}

/// What a code was issued for; each purpose has its own key, so a code can serve no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `sms_code_<mobile>`: registering a new number.
    Register,
    /// `sms_code_reset_<mobile>`: resetting a forgotten password (sent to registered numbers).
    Reset,
}

impl Purpose {
    pub fn key(self, mobile: &Mobile) -> String {
        match self {
            Purpose::Register => format!("sms_code_{}", mobile.as_str()),
            Purpose::Reset => format!("sms_code_reset_{}", mobile.as_str()),
        }
    }
}

/// Reads a record, `code|wrong|owner|lease end` then `|pending` if any; anything else is the
/// issuer's bare code (`nil`). `record` writes one. Prepended to each script.
const PARSE: &str = r"
local function parse(v)
  local code, wrong, owner, ends, pending = string.match(v, '^(%d+)|(%d+)|(%x*)|(%d+)|(%x*)$')
  if code then return code, wrong, owner, ends, pending end
  code, wrong, owner, ends = string.match(v, '^(%d+)|(%d+)|(%x*)|(%d+)$')
  if code then return code, wrong, owner, ends, '' end
  return nil
end
local function record(code, wrong, owner, ends, pending)
  local r = code .. '|' .. wrong .. '|' .. owner .. '|' .. ends
  if pending ~= '' then r = r .. '|' .. pending end
  return r
end
";

/// KEYS[1] the code; ARGV: typed code, claim id, lease ms, wrong tries allowed. Answers
/// `claimed` (with ` <pending user id>` when the record remembers one), `missing`, `in_use`,
/// `wrong` or `burnt`; only a request that typed the right code learns the pending id.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 'missing' end
local code, wrong, owner, ends, pending = parse(v)
if not code then code, wrong, owner, ends, pending = v, '0', '', '0', '' end
if code ~= ARGV[1] then
  wrong = tonumber(wrong) + 1
  if wrong >= tonumber(ARGV[4]) then
    redis.call('DEL', KEYS[1])
    return 'burnt'
  end
  redis.call('SET', KEYS[1], record(code, wrong, owner, ends, pending), 'KEEPTTL')
  return 'wrong'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if owner ~= '' and owner ~= ARGV[2] and now < tonumber(ends) then return 'in_use' end
redis.call('SET', KEYS[1], record(code, wrong, ARGV[2], now + tonumber(ARGV[3]), pending), 'KEEPTTL')
if pending ~= '' then return 'claimed ' .. pending end
return 'claimed'
";

/// KEYS[1] the code; ARGV[1] claim id. Deletes it if that claim holds it.
const CONSUME: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local code, _, owner = parse(v)
if code and owner == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS[1] the code; ARGV[1] claim id, ARGV[2] the pending user id to remember ('' keeps the one
/// there). Clears the claim (keeping the wrong-try count).
const RELEASE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local code, wrong, owner, _, pending = parse(v)
if not code or owner ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then pending = ARGV[2] end
redis.call('SET', KEYS[1], record(code, wrong, '', '0', pending), 'KEEPTTL')
return 1
";

/// The scripts as sent to Redis: the shared parser, then the body.
static SOURCES: LazyLock<[String; 3]> =
    LazyLock::new(|| [CLAIM, CONSUME, RELEASE].map(|body| format!("{PARSE}{body}")));

static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&SOURCES[0]));
static CONSUME_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&SOURCES[1]));
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(&SOURCES[2]));

/// The Redis adapter for SMS codes, on the instance's shared connection.
#[derive(Clone)]
pub struct RedisSmsCodes {
    redis: Redis,
    rules: CodeRules,
    purpose: Purpose,
}

/// How long a claim lasts and how many wrong tries a code takes.
#[derive(Debug, Clone, Copy)]
pub struct CodeRules {
    pub lease: Duration,
    pub attempts: u32,
}

/// The scripts' sources, for [`Redis::warm_up`].
pub fn scripts() -> impl Iterator<Item = &'static str> {
    SOURCES.iter().map(String::as_str)
}

impl RedisSmsCodes {
    /// On a connection of its own (see [`Redis::new`]).
    pub fn new(
        url: &SecretString,
        timeout: Duration,
        rules: CodeRules,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self::on(Redis::new(url, timeout)?, rules))
    }

    /// As [`RedisSmsCodes::new`], for a client built otherwise (e.g. trusting another CA).
    pub fn with_client(
        client: redis::Client,
        timeout: Duration,
        rules: CodeRules,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self::on(Redis::with_client(client, timeout)?, rules))
    }

    /// Registration codes, on a shared connection.
    pub fn on(redis: Redis, rules: CodeRules) -> Self {
        Self {
            redis,
            rules,
            purpose: Purpose::Register,
        }
    }

    /// Codes for `purpose` instead.
    pub fn for_purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// Connects and loads the scripts ahead of the first request, waiting at most `limit`.
    pub async fn warm_up(&self, limit: Duration) {
        self.redis.warm_up(limit, scripts()).await
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &'static Script,
        mobile: &Mobile,
        args: &[&str],
    ) -> Result<T, SmsStoreError> {
        self.redis
            .run(script, &[&self.purpose.key(mobile)], args)
            .await
            .map_err(|e| SmsStoreError::new(e.to_string()))
    }
}

impl SmsCodeStore for RedisSmsCodes {
    async fn claim(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        claim: &ClaimId,
    ) -> Result<Attempt, SmsStoreError> {
        let lease = self.rules.lease.as_millis().to_string();
        let attempts = self.rules.attempts.to_string();
        let args = [code.expose(), claim.as_str(), &lease, &attempts];
        let found: String = self.run(&CLAIM_SCRIPT, mobile, &args).await?;
        if let Some(pending) = found.strip_prefix("claimed ") {
            let pending = Uuid::try_parse(pending)
                .map_err(|_| SmsStoreError::new("unreadable pending user id"))?;
            return Ok(Attempt::Claimed {
                pending: Some(pending),
            });
        }
        Ok(match found.as_str() {
            "claimed" => Attempt::Claimed { pending: None },
            "missing" => Attempt::Missing,
            "in_use" => Attempt::InUse,
            "wrong" => Attempt::Wrong { burnt: false },
            "burnt" => Attempt::Wrong { burnt: true },
            other => {
                return Err(SmsStoreError::new(format!(
                    "unexpected claim reply {other:?}"
                )));
            }
        })
    }

    async fn consume(&self, mobile: &Mobile, claim: &ClaimId) -> Result<bool, SmsStoreError> {
        let deleted: i64 = self.run(&CONSUME_SCRIPT, mobile, &[claim.as_str()]).await?;
        Ok(deleted == 1)
    }

    async fn release(
        &self,
        mobile: &Mobile,
        claim: &ClaimId,
        pending: Option<UserId>,
    ) -> Result<bool, SmsStoreError> {
        let pending = pending
            .map(|id| id.simple().to_string())
            .unwrap_or_default();
        let released: i64 = self
            .run(&RELEASE_SCRIPT, mobile, &[claim.as_str(), &pending])
            .await?;
        Ok(released == 1)
    }
}
