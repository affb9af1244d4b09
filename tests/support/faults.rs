//! A fault-injecting HTTP proxy in front of the DynamoDB server, for faults a real server cannot
//! produce on demand: throttling answers, a hung endpoint, a reply that arrives too late.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Forward it and return the answer.
    Pass,
    /// Answer 400 ThrottlingException without forwarding.
    Throttle,
    /// Answer 400 ProvisionedThroughputExceededException without forwarding.
    ThroughputExceeded,
    /// Never answer (a hung endpoint); nothing is forwarded.
    Hang,
    /// Forward it (so DynamoDB acts on it), then hold the answer back this long.
    LateReply(Duration),
}

pub struct DynamoProxy {
    pub url: String,
    seen: Arc<AtomicUsize>,
}

impl DynamoProxy {
    /// Proxies to `upstream` (`http://host:port`): the first requests meet `plan` in order,
    /// the rest `then`.
    pub async fn start(upstream: &str, plan: Vec<Fault>, then: Fault) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let plan = Arc::new(Mutex::new(VecDeque::from(plan)));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (plan, counter, upstream) = (plan.clone(), counter.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let fault = plan.lock().unwrap().pop_front().unwrap_or(then);
                        handle(fault, req, upstream.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, seen }
    }

    /// How many requests reached the proxy.
    pub fn requests(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

fn refusal(kind: &str) -> Response<Full<Bytes>> {
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the test proxy"}}"#
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.0".parse().unwrap(),
    );
    r
}

async fn handle(
    fault: Fault,
    req: Request<Incoming>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match fault {
        Fault::Throttle => Ok(refusal("ThrottlingException")),
        Fault::ThroughputExceeded => Ok(refusal("ProvisionedThroughputExceededException")),
        Fault::Hang => std::future::pending().await,
        Fault::Pass => Ok(forward(req, &upstream).await),
        Fault::LateReply(delay) => {
            let answer = forward(req, &upstream).await;
            tokio::time::sleep(delay).await; // the injected fault itself, not a synchronisation
            Ok(answer)
        }
    }
}

async fn forward(req: Request<Incoming>, upstream: &str) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let stream = TcpStream::connect(upstream).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Full::new(body.collect().await.unwrap().to_bytes()))
}
