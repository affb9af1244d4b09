//! The floor the function's init is compared with: lambda_http's runtime, its default tracing
//! subscriber and a handler answering 200, nothing else.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::builder().status(200).body(Body::from("hello"))?)
    }))
    .await
}
