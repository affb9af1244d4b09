//! The enumeration benchmark of issue 20: can the time of a failed login tell that a mobile has
//! an account, and which kind of password hash it holds? Run it with `scripts/enumeration-bench`
//! (it starts the servers, has werkzeug and argon2-cffi make the hashes, and runs this at a full
//! vCPU and at 512 MB's share); a benchmark, not a test: CI does not run it.
//!
//! On the real local Redis and DynamoDB (moto), a fresh table holds one user per kind of stored
//! hash: ours, the hashes of `--hashes` (made by werkzeug and argon2-cffi themselves), a disabled
//! account and a damaged item (no `password_hash`). Then, round after round, each kind's user
//! gets one wrong-password login and a fresh unknown mobile one login, in a new random order
//! every round, through the function's handler in process (`edge::app::assemble` +
//! `edge::http::handle`, API Gateway HTTP API events, a fresh source address each, throttles
//! raised so none refuses); the wall time of `handle()` is each sample. A right-password login of
//! ours rides along as the reference for what a login costs without the failure floor.
//!
//! Prints one line per kind (median, p90, its median's ratio to the unknown mobile's, and the
//! median verification time inside it, the metrics line's `HashTime`) and a verdict: whether
//! every failure's median is within 5% of the unknown mobile's. Every failure must also give the
//! same answer, byte for byte (status, headers, body): the run stops if one does not.
//!
//! `--memory-mb N` (root only) first moves this process into a cgroup of its own whose CPU quota
//! is N / 1769 of one CPU (Lambda's share at that memory size; 1769 MB and more: one full vCPU),
//! on cgroup v1's `cpu` controller (`cpu.cfs_quota_us` / `cpu.cfs_period_us`) or v2's `cpu.max`,
//! and back out at the end. Only the function is capped: Redis and moto stand for remote stores.
//!
//! Flags: `--hashes FILE` (JSON `[{"kind", "hash"}]`), `--memory-mb N` (none: no cap),
//! `--period-us N` (20000), `--rounds N` (30 samples a kind), `--warmup N` (3 rounds),
//! `--out FILE` (the samples as JSON).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/support/tables.rs"]
mod tables;

use aws_sdk_dynamodb::types::AttributeValue;
use ihome_register::core::domain::{Mobile, Password};
use ihome_register::core::{hashing, login::FAILURE_FLOOR};
use ihome_register::edge::app::{self, App};
use ihome_register::edge::config::Config;
use ihome_register::edge::http;
use ihome_register::edge::metrics::Metrics;
use ihome_register::stores::redis::Redis;
use ihome_register::stores::users::DynamoUsers;
use serde_json::{Value, json};

/// Lambda gives a function one full vCPU at this memory size, and a share in proportion below.
const FULL_VCPU_MB: f64 = 1769.0;
/// What the users are told apart from: each failure's median against this one's.
const UNKNOWN: &str = "unknown mobile";
/// Ours, right password: not a failure, not held; what a login costs without the floor.
const SUCCESS: &str = "right password, argon2id ours (not held; reference)";
const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "correct horse batterx";
/// The promise: every failure's median within this of the unknown mobile's.
const TOLERANCE: f64 = 0.05;

struct Args {
    hashes: Option<String>,
    memory_mb: Option<f64>,
    period_us: u64,
    rounds: usize,
    warmup: usize,
    out: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        hashes: None,
        memory_mb: None,
        period_us: 20_000,
        rounds: 30,
        warmup: 3,
        out: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--hashes" => a.hashes = Some(value()),
            "--memory-mb" => a.memory_mb = Some(value().parse().expect("--memory-mb N")),
            "--period-us" => a.period_us = value().parse().expect("--period-us N"),
            "--rounds" => a.rounds = value().parse().expect("--rounds N"),
            "--warmup" => a.warmup = value().parse().expect("--warmup N"),
            "--out" => a.out = Some(value()),
            _ => {} // cargo bench passes --bench
        }
    }
    assert!(a.rounds >= 1, "--rounds must be at least 1");
    a
}

// ------------------------------------------------------------------------------------------
// The CPU cap: this process in a cgroup of its own with a CPU bandwidth quota.

/// This process inside a capped cgroup until dropped, then back where it was.
struct Capped {
    dir: PathBuf,
    /// The group this process was in, to go back to.
    home: PathBuf,
    v2: bool,
}

impl Capped {
    fn enter(share: f64, period_us: u64) -> Self {
        let quota = ((share * period_us as f64).round() as u64).max(1000);
        let pid = std::process::id().to_string();
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let (root, v2, here) = if v1.join("cpu.cfs_quota_us").exists() {
            // v1: the line whose controllers include `cpu` (`1:cpu:/` or `4:cpu,cpuacct:/x`).
            let here = own
                .lines()
                .find_map(|l| {
                    let mut f = l.splitn(3, ':');
                    let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
                    controllers.split(',').any(|c| c == "cpu").then_some(path)
                })
                .expect("this process's cpu cgroup");
            (v1.to_path_buf(), false, here.to_owned())
        } else {
            let here = own
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .expect("this process's cgroup (v2)");
            let root = Path::new("/sys/fs/cgroup");
            // Children may use `cpu` only once the parent delegates it.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
            (root.to_path_buf(), true, here.to_owned())
        };
        let home = root.join(here.trim_start_matches('/'));
        let dir = root.join(format!("ihome-enumeration-{pid}"));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("creating {} (the CPU cap needs root): {e}", dir.display()));
        let write = |file: &str, value: &str| {
            std::fs::write(dir.join(file), value)
                .unwrap_or_else(|e| panic!("writing {value} to {}/{file}: {e}", dir.display()))
        };
        if v2 {
            write("cpu.max", &format!("{quota} {period_us}"));
        } else {
            write("cpu.cfs_period_us", &period_us.to_string());
            write("cpu.cfs_quota_us", &quota.to_string());
        }
        // The whole process, every thread it has and will have.
        write("cgroup.procs", &pid);
        Self { dir, home, v2 }
    }

    /// (periods, periods in which the group was held back for having used its quota).
    fn throttling(&self) -> (u64, u64) {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let get = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (get("nr_periods "), get("nr_throttled "))
    }

    fn describe(&self) -> String {
        let read = |f: &str| {
            std::fs::read_to_string(self.dir.join(f))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        if self.v2 {
            format!(
                "cgroup v2 {} cpu.max = {}",
                self.dir.display(),
                read("cpu.max")
            )
        } else {
            format!(
                "cgroup v1 {}: cfs_quota_us = {}, cfs_period_us = {}",
                self.dir.display(),
                read("cpu.cfs_quota_us"),
                read("cpu.cfs_period_us")
            )
        }
    }
}

impl Drop for Capped {
    fn drop(&mut self) {
        let pid = std::process::id().to_string();
        if let Err(e) = std::fs::write(self.home.join("cgroup.procs"), &pid) {
            eprintln!("could not move back to {}: {e}", self.home.display());
            return;
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

// ------------------------------------------------------------------------------------------
// Randomness, statistics.

/// xorshift64*, seeded by the standard library's per-process random keys.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Self(RandomState::new().hash_one(std::time::SystemTime::now()) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
    fn mobile(&mut self) -> String {
        format!("15{:09}", self.next() % 1_000_000_000)
    }
    /// A source address no run has counted yet (198.18.0.0/15 and up, as the tests pick).
    fn ip(&mut self) -> String {
        let n = self.next();
        format!(
            "198.{}.{}.{}",
            n % 200 + 18,
            (n >> 8) % 256,
            (n >> 16) % 250 + 1
        )
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nearest-rank quantile.
fn quantile(samples: &[f64], q: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------------------------------
// The stores and the function.

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run scripts/enumeration-bench"))
}

fn config(table: &str, secret: &str) -> Config {
    let redis_url = env("REDIS_URL");
    Config::from_lookup(|k| {
        Some(match k {
            "USERS_TABLE" => table.to_owned(),
            "REDIS_URL" => redis_url.clone(),
            "JWT_SECRET" => secret.to_owned(),
            "STATUS_CODES" => "http".to_owned(),
            // So that no throttle ever refuses: the benchmark measures verified failures.
            "LOGIN_LIMIT_MOBILE_IP" | "LOGIN_LIMIT_IP" | "LOGIN_LIMIT_MOBILE" => {
                "1000000/120".to_owned()
            }
            _ => return None,
        })
    })
    .expect("the benchmark's configuration is valid")
}

/// What the stored item holds.
enum Stored {
    Hash(String),
    Disabled(String),
    NoHash,
}

async fn put_user(ddb: &aws_sdk_dynamodb::Client, table: &str, mobile: &str, stored: &Stored) {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let mut put = ddb
        .put_item()
        .table_name(table)
        .item("mobile", s(mobile))
        .item("user_id", s(&uuid::Uuid::now_v7().to_string()))
        .item("name", s(mobile))
        .item("created_at", s("2026-01-01T00:00:00Z"));
    match stored {
        Stored::Hash(h) => put = put.item("password_hash", s(h)),
        Stored::Disabled(h) => {
            put = put
                .item("password_hash", s(h))
                .item("disabled", AttributeValue::Bool(true))
        }
        Stored::NoHash => {}
    }
    put.send().await.expect("the DynamoDB server stores a user");
}

thread_local! {
    /// The metrics line of the request just handled: the handler writes it on this thread.
    static LINE: RefCell<Option<Value>> = const { RefCell::new(None) };
}

fn sink(line: &str) {
    LINE.with(|l| *l.borrow_mut() = serde_json::from_str(line).ok());
}

/// A login as API Gateway's HTTP API hands it over.
fn login_event(mobile: &str, password: &str, ip: &str) -> lambda_http::Request {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["rawPath"] = json!("/api/v1.0/sessions");
    e["routeKey"] = json!("POST /api/v1.0/sessions");
    e["requestContext"]["http"]["path"] = json!("/api/v1.0/sessions");
    e["requestContext"]["http"]["sourceIp"] = json!(ip);
    e["body"] = json!(json!({"mobile": mobile, "password": password}).to_string());
    lambda_http::request::from_str(&e.to_string()).expect("a valid HTTP API event")
}

/// One answer as the client sees it: status, headers (sorted), body.
type Seen = (u16, Vec<(String, String)>, String);

/// Wall time of `handle()`, the answer, and the metrics line's `HashTime` (ms).
async fn log_in(app: &Arc<App>, mobile: &str, password: &str, ip: &str) -> (f64, Seen, f64) {
    let req = login_event(mobile, password, ip);
    let started = Instant::now();
    let resp = http::handle(app.clone(), req).await;
    let took = ms(started.elapsed());
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => t.clone(),
        other => format!("{other:?}"),
    };
    let hash_ms = LINE
        .with(|l| l.borrow_mut().take())
        .and_then(|l| l["HashTime"].as_f64())
        .unwrap_or(f64::NAN);
    (took, (resp.status().as_u16(), headers, body), hash_ms)
}

struct Kind {
    name: String,
    /// The user's mobile; `None`: a fresh unknown mobile each time.
    mobile: Option<String>,
    password: &'static str,
    /// Part of the verdict (a failure); the success is only the reference.
    failure: bool,
    samples: Vec<f64>,
    hash_ms: Vec<f64>,
}

fn main() {
    let a = args();
    let capped = a.memory_mb.map(|mb| {
        let share = (mb / FULL_VCPU_MB).min(1.0);
        (mb, share, Capped::enter(share, a.period_us))
    });
    // As the function's main: a current-thread runtime, hashes on its blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let verdict = runtime.block_on(run(
        &a,
        capped.as_ref().map(|(mb, share, c)| (*mb, *share, c)),
    ));
    drop(runtime);
    drop(capped);
    if !verdict {
        std::process::exit(1);
    }
}

async fn run(a: &Args, capped: Option<(f64, f64, &Capped)>) -> bool {
    let mut rng = Rng::new();
    let table = format!("users-enumeration-{:016x}", rng.next());
    let secret = format!("{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next());
    let config = config(&table, &secret);
    let ddb = app::dynamodb_client(&config).await;
    tables::create_table(&ddb, &table).await;
    app::prepare();

    // One user per kind. Ours is hashed here, as registration would; the others come from the
    // file, made by werkzeug and argon2-cffi themselves.
    let mut stored: Vec<(String, Stored, &'static str)> = Vec::new();
    let ours = {
        let mobile = Mobile::parse("13800000000").unwrap();
        let password = Password::parse(PASSWORD, PASSWORD, &mobile).unwrap();
        hashing::hash(&password).expect("our hash")
    };
    stored.push((
        "argon2id ours (m=19456,t=2,p=1)".into(),
        Stored::Hash(ours.clone()),
        WRONG,
    ));
    stored.push((
        "disabled account (argon2id ours)".into(),
        Stored::Disabled(ours.clone()),
        WRONG,
    ));
    stored.push((
        "damaged item (no password_hash)".into(),
        Stored::NoHash,
        WRONG,
    ));
    if let Some(path) = &a.hashes {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let list: Vec<Value> = serde_json::from_str(&text).expect("--hashes: a JSON array");
        for item in list {
            let kind = item["kind"].as_str().expect("kind").to_owned();
            let hash = item["hash"].as_str().expect("hash").to_owned();
            stored.push((kind, Stored::Hash(hash), WRONG));
        }
    }
    stored.push((SUCCESS.into(), Stored::Hash(ours), PASSWORD));

    let mut kinds = vec![Kind {
        name: UNKNOWN.into(),
        mobile: None,
        password: WRONG,
        failure: true,
        samples: Vec::new(),
        hash_ms: Vec::new(),
    }];
    for (name, what, password) in stored {
        let mobile = rng.mobile();
        put_user(&ddb, &table, &mobile, &what).await;
        kinds.push(Kind {
            failure: name != SUCCESS,
            name,
            mobile: Some(mobile),
            password,
            samples: Vec::new(),
            hash_ms: Vec::new(),
        });
    }

    let redis = Redis::new(&config.redis_url, config.redis_timeout).unwrap();
    let mut function = app::assemble(redis, DynamoUsers::new(ddb.clone(), &table), &config);
    function.metrics = Metrics::with_sink(&config.metrics_namespace, sink);
    let function = Arc::new(function);

    match capped {
        Some((mb, share, c)) => eprintln!(
            "CPU: {mb} MB's share, {:.4} of one CPU ({})",
            share,
            c.describe()
        ),
        None => eprintln!("CPU: no cap"),
    }
    eprintln!(
        "{} kinds, {} warm-up rounds then {} rounds, each kind once a round in a random order",
        kinds.len(),
        a.warmup,
        a.rounds
    );
    let throttled_before = capped.map(|(_, _, c)| c.throttling());
    let mut failure_answer: Option<Seen> = None;
    let mut order: Vec<usize> = (0..kinds.len()).collect();
    let started = Instant::now();
    for round in 0..a.warmup + a.rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            let kind = &kinds[i];
            let mobile = kind.mobile.clone().unwrap_or_else(|| rng.mobile());
            let ip = rng.ip();
            let (took, seen, hash_ms) = log_in(&function, &mobile, kind.password, &ip).await;
            // Every failure is one answer; the success is a login.
            if kind.failure {
                assert!(
                    seen.2.contains("\"bad_credentials\""),
                    "{}: not bad_credentials: {seen:?}",
                    kind.name
                );
                match &failure_answer {
                    None => failure_answer = Some(seen),
                    Some(first) => assert_eq!(
                        first, &seen,
                        "{}: a failure answered differently from another",
                        kind.name
                    ),
                }
            } else {
                assert!(
                    seen.2.contains("\"logged_in\""),
                    "{}: not logged_in: {seen:?}",
                    kind.name
                );
            }
            if round >= a.warmup {
                kinds[i].samples.push(took);
                kinds[i].hash_ms.push(hash_ms);
            }
        }
        if round + 1 == a.warmup {
            eprintln!("warmed up in {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    let elapsed = started.elapsed();
    let throttled = capped.map(|(_, _, c)| {
        let (p0, t0) = throttled_before.unwrap();
        let (p1, t1) = c.throttling();
        (p1 - p0, t1 - t0)
    });

    // The report.
    let reference = median(&kinds[0].samples);
    let cost = hashing::ours_cost().expect("a verification of ours was measured");
    let label = match capped {
        Some((mb, share, _)) => format!("{mb} MB ({:.1}% of one CPU)", share * 100.0),
        None => "no CPU cap".into(),
    };
    println!();
    println!(
        "enumeration by time, {label}: {} samples a kind, interleaved, {:.0} s",
        a.rounds,
        elapsed.as_secs_f64()
    );
    println!(
        "{:<52} {:>4} {:>10} {:>10} {:>7} {:>12}",
        "kind", "n", "median ms", "p90 ms", "ratio", "hash med ms"
    );
    let mut worst: Option<(String, f64)> = None;
    let mut outside = Vec::new();
    let mut rows = Vec::new();
    for k in &kinds {
        let med = median(&k.samples);
        let p90 = quantile(&k.samples, 0.9);
        let ratio = med / reference;
        let hash_med = median(&k.hash_ms);
        println!(
            "{:<52} {:>4} {:>10.1} {:>10.1} {:>7.3} {:>12.1}",
            k.name,
            k.samples.len(),
            med,
            p90,
            ratio,
            hash_med
        );
        if k.failure && k.name != UNKNOWN {
            let off = ratio - 1.0;
            if worst.as_ref().is_none_or(|(_, w)| off.abs() > w.abs()) {
                worst = Some((k.name.clone(), off));
            }
            if off.abs() > TOLERANCE {
                outside.push(format!("{} {:+.1}%", k.name, off * 100.0));
            }
        }
        rows.push(json!({
            "kind": k.name, "failure": k.failure, "n": k.samples.len(), "median_ms": med,
            "p90_ms": p90, "ratio": ratio, "hash_median_ms": hash_med,
            "samples_ms": k.samples, "hash_ms": k.hash_ms,
        }));
    }
    let floor = cost * FAILURE_FLOOR;
    println!(
        "floor: {FAILURE_FLOOR} x one verification of ours ({:.1} ms, this instance's moving average) = {:.1} ms; a failed login takes {:.1} ms (the unknown mobile's median)",
        ms(cost),
        ms(floor),
        reference
    );
    if let Some((periods, held)) = throttled {
        println!(
            "cgroup: the quota held the process back in {held} of the {periods} periods it ran in"
        );
    }
    let ok = outside.is_empty();
    let (worst_kind, worst_off) = worst.unwrap_or_default();
    if ok {
        println!(
            "verdict: every failure within 5% of an unknown mobile's median, {label} (largest: {worst_kind}, {:+.1}%)",
            worst_off * 100.0
        );
    } else {
        println!(
            "verdict: NOT every failure within 5% of an unknown mobile's median, {label}: {}",
            outside.join("; ")
        );
    }
    if let Some(out) = &a.out {
        let report = json!({
            "label": label,
            "memory_mb": capped.map(|(mb, _, _)| mb),
            "cpu_share": capped.map(|(_, share, _)| share),
            "period_us": a.period_us,
            "rounds": a.rounds, "warmup": a.warmup,
            "failure_floor": FAILURE_FLOOR,
            "ours_cost_ms": ms(cost), "floor_ms": ms(floor),
            "unknown_median_ms": reference,
            "throttled_periods": throttled.map(|(p, t)| json!({"periods": p, "throttled": t})),
            "within_5_percent": ok,
            "kinds": rows,
            "failure_answer": failure_answer.map(|(status, headers, body)| json!({
                "status": status,
                "headers": headers.into_iter().collect::<HashMap<_, _>>(),
                "body": body,
            })),
        });
        std::fs::write(out, serde_json::to_string_pretty(&report).unwrap())
            .unwrap_or_else(|e| panic!("writing {out}: {e}"));
    }
    let _ = ddb.delete_table().table_name(&table).send().await;
    ok
}
