//! `ihome-import`: brings the iHome site's users (`ih_user_profile`, MySQL/MariaDB, SQLite or a
//! JSON Lines export) into the function's DynamoDB table, werkzeug hashes as they are, so they
//! keep their accounts and passwords when sign-up and login move to the function.
//!
//! `legacy` reads the rows, `rows` judges them (with the function's own `Mobile::parse`),
//! `store` writes one user the function's way, `run` ties them together with the report and the
//! progress. See docs/migration.md.

pub mod legacy;
pub mod rows;
pub mod run;
pub mod store;

/// A DynamoDB client with the function's own settings (`ihome_register::edge::app::dynamodb_client`:
/// per-attempt and connect timeouts, 3 attempts, its throttling backoff), pointed at `endpoint`
/// when given (otherwise the SDK's own: `AWS_ENDPOINT_URL_DYNAMODB`, the region's).
pub async fn dynamodb_client(
    timeout: std::time::Duration,
    endpoint: Option<&str>,
) -> aws_sdk_dynamodb::Client {
    let client = ihome_register::edge::app::dynamodb_client_with(timeout).await;
    match endpoint {
        Some(url) => aws_sdk_dynamodb::Client::from_conf(
            client.config().to_builder().endpoint_url(url).build(),
        ),
        None => client,
    }
}
