//! The Lambda entry point: configuration and clients once per cold start, then one handler.

use std::sync::Arc;

use ihome_register::edge::{app, config::Config, http};
use lambda_http::{Error, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let service = Arc::new(app::build(&config).await?);
    lambda_http::run(service_fn(move |req| {
        let service = service.clone();
        async move { Ok::<_, Error>(http::handle(service, req).await) }
    }))
    .await
}
