//! The Lambda entry point: configuration and clients once per cold start, then one handler.

use std::sync::Arc;

use ihome_register::edge::{app, config::Config, http, phases};
use lambda_http::{Error, service_fn};

fn main() -> Result<(), Error> {
    phases::mark("main");
    // The longest step of the set-up, started before anything else; `app::build` waits for it.
    std::thread::spawn(app::prepare);
    // What `#[tokio::main(flavor = "current_thread")]` builds, written out so the profile can
    // time it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    phases::mark("tokio runtime");
    runtime.block_on(serve())
}

async fn serve() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    phases::mark("tracing subscriber");
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    phases::mark("config");
    let service = Arc::new(app::build(&config).await?);
    phases::report();
    lambda_http::run(service_fn(move |req| {
        let service = service.clone();
        async move { Ok::<_, Error>(http::handle(service, req).await) }
    }))
    .await
}
