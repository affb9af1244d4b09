//! A DynamoDB endpoint with the latency of the real service, for scripts/import-bench: each
//! request is held `DELAY_MS` before it is forwarded to `UPSTREAM` (the local server), or, with
//! `accept`, answered as a landed put without forwarding (a store that is never the bottleneck,
//! to measure the importer alone). Prints its URL, then serves until killed.
//!
//!     cargo run -p ihome-import --example latency-proxy -- UPSTREAM DELAY_MS [accept]

#[allow(dead_code)]
#[path = "../../tests/support/faults.rs"]
mod faults;

use std::io::Write;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: latency-proxy UPSTREAM DELAY_MS [accept]";
    let upstream = args.first().expect(usage);
    let delay = Duration::from_millis(args.get(1).and_then(|d| d.parse().ok()).expect(usage));
    let fault = match args.get(2).map(String::as_str) {
        None => faults::Fault::Delay(delay),
        Some("accept") => faults::Fault::Accept(delay),
        Some(_) => panic!("{usage}"),
    };
    let proxy = faults::DynamoProxy::start(upstream, vec![], fault).await;
    println!("{}", proxy.url);
    std::io::stdout().flush().unwrap();
    std::future::pending::<()>().await;
}
