//! The users table in DynamoDB, keyed by `mobile`. A user is written once, with a conditional
//! put, so a number registers once whatever the race. The one item a put may replace is the one
//! an earlier request with the same SMS code may have stored under the same (pending) user id,
//! when that request could not learn whether its write landed.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use crate::core::ports::{NewUser, UserStore, UserStoreError};

/// The DynamoDB adapter. Needs only `dynamodb:PutItem` on the table.
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
}

/// `at` as RFC 3339 UTC with milliseconds, e.g. `2026-11-24T08:16:01.123Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let millis = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    DateTime::from_millis(millis)
        .fmt(DateTimeFormat::DateTime)
        .expect("a time after 1970 formats as RFC 3339")
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
