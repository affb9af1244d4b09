//! The users table in DynamoDB, keyed by `mobile`. A user is written once, with a conditional
//! put, so a number registers once whatever the race. The one item a put may replace is the one
//! an earlier request with the same SMS code may have stored under the same (pending) user id,
//! when that request could not learn whether its write landed. A login reads the item (strongly
//! consistent: a user who has just registered can log in at once) and may replace its password
//! hash, only if it is still the one the login verified.
//!
//! The item's `session_version` (absent = 0) is the durable record of what ended the user's
//! sessions: log out everywhere, a password change or reset and a disable increment it, each in
//! one conditional update; `disabled` (BOOL) is written by the operator command only.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::core::domain::Mobile;
use crate::core::ports::{NewUser, StoredUser, UserId, UserStore, UserStoreError};

/// The DynamoDB adapter. Needs `dynamodb:PutItem` (registration), `dynamodb:GetItem` of
/// `user_id`, `name`, `password_hash`, `session_version` and `disabled`, and
/// `dynamodb:UpdateItem` of `password_hash` and `session_version` on the table.
#[derive(Clone, Debug)]
pub struct DynamoUsers {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoUsers {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl UserStore for DynamoUsers {
    async fn insert(&self, user: &NewUser) -> Result<(), UserStoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let user_id = user.user_id.to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("mobile", s(user.mobile.as_str()))
            .item("user_id", s(&user_id))
            .item("name", s(user.mobile.as_str()))
            .item("password_hash", s(&user.password_hash))
            .item("created_at", s(&rfc3339(user.created_at)))
            .condition_expression(if user.replaces_pending {
                "attribute_not_exists(mobile) OR user_id = :pending"
            } else {
                "attribute_not_exists(mobile)"
            })
            .set_expression_attribute_values(
                user.replaces_pending
                    .then(|| [(":pending".to_owned(), s(&user_id))].into()),
            )
            // If an attempt timed out after DynamoDB stored the item, the SDK's retry meets the
            // condition: the old item then tells whether the winner was this very request.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(failed)) = err.as_service_error()
        {
            {
                let winner = failed
                    .item()
                    .and_then(|item| item.get("user_id"))
                    .and_then(|v| v.as_s().ok());
                return if winner == Some(&user_id) {
                    Ok(())
                } else {
                    Err(UserStoreError::Exists)
                };
            }
        }
        Err(UserStoreError::Unavailable(describe(&err)))
    }

    async fn find(&self, mobile: &Mobile) -> Result<Option<StoredUser>, UserStoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("mobile", AttributeValue::S(mobile.as_str().to_owned()))
            .consistent_read(true)
            .projection_expression("user_id, #name, password_hash, session_version, disabled")
            .expression_attribute_names("#name", "name")
            .send()
            .await
            .map_err(|e| UserStoreError::Unavailable(describe(&e)))?;
        let Some(item) = got.item else {
            return Ok(None);
        };
        let text = |field: &str| item.get(field).and_then(|v| v.as_s().ok());
        let unreadable =
            |field| UserStoreError::Unavailable(format!("item without a usable {field}"));
        let user_id = text("user_id")
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
            .ok_or_else(|| unreadable("user_id"))?;
        // A damaged hash is the item's problem, not the store's: the login answers it as a wrong
        // password (issue 20), so it cannot tell anyone that the number has an item, nor raise
        // the outage alarm.
        let (password_hash, damaged) = match item.get("password_hash") {
            Some(AttributeValue::S(hash)) => (hash.as_str(), None),
            None => ("", Some("the item has no password_hash")),
            Some(AttributeValue::Null(_)) => ("", Some("the item's password_hash is NULL")),
            Some(_) => ("", Some("the item's password_hash is not a string")),
        };
        let session_version = version_of(&item)?;
        Ok(Some(StoredUser {
            user_id,
            name: text("name")
                .map_or(mobile.as_str(), String::as_str)
                .to_owned(),
            password_hash: password_hash.to_owned(),
            session_version,
            disabled: matches!(item.get("disabled"), Some(AttributeValue::Bool(true))),
            damaged,
        }))
    }

    async fn replace_hash(
        &self,
        mobile: &Mobile,
        old: &str,
        new: &str,
    ) -> Result<bool, UserStoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("mobile", s(mobile.as_str()))
            .update_expression("SET password_hash = :new")
            .condition_expression("password_hash = :old")
            .expression_attribute_values(":new", s(new))
            .expression_attribute_values(":old", s(old))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(UserStoreError::Unavailable(describe(&err))),
            },
        }
    }

    async fn end_sessions(
        &self,
        mobile: &Mobile,
        user_id: UserId,
    ) -> Result<Option<u64>, UserStoreError> {
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("mobile", AttributeValue::S(mobile.as_str().to_owned()))
            .update_expression("SET session_version = if_not_exists(session_version, :zero) + :one")
            .condition_expression("user_id = :user")
            .expression_attribute_values(":zero", n("0"))
            .expression_attribute_values(":one", n("1"))
            .expression_attribute_values(":user", AttributeValue::S(user_id.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => version_of(&out.attributes.unwrap_or_default()).map(Some),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(UserStoreError::Unavailable(describe(&err))),
            },
        }
    }

    async fn replace_password(
        &self,
        mobile: &Mobile,
        seen: &StoredUser,
        new_hash: &str,
    ) -> Result<Option<u64>, UserStoreError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: u64| AttributeValue::N(v.to_string());
        let next = seen.session_version + 1;
        let version_unchanged = if seen.session_version == 0 {
            "(attribute_not_exists(session_version) OR session_version = :seen)"
        } else {
            "session_version = :seen"
        };
        // The hash that was read, or (a damaged item, which a reset repairs) still no string.
        let (hash_unchanged, old) = match seen.damaged {
            None => ("password_hash = :old", s(&seen.password_hash)),
            Some(_) => (
                "(attribute_not_exists(password_hash) OR NOT attribute_type(password_hash, :old))",
                s("S"),
            ),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("mobile", s(mobile.as_str()))
            .update_expression("SET password_hash = :new, session_version = :next")
            .condition_expression(format!(
                "user_id = :user AND {hash_unchanged} AND {version_unchanged}"
            ))
            .expression_attribute_values(":new", s(new_hash))
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":user", s(&seen.user_id.to_string()))
            .expression_attribute_values(":old", old)
            .expression_attribute_values(":seen", n(seen.session_version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(next)),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(UserStoreError::Unavailable(describe(&err))),
            },
        }
    }
}

impl DynamoUsers {
    /// The operator's switch (`ihome-account`): `disabled` set (and every session ended: the
    /// version incremented) or removed. The user's id and session version after it, or `None`
    /// when no user has that mobile.
    pub async fn set_disabled(
        &self,
        mobile: &Mobile,
        disabled: bool,
    ) -> Result<Option<(UserId, u64)>, UserStoreError> {
        let key = AttributeValue::S(mobile.as_str().to_owned());
        // Only what the switch needs: the operator never reads a hash or a name.
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("mobile", key.clone())
            .consistent_read(true)
            .projection_expression("user_id, session_version")
            .send()
            .await
            .map_err(|e| UserStoreError::Unavailable(describe(&e)))?;
        let Some(item) = got.item else {
            return Ok(None);
        };
        let user_id = item
            .get("user_id")
            .and_then(|v| v.as_s().ok())
            .and_then(|id| uuid::Uuid::try_parse(id).ok())
            .ok_or_else(|| UserStoreError::Unavailable("item without a usable user_id".into()))?;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("mobile", key)
            // Still that user's item (not deleted and registered again meanwhile).
            .condition_expression("user_id = :user")
            .expression_attribute_values(":user", AttributeValue::S(user_id.to_string()));
        let update = if disabled {
            update
                .update_expression(
                    "SET disabled = :yes, session_version = if_not_exists(session_version, :zero) + :one",
                )
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .return_values(ReturnValue::UpdatedNew)
        } else {
            update.update_expression("REMOVE disabled")
        };
        let out = match update.send().await {
            Ok(out) => out,
            Err(err) => {
                return match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                    _ => Err(UserStoreError::Unavailable(describe(&err))),
                };
            }
        };
        let version = match disabled {
            true => version_of(&out.attributes.unwrap_or_default())?,
            false => version_of(&item)?,
        };
        Ok(Some((user_id, version)))
    }
}

/// The `session_version` of an item (absent: 0).
fn version_of(
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Result<u64, UserStoreError> {
    match item.get("session_version") {
        None => Ok(0),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                UserStoreError::Unavailable("item without a usable session_version".into())
            }),
    }
}

/// `at` as RFC 3339 UTC with exactly three fraction digits, e.g. `2026-11-24T08:16:01.120Z`: one
/// width for every item, so the strings sort as the times do (the SDK's formatter alone trims
/// zeros, and `…:01Z` would sort after `…:01.5Z`).
pub fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = DateTime::from_secs(since.as_secs() as i64)
        .fmt(DateTimeFormat::DateTime)
        .expect("a time after 1970 formats as RFC 3339");
    let seconds = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{seconds}.{:03}Z", since.subsec_millis())
}

/// Names a failure without echoing the request (service messages can quote item values).
fn describe<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(e) if e.is_timeout() => "timeout while connecting".to_owned(),
        SdkError::DispatchFailure(e) if e.is_io() => "connection failed".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request construction failed".to_owned(),
        _ => "unknown failure".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn created_at_always_has_three_fraction_digits() {
        for (millis, want) in [
            (1_795_507_200_000, "2026-11-24T08:00:00.000Z"),
            (1_795_507_200_120, "2026-11-24T08:00:00.120Z"),
            (1_795_507_201_007, "2026-11-24T08:00:01.007Z"),
            (0, "1970-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_millis(millis)), want);
        }
        let (a, b) = (
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_795_507_201_000)),
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_795_507_201_500)),
        );
        assert!(a < b, "{a} sorts before {b}");
    }
}
