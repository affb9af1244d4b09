//! A fault-injecting HTTP proxy in front of the DynamoDB server, for faults a real server cannot
//! produce on demand: throttling answers, a hung endpoint, a reply that arrives too late, other
//! error answers, and the network latency of the real service (the importer's tests and
//! benchmark include this file too).

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
    /// Hold the request this long, then forward it: a round trip's latency to the real service
    /// (once per request, not each way).
    Delay(Duration),
    /// Answer 400 with this error type (e.g. `ValidationException`) without forwarding.
    Error(&'static str),
    /// Answer 200 `{}` (a put that landed) after this long, forwarding nothing: a DynamoDB that is
    /// never the bottleneck, to measure a client alone.
    Accept(Duration),
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
        Fault::Error(kind) => Ok(refusal(kind)),
        Fault::Accept(delay) => {
            tokio::time::sleep(delay).await; // the injected latency itself
            let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
            r.headers_mut().insert(
                "content-type",
                "application/x-amz-json-1.0".parse().unwrap(),
            );
            Ok(r)
        }
        Fault::Pass => Ok(forward(req, &upstream).await),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await; // the injected latency itself
            Ok(forward(req, &upstream).await)
        }
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

/// Which way a [`RedisProxy`] holds bytes back, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lag {
    None,
    /// Commands reach Redis at once (so it acts on them); its replies come this late.
    Replies(Duration),
    /// Commands reach Redis this late (after the client gave up on them).
    Requests(Duration),
}

/// A TCP proxy in front of a Redis server that can delay either direction, keeping the order of
/// the bytes on each connection.
pub struct RedisProxy {
    pub url: String,
    lag: tokio::sync::watch::Sender<Lag>,
    /// How many chunks are being held back, on every connection.
    held: tokio::sync::watch::Sender<usize>,
}

impl RedisProxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let (lag, _) = tokio::sync::watch::channel(Lag::None);
        let held = tokio::sync::watch::Sender::new(0usize);
        let (lags, helds) = (lag.clone(), held.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (client_r, client_w) = client.into_split();
                let (server_r, server_w) = server.into_split();
                let up = |l: Lag| match l {
                    Lag::Requests(d) if !d.is_zero() => Some(d),
                    _ => None,
                };
                let down = |l: Lag| match l {
                    Lag::Replies(d) if !d.is_zero() => Some(d),
                    _ => None,
                };
                tokio::spawn(pump(
                    client_r,
                    server_w,
                    lags.subscribe(),
                    helds.clone(),
                    up,
                ));
                tokio::spawn(pump(
                    server_r,
                    client_w,
                    lags.subscribe(),
                    helds.clone(),
                    down,
                ));
            }
        });
        Self { url, lag, held }
    }

    pub fn lag(&self, lag: Lag) {
        self.lag.send_replace(lag);
    }

    /// Stops delaying, and returns once every byte held back has been passed on.
    pub async fn heal(&self) {
        self.lag.send_replace(Lag::None);
        let mut held = self.held.subscribe();
        held.wait_for(|n| *n == 0).await.unwrap();
    }
}

/// Copies one direction of a connection, holding each chunk back for as long as `delay` says
/// (or until the proxy is healed).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut lag: tokio::sync::watch::Receiver<Lag>,
    held: tokio::sync::watch::Sender<usize>,
    delay: impl Fn(Lag) -> Option<Duration>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = *lag.borrow();
        if let Some(d) = delay(now) {
            held.send_modify(|n| *n += 1);
            tokio::select! {
                _ = tokio::time::sleep(d) => {} // the injected fault itself
                _ = lag.wait_for(|l| delay(*l).is_none()) => {}
            }
            let written = to.write_all(&buf[..n]).await;
            held.send_modify(|n| *n -= 1);
            if written.is_err() {
                break;
            }
        } else if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
