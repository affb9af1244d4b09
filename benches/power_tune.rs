//! Lambda Power Tuning, offline (issue 16; run it with `scripts/power-tune`, which builds the
//! release bootstrap and the hello-world floor and starts the servers). Lambda gives a function
//! CPU in proportion to its memory, one vCPU at 1,769 MB; Linux can cap a process the same way,
//! with a cgroup's CPU bandwidth quota. For each memory size this runs the release bootstrap
//! under the project's Lambda Runtime API harness, in a cgroup whose quota is `MB / 1769` of one
//! CPU, against the local Redis and DynamoDB servers (the harness and the servers stay outside
//! the cap), and measures:
//!
//! - that the cap holds: a CPU-bound spin and argon2id hashes in a probe process in the group;
//! - cold starts of the function and of the hello-world floor (`benches/hello`), in turn: init
//!   at full CPU then capped (on-demand Lambda, whose init runs at a full vCPU), and init capped
//!   too (provisioned concurrency, where there is no burst); the first invocation, capped;
//! - warm invocations of each operation in [`OPERATIONS`], in turn in one instance.
//!
//! Results go to `--out` as JSON; `scripts/power-tune-report.py` adds prices and draws the plot.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Events, cold_start, invoke, median, ms, summary};
use ihome_register::edge::app;
use serde_json::{Value, json};
use support::runtime_api::{Cap, Function, Reply, RuntimeApi};

/// One vCPU's worth of memory: Lambda's CPU share is `MB / 1769`.
const FULL_VCPU_MB: f64 = 1769.0;

/// The operations timed warm at each size, in this order, in turn: a name for the table and
/// what to send. To add one, add its row here (and, for a new kind, its arm in
/// [`Operation::event`]). A login with a hash kind the build cannot verify yet (werkzeug's,
/// before that branch is merged) is found out at the start and left out of the table, named.
const OPERATIONS: &[(&str, Operation)] = &[
    ("registration", Operation::Registration),
    ("login, argon2id (ours)", Operation::Login(Stored::Argon2id)),
    // werkzeug's default in each version the old site may have run (scripts/seed-legacy-users.py).
    (
        "login, werkzeug 0.11 pbkdf2:sha1:1000",
        Operation::Login(Stored::Werkzeug("0.11.15")),
    ),
    (
        "login, werkzeug 0.16 pbkdf2:sha256:150000",
        Operation::Login(Stored::Werkzeug("0.16.1")),
    ),
    (
        "login, werkzeug 2.0 pbkdf2:sha256:260000",
        Operation::Login(Stored::Werkzeug("2.0.3")),
    ),
    (
        "login, werkzeug 2.3 pbkdf2:sha256:600000",
        Operation::Login(Stored::Werkzeug("2.3.8")),
    ),
    (
        "login, werkzeug 3.1 scrypt:32768:8:1",
        Operation::Login(Stored::Werkzeug("3.1.9")),
    ),
    ("rejected (invalid mobile)", Operation::Rejected),
];

#[derive(Clone, Copy, Debug)]
enum Operation {
    /// A successful sign-up: claim the SMS code, hash (argon2id), PutItem, consume the code.
    Registration,
    /// A successful login of a user whose stored hash is of this kind: the throttle script,
    /// GetItem, the verification, and for a hash not ours its upgrade (a second hash, ours, and
    /// an UpdateItem). The stored hash is put back before each one, outside the timing.
    Login(Stored),
    /// Refused before any store: the cheapest answer.
    Rejected,
}

#[derive(Clone, Copy, Debug)]
enum Stored {
    Argon2id,
    /// werkzeug's default hash in this version.
    Werkzeug(&'static str),
}

/// What the operations need besides the events: the table to put users in, and the hashes.
struct Ops {
    ev: Events,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    /// werkzeug version → its default hash of [`common::PASSWORD`] (from `--legacy-hashes`).
    legacy: HashMap<String, String>,
    ours: String,
}

impl Ops {
    /// The mobile a login of this kind uses: one user per kind.
    fn login_mobile(stored: Stored) -> String {
        let n = match stored {
            Stored::Argon2id => 0,
            Stored::Werkzeug(v) => 1 + VERSIONS.iter().position(|x| *x == v).unwrap_or(9),
        };
        format!(
            "1770000{:04}",
            u64::from(std::process::id() % 1000) * 10 + n as u64
        )
    }

    fn hash_of(&self, stored: Stored) -> Option<&str> {
        match stored {
            Stored::Argon2id => Some(&self.ours),
            Stored::Werkzeug(v) => self.legacy.get(v).map(String::as_str),
        }
    }

    async fn put_user(&self, mobile: &str, hash: &str) {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("mobile", s(mobile))
            .item("user_id", s(&format!("00000000-0000-7000-8000-0{mobile}")))
            .item("name", s(mobile))
            .item("password_hash", s(hash))
            .item("created_at", s("2026-01-01T00:00:00Z"))
            .send()
            .await
            .unwrap();
    }

    /// The event of one `op` and the status it must answer; what the stores need first is put
    /// there. `None`: a login of a kind with no hash given.
    async fn event(&mut self, op: Operation) -> Option<(Vec<u8>, u64)> {
        Some(match op {
            Operation::Registration => (self.ev.success().await.1, 201),
            Operation::Rejected => (self.ev.rejected(), 400),
            Operation::Login(stored) => {
                let mobile = Self::login_mobile(stored);
                let hash = self.hash_of(stored)?.to_owned();
                self.put_user(&mobile, &hash).await;
                (self.ev.login(&mobile), 200)
            }
        })
    }
}

/// The werkzeug versions of [`OPERATIONS`], for `scripts/power-tune` to hash with.
const VERSIONS: [&str; 5] = ["0.11.15", "0.16.1", "2.0.3", "2.3.8", "3.1.9"];

struct Args {
    bootstrap: String,
    hello: String,
    sizes: Vec<u32>,
    cold: usize,
    warm: usize,
    /// Stop an operation's warm samples at this many seconds (at least 10 samples).
    warm_seconds: u64,
    period_us: u64,
    /// Idle time before each warm invocation and each capped cold start.
    gap_ms: u64,
    out: String,
    /// JSON: werkzeug version → its default hash of the benchmark's password.
    legacy_hashes: Option<String>,
    probe: bool,
    /// The probe's groups: the capped one's and the reference's `cgroup.procs`.
    probe_groups: Vec<String>,
    threads: usize,
    /// The probe's table, for its DynamoDB connections.
    table: String,
}

fn args() -> Args {
    let mut a = Args {
        bootstrap: "target/lambda/x86_64/ihome-register/bootstrap".into(),
        hello: "target/hello/release/hello-floor".into(),
        sizes: vec![128, 256, 512, 1024, 1769, 3008],
        cold: 10,
        warm: 100,
        warm_seconds: 60,
        period_us: 20_000,
        gap_ms: 40,
        out: "target/power-tune.json".into(),
        legacy_hashes: None,
        probe: false,
        probe_groups: Vec::new(),
        threads: 1,
        table: String::new(),
    };
    common::for_each_flag(|flag, value| match flag {
        "--bootstrap" => a.bootstrap = value(),
        "--hello" => a.hello = value(),
        "--sizes" => {
            a.sizes = value()
                .split(',')
                .map(|s| s.trim().parse().expect("--sizes 128,256,..."))
                .collect()
        }
        "--cold" => a.cold = value().parse().expect("--cold N"),
        "--warm" => a.warm = value().parse().expect("--warm N"),
        "--warm-seconds" => a.warm_seconds = value().parse().expect("--warm-seconds S"),
        "--period-us" => a.period_us = value().parse().expect("--period-us N"),
        "--gap-ms" => a.gap_ms = value().parse().expect("--gap-ms N"),
        "--out" => a.out = value(),
        "--legacy-hashes" => a.legacy_hashes = Some(value()),
        "--probe" => a.probe = true,
        "--probe-groups" => a.probe_groups = value().split(',').map(str::to_owned).collect(),
        "--threads" => a.threads = value().parse().expect("--threads N"),
        "--table" => a.table = value(),
        _ => {} // cargo bench passes --bench
    });
    a
}

// ------------------------------------------------------------------------------------------
// The cap: a cgroup (v1 `cpu` controller or v2 `cpu.max`) with a CPU bandwidth quota.

#[derive(Clone, Debug)]
enum Hierarchy {
    /// cgroup v1: the `cpu` controller's mount; `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
    V1(PathBuf),
    /// cgroup v2: a directory whose children may use the `cpu` controller; `cpu.max`.
    V2(PathBuf),
}

impl Hierarchy {
    /// The first of v1's `cpu` controller or v2's unified hierarchy (with `cpu` enabled for
    /// children) in which a group can be made here; a message naming what was tried otherwise.
    fn find() -> Result<Self, String> {
        let mut tried = Vec::new();
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            match probe_mkdir(v1) {
                Ok(()) => return Ok(Self::V1(v1.into())),
                Err(e) => tried.push(format!("cgroup v1 at {}: {e}", v1.display())),
            }
        } else {
            tried.push(format!("cgroup v1: no {}/cpu.cfs_quota_us", v1.display()));
        }
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let root = Path::new(root);
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers"));
            match controllers {
                Ok(c) if c.split_whitespace().any(|x| x == "cpu") => {
                    // Children may use `cpu` only once the parent delegates it.
                    let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
                    match probe_mkdir(root) {
                        Ok(()) => return Ok(Self::V2(root.into())),
                        Err(e) => tried.push(format!("cgroup v2 at {}: {e}", root.display())),
                    }
                }
                Ok(_) => tried.push(format!(
                    "cgroup v2 at {}: the cpu controller is not available there",
                    root.display()
                )),
                Err(_) => tried.push(format!(
                    "cgroup v2: no {}/cgroup.controllers",
                    root.display()
                )),
            }
        }
        Err(format!(
            "no writable cgroup CPU controller (run as root on Linux with cgroup v1's cpu \
             controller or v2's cpu.max): {}",
            tried.join("; ")
        ))
    }
}

fn probe_mkdir(root: &Path) -> std::io::Result<()> {
    let dir = root.join(format!("ihome-power-tune-probe-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    std::fs::remove_dir(&dir)
}

/// A cgroup capping its processes at `share` of one CPU; removed when dropped (its processes
/// must have exited).
struct Group {
    dir: PathBuf,
}

impl Group {
    /// A group with `share` of a CPU, or no quota at all (`None`): the reference, in a group
    /// of its own so that it competes with the machine's other processes as a capped group
    /// does (as one entity of the same weight), not as one more process among them.
    fn create(h: &Hierarchy, name: &str, share: Option<f64>, period_us: u64) -> Self {
        let root = match h {
            Hierarchy::V1(r) | Hierarchy::V2(r) => r,
        };
        let dir = root.join(name);
        let _ = std::fs::remove_dir(&dir); // a group left by an interrupted run, if empty
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        // The kernel's smallest quota is 1 ms.
        let quota = share.map(|share| ((share * period_us as f64).round() as u64).max(1000));
        let write = |file: &str, value: String| {
            std::fs::write(dir.join(file), &value)
                .unwrap_or_else(|e| panic!("writing {value} to {}/{file}: {e}", dir.display()))
        };
        match h {
            Hierarchy::V1(_) => {
                write("cpu.cfs_period_us", period_us.to_string());
                write(
                    "cpu.cfs_quota_us",
                    quota.map_or("-1".into(), |q| q.to_string()),
                );
            }
            Hierarchy::V2(_) => write(
                "cpu.max",
                format!(
                    "{} {period_us}",
                    quota.map_or("max".into(), |q| q.to_string())
                ),
            ),
        }
        Self { dir }
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Times the group's processes were held back for having used their quota.
    fn throttled(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The processes are gone; the kernel may take a moment to let the group go.
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
// The probe: run in the group, it spins, then hashes, and prints what it measured.

fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The probe, spawned in the capped group: a CPU-bound spin there, then the deployed argon2id
/// hash in that group and in the reference group (no quota) by turns, moving itself between
/// them, so both sets of samples meet the same machine and the same working memory.
fn probe(a: &Args) -> Value {
    let (capped, reference) = (&a.probe_groups[0], &a.probe_groups[1]);
    let join = |procs: &str| std::fs::write(procs, "0").expect("the probe joins a group");
    // A spin on `threads` threads for a second: CPU time over wall time is the share it got.
    let wall = Duration::from_secs(1);
    let (cpu0, t0) = (cpu_time(), Instant::now());
    std::thread::scope(|s| {
        for _ in 0..a.threads {
            s.spawn(|| {
                let mut x = 0u64;
                while t0.elapsed() < wall {
                    for i in 0..10_000u64 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(i),
                        );
                    }
                }
            });
        }
    });
    let share = (cpu_time() - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();

    ihome_register::core::hashing::prepare();
    // Whether the kernel gave the working memory huge pages (it hashes faster when it did).
    let huge_kib: Option<u64> = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("AnonHugePages:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        });
    let mobile = ihome_register::core::domain::Mobile::parse("13812345678").unwrap();
    let password =
        ihome_register::core::domain::Password::parse(common::PASSWORD, common::PASSWORD, &mobile)
            .unwrap();
    let hash = || {
        let t = Instant::now();
        ihome_register::core::hashing::hash(&password).unwrap();
        ms(t.elapsed())
    };
    // By turns in each group: one hash alone, after two idle periods (it starts with the
    // period's whole quota, as a request after a pause does), then three back to back (the
    // quota used up, as under load).
    let period = Duration::from_micros(a.period_us);
    let mut samples: [Vec<f64>; 4] = Default::default();
    for _ in 0..20 {
        for (group, at) in [(capped, 0), (reference, 2)] {
            join(group);
            std::thread::sleep(period * 2);
            samples[at].push(hash());
            for _ in 0..3 {
                samples[at + 1].push(hash());
            }
        }
    }
    join(capped);
    let [alone, back_to_back, ref_alone, ref_back_to_back] = &samples;
    json!({"cpu_share": share, "threads": a.threads, "anon_huge_kib": huge_kib,
           "hash_alone_ms": summary(alone), "hash_back_to_back_ms": summary(back_to_back),
           "reference": {"hash_alone_ms": summary(ref_alone),
                         "hash_back_to_back_ms": summary(ref_back_to_back)}})
}

/// The probe's second part (issue 22): what opening each store's connection costs at this
/// share, by turns in the capped group and the reference one. DynamoDB: a new client (as the
/// function builds it) makes the same GetItem twice, and the first's extra time is the
/// connection's (TCP, and TLS when over the front; the SDK's first-call work in both); plain
/// HTTP to moto against TLS through the front, so their difference is the handshake's own.
/// Redis: a new connection, over TLS and plain. Each after two idle periods (the quota unspent,
/// as at an instance's first request).
async fn probe_connections(a: &Args) -> Value {
    let (capped, reference) = (&a.probe_groups[0], &a.probe_groups[1]);
    let join = |procs: &str| std::fs::write(procs, "0").expect("the probe joins a group");
    let period = Duration::from_micros(a.period_us);
    let endpoints = [
        ("dynamodb_tls", common::function_dynamodb_url()),
        ("dynamodb_plain", common::env("AWS_ENDPOINT_URL_DYNAMODB")),
    ];
    let redis_urls = [
        ("redis_tls", common::function_redis_url()),
        ("redis_plain", common::env("REDIS_URL")),
    ];
    let mut samples: HashMap<(&str, &str), Vec<f64>> = HashMap::new();
    let mut first: HashMap<(&str, &str), f64> = HashMap::new();
    for round in 0..21 {
        for (group, name) in [(capped, "capped"), (reference, "reference")] {
            join(group);
            for (what, url) in &endpoints {
                let client = common::dynamodb_client_on(url).await;
                let mut took = [0.0; 2];
                for slot in &mut took {
                    tokio::time::sleep(period * 2).await;
                    let t = Instant::now();
                    client
                        .get_item()
                        .table_name(&a.table)
                        .key("mobile", AttributeValue::S(app::PRECONNECT_KEY.into()))
                        .projection_expression("mobile")
                        .send()
                        .await
                        .expect("the probe's GetItem");
                    *slot = ms(t.elapsed());
                }
                samples
                    .entry((what, name))
                    .or_default()
                    .push(took[0] - took[1]);
            }
            for (what, url) in &redis_urls {
                let client = common::redis_client(url);
                tokio::time::sleep(period * 2).await;
                let t = Instant::now();
                client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("the probe's Redis connection");
                samples
                    .entry((what, name))
                    .or_default()
                    .push(ms(t.elapsed()));
            }
        }
        // The process's first connections (round 0, in the capped group first) also pay the
        // one-time set-up of the TLS stack, as an instance's first connection does: kept
        // apart from the medians of the rounds after.
        if round == 0 {
            for ((what, name), s) in std::mem::take(&mut samples) {
                first.insert((what, name), s[0]);
            }
        }
    }
    join(capped);
    let mut out = serde_json::Map::new();
    for ((what, group), s) in &samples {
        out.entry(what.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(group.to_string(), summary(s));
    }
    for ((what, group), ms) in &first {
        out[*what]
            .as_object_mut()
            .unwrap()
            .insert(format!("{group}_first_ms"), json!(ms));
    }
    Value::Object(out)
}

/// Runs the probe in `capped` (from its exec), comparing it with `reference`.
fn run_probe(
    capped: &Group,
    reference: &Group,
    threads: usize,
    period_us: u64,
    table: &str,
) -> Value {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--probe",
        "--threads",
        &threads.to_string(),
        "--period-us",
        &period_us.to_string(),
        "--table",
        table,
        "--probe-groups",
        &format!(
            "{},{}",
            capped.procs().display(),
            reference.procs().display()
        ),
    ]);
    let joined = support::runtime_api::join_before_exec(&mut cmd, &capped.procs());
    let out = cmd.output().expect("the probe runs");
    joined.when();
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the probe prints JSON")
}

// ------------------------------------------------------------------------------------------

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    if a.probe {
        let mut measured = probe(&a);
        if !a.table.is_empty() {
            measured["connections"] = probe_connections(&a).await;
        }
        println!("{measured}");
        return;
    }
    let hierarchy = Hierarchy::find().unwrap_or_else(|e| {
        eprintln!("power-tune: {e}");
        std::process::exit(2);
    });
    eprintln!(
        "power-tune: capping with {hierarchy:?}, period {} µs",
        a.period_us
    );

    let (table, secret, config) = common::bench_config("power-tune");
    let ddb = app::dynamodb_client(&config).await;
    support::create_table(&ddb, &table).await;
    let legacy: HashMap<String, String> = match &a.legacy_hashes {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
        None => HashMap::new(),
    };
    let mobile = ihome_register::core::domain::Mobile::parse("13812345678").unwrap();
    let password =
        ihome_register::core::domain::Password::parse(common::PASSWORD, common::PASSWORD, &mobile)
            .unwrap();
    let mut ops = Ops {
        ev: Events::new().await,
        ddb,
        table: table.clone(),
        legacy,
        ours: ihome_register::core::hashing::hash(&password).unwrap(),
    };

    // Which operations this build answers as expected (a werkzeug login before werkzeug
    // verification is merged answers bad_credentials): the others are left out, named.
    let mut measured = Vec::new();
    let mut left_out = Vec::new();
    {
        let api = RuntimeApi::start().await;
        let function = Function::spawn(&a.bootstrap, &api, &common::function_env(&table, &secret));
        for (i, &(name, op)) in OPERATIONS.iter().enumerate() {
            let Some((event, want)) = ops.event(op).await else {
                left_out.push(json!({"operation": name, "why": "no hash given (--legacy-hashes)"}));
                continue;
            };
            match api.invoke_timed(&event).await.0 {
                Reply::Response(v) if v["statusCode"] == want => measured.push(i),
                Reply::Response(v) => left_out.push(json!({"operation": name,
                    "why": format!("this build answers {} {} (expected {want})",
                                   v["statusCode"], common::code_of(&v))})),
                Reply::Error(e) => left_out.push(json!({"operation": name, "why": e})),
            }
        }
        function.stop().await;
    }
    eprintln!(
        "measuring {} operations; left out: {left_out:?}",
        measured.len()
    );

    // The reference: a group with no quota, for the probe to compare with.
    let reference = Group::create(&hierarchy, "ihome-power-tune-none", None, a.period_us);

    let mut sizes = Vec::new();
    for &mb in &a.sizes {
        let share = f64::from(mb) / FULL_VCPU_MB;
        let group = Group::create(
            &hierarchy,
            &format!("ihome-power-tune-{mb}"),
            Some(share),
            a.period_us,
        );
        // The cap checked before it is trusted.
        let threads = share.ceil() as usize;
        let probe = run_probe(&group, &reference, threads, a.period_us, &table);
        eprintln!("{mb} MB: probe {probe}");

        let mut fn_env = common::function_env(&table, &secret);
        fn_env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mb.to_string()));
        let hello_env = vec![("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mb.to_string())];
        let burst = Cap::AfterInit(group.procs());
        let capped = Cap::FromStart(group.procs());

        // Cold starts, in turn: function and floor with init at full CPU, then both capped
        // from the start.
        let mut cold: [Vec<f64>; 8] = Default::default();
        let [
            init_burst,
            first_burst,
            hello_burst,
            init_capped,
            first_capped,
            hello_capped,
            init_before,
            first_before,
        ] = &mut cold;
        // Issue 22's "before": the same build, told not to open DynamoDB's connection at init.
        let fn_env_before = common::without_preconnect(&fn_env);
        // Each process starts with the group's quota unspent, as a new Lambda instance does:
        // after a pause, since what the one before used in this period counts against it.
        let gap = Duration::from_millis(a.gap_ms);
        for _ in 0..a.cold {
            let (_, event) = ops.ev.success().await;
            tokio::time::sleep(gap).await;
            let c = cold_start(&a.bootstrap, &fn_env, &burst, &event, 201).await;
            init_burst.push(c.init_ms);
            first_burst.push(c.first_ms);
            let (_, event) = ops.ev.success().await;
            tokio::time::sleep(gap).await;
            let c = cold_start(&a.bootstrap, &fn_env_before, &burst, &event, 201).await;
            init_before.push(c.init_ms);
            first_before.push(c.first_ms);
            tokio::time::sleep(gap).await;
            let c = cold_start(&a.hello, &hello_env, &burst, &event, 200).await;
            hello_burst.push(c.init_ms);
            let (_, event) = ops.ev.success().await;
            tokio::time::sleep(gap).await;
            let c = cold_start(&a.bootstrap, &fn_env, &capped, &event, 201).await;
            init_capped.push(c.init_ms);
            first_capped.push(c.first_ms);
            tokio::time::sleep(gap).await;
            let c = cold_start(&a.hello, &hello_env, &capped, &event, 200).await;
            hello_capped.push(c.init_ms);
        }
        eprintln!("{mb} MB: cold starts done");

        // Warm: one instance, the operations in turn until each has `warm` samples or its
        // time is up.
        let api = RuntimeApi::start().await;
        let function = Function::spawn_capped(&a.bootstrap, &api, &fn_env, &burst);
        for &i in &measured {
            let (event, want) = ops.event(OPERATIONS[i].1).await.unwrap();
            invoke(&api, &event, want).await;
        }
        let mut warm: Vec<Vec<f64>> = vec![Vec::new(); OPERATIONS.len()];
        let mut spent = vec![Duration::ZERO; OPERATIONS.len()];
        let budget = Duration::from_secs(a.warm_seconds);
        loop {
            let mut any = false;
            for &i in &measured {
                let enough = warm[i].len() >= a.warm || (warm[i].len() >= 10 && spent[i] >= budget);
                if enough {
                    continue;
                }
                any = true;
                let (event, want) = ops.event(OPERATIONS[i].1).await.unwrap();
                // Each starts with the period's quota unspent: an instance between requests,
                // not one saturated (that is what more instances are for).
                tokio::time::sleep(gap).await;
                let took = invoke(&api, &event, want).await;
                spent[i] += took;
                warm[i].push(ms(took));
            }
            if !any {
                break;
            }
        }
        let rss = function.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        function.stop().await;
        let throttled = group.throttled();
        drop(group);
        eprintln!("{mb} MB: warm invocations done");

        let timed: Vec<Value> = measured
            .iter()
            .map(|&i| {
                let (name, samples) = (OPERATIONS[i].0, &warm[i]);
                // Lambda bills each invocation's duration rounded up to the millisecond.
                let billed: f64 =
                    samples.iter().map(|s| s.ceil()).sum::<f64>() / samples.len() as f64;
                json!({"operation": name, "ms": summary(samples), "billed_ms_mean": billed})
            })
            .collect();
        let registration = median(&warm[0]);
        sizes.push(json!({
            "memory_mb": mb,
            "cpu_share": share,
            "probe": probe,
            "init_burst_ms": summary(init_burst),
            "first_burst_ms": summary(first_burst),
            "hello_init_burst_ms": summary(hello_burst),
            "init_capped_ms": summary(init_capped),
            "first_capped_ms": summary(first_capped),
            "hello_init_capped_ms": summary(hello_capped),
            "init_ratio_burst": median(init_burst) / median(hello_burst),
            "init_ratio_capped": median(init_capped) / median(hello_capped),
            "first_minus_warm_registration_ms": median(first_burst) - registration,
            "init_before_burst_ms": summary(init_before),
            "first_before_burst_ms": summary(first_before),
            "first_before_minus_warm_registration_ms": median(first_before) - registration,
            "operations": timed,
            "peak_rss_mib": rss,
            "nr_throttled": throttled,
        }));
    }
    let out = json!({
        "period_us": a.period_us,
        "gap_ms": a.gap_ms,
        "hierarchy": format!("{hierarchy:?}"),
        "sizes": sizes,
        "left_out": left_out,
        "cold": a.cold,
        "warm": a.warm,
        "tls_stores": common::tls_stores(),
    });
    std::fs::write(&a.out, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("wrote {}", a.out);
}
