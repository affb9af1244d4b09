//! Writing one imported user: the item the function writes, plus `legacy_id`, under the same
//! `attribute_not_exists(mobile)` condition, so an import never replaces anyone.

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use uuid::Uuid;

use crate::rows::Candidate;

/// What one put came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Imported {
        user_id: String,
    },
    /// The mobile holds an item an import wrote (it has a `legacy_id`).
    AlreadyImported {
        user_id: String,
        legacy_id: Option<i64>,
    },
    /// The mobile holds a user who registered through the function (no `legacy_id`).
    RegisteredThroughFunction {
        user_id: String,
    },
    /// Not throttling, and still failing after the SDK's retries: the DynamoDB error code.
    Failed {
        error: String,
    },
}

/// Throttling error codes: the user is retried after a backoff of our own, never dropped.
pub const THROTTLING: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

/// A put whose every attempt timed out (or met a 500/503) is retried after the same backoff,
/// this many times, before it is reported `failed`: an overloaded store answers late rather than
/// throttles, and the retry is safe (the same user id meets its own item if it landed).
pub const TRANSIENT_ROUNDS: u32 = 5;

/// Why a put waited before trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Throttled,
    /// Timeouts or a 500/503 after the SDK's retries.
    Slow,
}

/// The first wait after throttling has outlasted the SDK's retries; it doubles up to `MAX`,
/// each wait a random part of that ("full jitter"), so throttled writers spread out.
pub const BACKOFF_BASE: Duration = Duration::from_millis(200);
pub const BACKOFF_MAX: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
pub struct Writer {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

/// The item's `created_at`, formatted by the function's own code (RFC 3339 UTC, milliseconds).
pub fn created_at_text(when: SystemTime) -> String {
    ihome_register::stores::users::rfc3339(when)
}

/// A UUIDv7, as the function makes, whose time is the user's creation: ids stay in sign-up order.
pub fn user_id_for(when: SystemTime) -> Uuid {
    let since = when
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        since.as_secs(),
        since.subsec_nanos(),
    ))
}

impl Writer {
    /// Puts `c`, created at `when` (the row's time, or the run's start when it has none).
    /// Throttling that outlasts the SDK's own retries is waited out here, for as long as it
    /// takes; timeouts and 500/503s, `TRANSIENT_ROUNDS` times. `waited` is called at each wait.
    pub async fn put(&self, c: &Candidate, when: SystemTime, waited: impl Fn(Wait)) -> Outcome {
        let user_id = user_id_for(when);
        let id_text = user_id.to_string();
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let (mut attempt, mut slow_rounds) = (0u32, 0u32);
        loop {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("mobile", s(c.mobile.as_str()))
                .item("user_id", s(&id_text))
                .item("name", s(&c.name))
                .item("password_hash", s(&c.password_hash))
                .item("created_at", s(&created_at_text(when)))
                .item("legacy_id", AttributeValue::N(c.legacy_id.to_string()))
                .condition_expression("attribute_not_exists(mobile)")
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Outcome::Imported { user_id: id_text },
                Err(err) => err,
            };
            if let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                err.as_service_error()
            {
                let old = failed.item();
                let field = |k: &str| old.and_then(|i| i.get(k));
                let existing = field("user_id")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                // An attempt that timed out after DynamoDB stored it meets its own item on the
                // SDK's retry: that is this put, landed.
                if existing == id_text {
                    return Outcome::Imported { user_id: id_text };
                }
                return match field("legacy_id") {
                    Some(v) => Outcome::AlreadyImported {
                        user_id: existing,
                        legacy_id: v.as_n().ok().and_then(|n| n.parse().ok()),
                    },
                    None => Outcome::RegisteredThroughFunction { user_id: existing },
                };
            }
            let code = err.code().unwrap_or_default();
            let wait = if THROTTLING.contains(&code) {
                Some(Wait::Throttled)
            } else if is_slow(&err) && slow_rounds < TRANSIENT_ROUNDS {
                slow_rounds += 1;
                Some(Wait::Slow)
            } else {
                None
            };
            if let Some(wait) = wait {
                waited(wait);
                tokio::time::sleep(backoff(attempt)).await;
                attempt = attempt.saturating_add(1);
                continue;
            }
            return Outcome::Failed {
                error: describe(&err),
            };
        }
    }
}

/// No answer in time, or the service's own 500/503: the store is overloaded, not the request
/// wrong. (A refused connection is not: that fails at once, and 50 in a row stop the run.)
fn is_slow<E: ProvideErrorMetadata, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool {
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(e) => e.is_timeout(),
        SdkError::ServiceError(_) => matches!(
            err.code(),
            Some("InternalServerError" | "ServiceUnavailable")
        ),
        _ => false,
    }
}

/// A random wait of up to `BASE * 2^attempt`, at most `MAX`.
pub fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_BASE
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_MAX);
    cap.mul_f64(fastrand::f64())
}

/// The failure's error code, or its kind when no answer came; never the request (a service
/// message can quote item values).
fn describe<E: ProvideErrorMetadata, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String {
    use aws_sdk_dynamodb::error::SdkError;
    if let Some(code) = err.code() {
        return code.to_owned();
    }
    match err {
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(e) if e.is_io() => "connection failed",
        SdkError::DispatchFailure(e) if e.is_timeout() => "timeout while connecting",
        _ => "no usable answer",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        for attempt in 0..40 {
            let cap = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(BACKOFF_MAX);
            for _ in 0..50 {
                assert!(backoff(attempt) <= cap, "attempt {attempt}");
            }
        }
        let waits: Vec<_> = (0..50).map(|_| backoff(3)).collect();
        assert!(
            waits.iter().any(|w| *w != waits[0]),
            "jittered, not one fixed wait"
        );
    }

    #[test]
    fn user_ids_are_v7_at_the_users_creation() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_millis(1_690_819_200_123);
        let id = user_id_for(when);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_690_819_200, 123));
        assert_ne!(user_id_for(when), id, "random bits differ");
    }
}
