//! The importer end to end on real parts: the site's table in MariaDB, SQLite and JSON Lines,
//! seeded with werkzeug's own hashes (several versions' defaults); the function's DynamoDB
//! table on the local server; the built binary. Every row's report line, the summary and every
//! stored item are checked, then a second run changes nothing.

mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::*;

/// What the function's own formatter writes for each fixture row's create_time, read at
/// UTC+08:00 (the default): always three fraction digits, as in items the function writes.
const CREATED_AT: [(i64, &str); 7] = [
    (1, "2015-03-01T01:30:00.000Z"),
    (2, "2019-11-11T03:11:11.000Z"),
    (3, "2021-05-20T12:05:21.000Z"),
    (4, "2023-07-31T16:00:00.000Z"),
    (5, "2024-06-18T15:59:59.000Z"),
    (6, "2025-01-01T19:04:05.000Z"),
    (7, "2025-02-02T20:05:06.000Z"),
];

/// The report's line for each row not simply imported, in the fixture's terms.
fn expected_problem_lines(function_user: &str) -> HashMap<i64, Value> {
    let rejected = |id: i64, mobile: Value, reasons: &[&str]| {
        (
            id,
            json!({"outcome": "rejected", "id": id, "mobile": mobile, "reasons": reasons}),
        )
    };
    let conflict = |id: i64| {
        (
            id,
            json!({"outcome": "conflict", "id": id, "mobile": "138****0015", "ids": [15, 16, 17]}),
        )
    };
    HashMap::from([
        rejected(9, json!("138********9999"), &["mobile_invalid"]),
        rejected(10, json!("138*******0abc"), &["mobile_invalid"]),
        rejected(11, json!(""), &["mobile_empty"]),
        rejected(12, Value::Null, &["mobile_missing"]),
        rejected(13, json!("138****0013"), &["password_hash_missing"]),
        rejected(14, json!("138****0014"), &["password_hash_empty"]),
        rejected(20, json!("138****0020"), &["password_hash_unsupported"]),
        rejected(23, json!("138******0022"), &["password_hash_empty"]),
        (
            22,
            json!({"outcome": "conflict", "id": 22, "mobile": "138****0022", "ids": [22, 23]}),
        ),
        conflict(15),
        conflict(16),
        conflict(17),
        (
            REGISTERED_FIRST,
            json!({"outcome": "already_there", "by": "function", "id": REGISTERED_FIRST,
                   "mobile": "138****0018", "user_id": function_user}),
        ),
    ])
}

fn summary(read: u64, imported: u64, by_import: u64, rejected: u64) -> Value {
    json!({
        "read": read, "imported": imported, "already_there": by_import + 1,
        "already_imported": by_import, "registered_through_function": 1,
        "rejected": rejected, "conflicts": 4, "conflicting_mobiles": 2,
        "failed": 0, "not_attempted": 0, "dry_run": false, "would_import": 0,
        "throttled_waits": 0, "slow_waits": 0,
    })
}

/// The summary's counts (its time left out).
fn counts(run: &Run) -> Value {
    let mut s = run.summary().clone();
    let map = s.as_object_mut().unwrap();
    map.remove("outcome");
    map.remove("seconds");
    s
}

/// No password, hash, name or whole mobile of any row reaches stdout, stderr or the report.
fn assert_no_secrets(fixture: &Fixture, run: &Run) {
    let out = run.all_output();
    for r in &fixture.rows {
        for secret in [&r.password, &r.password_hash, &r.name, &r.mobile] {
            if let Some(v) = secret.as_deref().filter(|v| v.trim().len() > 3) {
                assert!(!out.contains(v), "row {} leaked {v:?}", r.id);
            }
        }
        if let Some(Ok(m)) = r
            .mobile
            .as_deref()
            .map(ihome_register::core::domain::Mobile::parse)
        {
            assert!(!out.contains(m.as_str()), "row {} leaked its mobile", r.id);
        }
    }
}

/// A fresh table where one user registered through the function before any import.
struct Stage {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    function_user: String,
    /// The table before the import.
    before: HashMap<String, Item>,
    dir: TempDir,
}

impl Stage {
    async fn new() -> Self {
        let ddb = dynamodb().await;
        let table = fresh_table(&ddb).await;
        let function_user =
            register_through_function(&ddb, &table, REGISTERED_FIRST_MOBILE, "function pass 18")
                .await;
        let before = scan(&ddb, &table).await;
        Self {
            ddb,
            table,
            function_user,
            before,
            dir: TempDir::new(),
        }
    }
}

/// The whole round on one source: a user registers through the function, the import runs, every
/// line and item is checked, and a second run changes nothing.
async fn round(source: &[&str], fixture: &Fixture, extra_rejected: &[Value]) {
    let jsonl = source[0] == "--jsonl";
    let stage = Stage::new().await;
    let (ddb, table, dir) = (&stage.ddb, &stage.table, &stage.dir);

    let started = std::time::SystemTime::now();
    let first = import(table, &dir.join("first.jsonl"), source);
    let ended = std::time::SystemTime::now();
    assert_eq!(first.code, Some(1), "rows were rejected: {}", first.stderr);
    let rejected = 8 + extra_rejected.len() as u64;
    let read = 21 + extra_rejected.len() as u64;
    assert_eq!(counts(&first), summary(read, 8, 0, rejected));
    assert_eq!(
        first.stdout.lines().next().unwrap(),
        format!(
            "read {read}, imported 8, already there 1 (0 imported before, 1 registered through the function), \
             rejected {rejected}, conflicts 4 (2 mobiles), failed 0"
        )
    );

    // Row by row: each problem row has exactly its line; imported rows have none, but the one
    // whose create_time is missing.
    let want = expected_problem_lines(&stage.function_user);
    for r in &fixture.rows {
        let mut lines: Vec<Value> = first.lines_for(r.id).into_iter().cloned().collect();
        // A JSON Lines export's rejections also name the line.
        for l in &mut lines {
            if l["outcome"] == "rejected" {
                let line = l.as_object_mut().unwrap().remove("line");
                assert_eq!(line.is_some(), jsonl, "row {}", r.id);
            }
        }
        match want.get(&r.id) {
            Some(line) => assert_eq!(lines, vec![line.clone()], "row {}", r.id),
            None if r.id == 19 => {
                assert_eq!(lines.len(), 1);
                assert_eq!(lines[0]["outcome"], "imported");
                assert_eq!(lines[0]["note"], "create_time_missing");
            }
            None => assert!(lines.is_empty(), "row {}: {lines:?}", r.id),
        }
    }
    for extra in extra_rejected {
        assert!(first.report.contains(extra), "{extra} in the report");
    }
    assert_eq!(
        first.report.len(),
        want.len() + 1 + extra_rejected.len() + 1,
        "no other lines: {:#?}",
        first.report
    );
    assert_no_secrets(fixture, &first);

    // Every stored item.
    let items = scan(ddb, table).await;
    assert_eq!(
        items.len(),
        IMPORTED.len() + 1,
        "8 imported + the function's user"
    );
    assert_eq!(
        items[REGISTERED_FIRST_MOBILE], stage.before[REGISTERED_FIRST_MOBILE],
        "the function's user is untouched"
    );
    let created: HashMap<i64, &str> = CREATED_AT.into_iter().collect();
    for user in fixture.imported_users() {
        let item = &items[&user.mobile];
        let row = fixture.row(user.legacy_id);
        assert_eq!(n(item, "legacy_id"), user.legacy_id);
        assert_eq!(
            s(item, "password_hash"),
            user.werkzeug_hash,
            "the hash as stored"
        );
        let name = row.name.clone().unwrap_or_else(|| user.mobile.clone());
        assert_eq!(s(item, "name"), name);
        let user_id: uuid::Uuid = s(item, "user_id").parse().unwrap();
        assert_eq!(s(item, "user_id"), user_id.hyphenated().to_string());
        assert_eq!(user_id.get_version_num(), 7);
        let created_at = s(item, "created_at");
        match created.get(&user.legacy_id) {
            Some(want) => assert_eq!(created_at, *want, "row {}", user.legacy_id),
            None => {
                // No create_time: the run's start.
                let t = time::OffsetDateTime::parse(
                    created_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                assert!(t >= time::OffsetDateTime::from(started) - time::Duration::SECOND);
                assert!(t <= time::OffsetDateTime::from(ended));
            }
        }
        // The id's time is the creation's.
        let (secs, _) = user_id.get_timestamp().unwrap().to_unix();
        let t =
            time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(secs as i64, t.unix_timestamp());
        assert_eq!(
            item.keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            [
                "created_at",
                "legacy_id",
                "mobile",
                "name",
                "password_hash",
                "user_id"
            ]
            .into(),
            "the function's item plus legacy_id, nothing else"
        );
    }

    // Again: everything is there, nothing changes.
    let second = import(table, &dir.join("second.jsonl"), source);
    assert_eq!(second.code, Some(1));
    assert_eq!(counts(&second), summary(read, 0, 8, rejected));
    for user in fixture.imported_users() {
        let lines = second.lines_for(user.legacy_id);
        assert_eq!(
            lines,
            vec![
                &json!({"outcome": "already_there", "by": "import", "id": user.legacy_id,
                         "mobile": format!("{}****{}", &user.mobile[..3], &user.mobile[7..]),
                         "user_id": s(&items[&user.mobile], "user_id")})
            ]
        );
    }
    assert_eq!(
        scan(ddb, table).await,
        items,
        "a second run changes nothing"
    );
    assert_no_secrets(fixture, &second);
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_users_come_along_row_by_row() {
    let url = require_env("IMPORT_TEST_MYSQL_URL");
    let legacy = random_name("ih_user_profile");
    let fixture = seed(
        Seed::Mysql {
            url: &url,
            table: &legacy,
        },
        0,
    );
    round(&["--mysql", &url, "--legacy-table", &legacy], &fixture, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_url_from_the_environment_and_its_password_never_shown() {
    let url = require_env("IMPORT_TEST_MYSQL_URL");
    let wrong = url.replacen("root@", "root:n0t-the-pw-4711@", 1);
    let dir = TempDir::new();
    let report = dir.join("r.jsonl");
    for (args, env) in [
        (vec!["--mysql", wrong.as_str()], None),
        (vec![], Some(wrong.as_str())),
    ] {
        let mut cmd = import_command("unused", &report);
        cmd.args(&args);
        if let Some(url) = env {
            cmd.env("IHOME_IMPORT_MYSQL_URL", url);
        }
        let run = finish(cmd.output().unwrap(), &report);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains("root:***@127.0.0.1"), "{}", run.stderr);
        assert!(run.stderr.contains("Access denied"), "{}", run.stderr);
        assert!(!run.all_output().contains("n0t-the-pw-4711"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_users_come_along_row_by_row() {
    let dir = TempDir::new();
    let db = dir.join("ihome.db");
    let fixture = seed(Seed::Sqlite(&db), 0);
    round(&["--sqlite", db.to_str().unwrap()], &fixture, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_users_come_along_row_by_row() {
    let dir = TempDir::new();
    let path = dir.join("users.jsonl");
    let fixture = seed(Seed::Jsonl(&path), 0);
    // A line an export tool broke is rejected by its line number, and the run goes on.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.insert_str(0, "{\"id\": 99, \"mobile\": \"1380000\n");
    std::fs::write(&path, text).unwrap();
    let broken =
        json!({"outcome": "rejected", "line": 1, "mobile": null, "reasons": ["unreadable_line"]});
    round(&["--jsonl", path.to_str().unwrap()], &fixture, &[broken]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_reports_and_writes_nothing() {
    let dir = TempDir::new();
    let db = dir.join("ihome.db");
    let fixture = seed(Seed::Sqlite(&db), 0);
    let report = dir.join("dry.jsonl");
    // DynamoDB is not even contacted: its endpoint is a closed port.
    let closed = format!("http://{}", closed_port());
    let run = finish(
        import_command("no-such-table", &report)
            .args(["--sqlite", db.to_str().unwrap(), "--dry-run"])
            .env("AWS_ENDPOINT_URL_DYNAMODB", &closed)
            .output()
            .unwrap(),
        &report,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let mut want = summary(21, 0, 0, 8);
    want["already_there"] = json!(0);
    want["registered_through_function"] = json!(0);
    want["dry_run"] = json!(true);
    want["would_import"] = json!(9);
    assert_eq!(counts(&run), want);
    assert!(run.stdout.starts_with(
        "read 21, would import 9 (dry run: nothing written), rejected 8, conflicts 4 (2 mobiles)"
    ));
    assert_eq!(run.report.len(), 8 + 4 + 1);
    assert_no_secrets(&fixture, &run);
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Writes `n` valid users (ids 1..=n, mobiles 1370000000x) as a JSON Lines export.
fn small_export(dir: &TempDir, n: i64) -> std::path::PathBuf {
    let path = dir.join("small.jsonl");
    let lines: Vec<String> = (1..=n)
        .map(|id| {
            json!({"id": id, "name": format!("u{id}"), "mobile": format!("137{id:08}"),
                   "password_hash": format!("pbkdf2:sha256:1000$salt{id}$abcdef0{id}"),
                   "create_time": "2020-01-01 00:00:00"})
            .to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A fresh table, `n` users in a JSON Lines export, and a proxy before DynamoDB with `plan`.
struct Small {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    dir: TempDir,
    /// The source arguments, one put at a time.
    args: Vec<String>,
    proxy: faults::DynamoProxy,
}

impl Small {
    async fn new(n: i64, plan: Vec<faults::Fault>) -> Self {
        let ddb = dynamodb().await;
        let table = fresh_table(&ddb).await;
        let dir = TempDir::new();
        let export = small_export(&dir, n);
        let upstream = require_env("AWS_ENDPOINT_URL_DYNAMODB");
        let proxy = faults::DynamoProxy::start(&upstream, plan, faults::Fault::Pass).await;
        let args = ["--jsonl", export.to_str().unwrap(), "--concurrency", "1"];
        Self {
            ddb,
            table,
            dir,
            args: args.map(str::to_owned).to_vec(),
            proxy,
        }
    }

    fn import(&self, through_proxy: bool) -> Run {
        self.import_with(through_proxy, &[])
    }

    fn import_with(&self, through_proxy: bool, extra: &[&str]) -> Run {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        if through_proxy {
            args.extend(["--endpoint-url", &self.proxy.url]);
        }
        args.extend(extra);
        import(&self.table, &self.dir.join("r.jsonl"), &args)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_past_the_sdks_retries_is_waited_out_and_no_user_dropped() {
    use faults::Fault;
    // The SDK makes 3 attempts a call: the first user meets 7 refusals, so the importer's own
    // backoff runs twice before its 8th attempt lands.
    let plan = [
        [Fault::Throttle; 3],
        [Fault::ThroughputExceeded; 3],
        [Fault::Throttle, Fault::Pass, Fault::Pass],
    ]
    .concat();
    let small = Small::new(3, plan).await;
    let run = small.import(true);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary = run.summary();
    assert_eq!(summary["imported"], 3);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["throttled_waits"], 2);
    assert_eq!(
        small.proxy.requests(),
        10,
        "8 for the first user, 1 each for the others"
    );
    assert_eq!(count(&small.ddb, &small.table).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_answers_too_late_is_waited_for_not_failed() {
    use faults::Fault;
    // Every attempt of the first put hangs past the (short) timeout: the importer waits, tries
    // again, and the user lands.
    let small = Small::new(2, vec![Fault::Hang; 3]).await;
    let run = small.import_with(true, &["--dynamodb-timeout-ms", "200"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary = run.summary();
    assert_eq!(summary["imported"], 2);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["slow_waits"], 1);
    assert_eq!(small.proxy.requests(), 5, "3 hung, then one each");
    assert_eq!(count(&small.ddb, &small.table).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_that_fails_otherwise_is_reported_and_the_run_goes_on() {
    let small = Small::new(3, vec![faults::Fault::Error("ValidationException")]).await;
    let run = small.import(true);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.summary()["failed"], 1);
    assert_eq!(run.summary()["imported"], 2);
    assert_eq!(
        run.lines_for(1),
        vec![
            &json!({"outcome": "failed", "id": 1, "mobile": "137****0001",
                     "error": "ValidationException"})
        ]
    );
    // The rerun brings the failed one and leaves the others.
    let again = small.import(false);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert_eq!(again.summary()["imported"], 1);
    assert_eq!(again.summary()["already_imported"], 2);
    assert_eq!(count(&small.ddb, &small.table).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_keeps_failing_stops_the_run() {
    let dir = TempDir::new();
    let export = small_export(&dir, 80);
    let closed = format!("http://{}", closed_port());
    let run = import(
        "any",
        &dir.join("r.jsonl"),
        &[
            "--jsonl",
            export.to_str().unwrap(),
            "--concurrency",
            "5",
            "--endpoint-url",
            &closed,
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let summary = run.summary();
    assert_eq!(summary["failed"], 50);
    assert_eq!(summary["not_attempted"], 30);
    assert!(
        run.stdout
            .contains("not attempted 30 (stopped: the store kept failing)")
    );
    let failed = run.report.iter().filter(|l| l["outcome"] == "failed");
    assert!(failed.clone().all(|l| l["error"] == "connection failed"));
    assert_eq!(failed.count(), 50);
}

/// `kill -9` in the middle, then a rerun: every valid user exactly once, with its own legacy id
/// and hash, and nothing else changed.
#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_run_then_rerun_loses_and_duplicates_nothing() {
    use faults::{DynamoProxy, Fault};
    use std::os::unix::process::ExitStatusExt;
    let stage = Stage::new().await;
    let (ddb, table, dir) = (&stage.ddb, &stage.table, &stage.dir);
    let db = dir.join("ihome.db");
    let fixture = seed(Seed::Sqlite(&db), 1000);
    let valid = IMPORTED.len() + fixture.filler.count as usize;

    // Through ~5 ms of latency a put, so the run is still going when it is killed.
    let upstream = require_env("AWS_ENDPOINT_URL_DYNAMODB");
    let proxy = DynamoProxy::start(
        &upstream,
        vec![],
        Fault::Delay(std::time::Duration::from_millis(5)),
    )
    .await;
    let source = ["--sqlite", db.to_str().unwrap()];
    let log = std::fs::File::create(dir.join("killed.log")).unwrap();
    let mut child = import_command(table, &dir.join("killed.jsonl"))
        .args(source)
        .args(["--endpoint-url", &proxy.url, "--progress-every", "0.2"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // Wait, by the importer's own progress lines, until part is imported.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let written = written_so_far(&dir.join("killed.log"));
        if written > 150 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended early"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no progress: {written} written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    let at_kill = count(ddb, table).await;
    assert!(
        at_kill < valid + 1,
        "killed before the end: {at_kill} of {}",
        valid + 1
    );

    let run = import(table, &dir.join("rerun.jsonl"), &source);
    assert_eq!(
        run.code,
        Some(1),
        "the fixture's rejections: {}",
        run.stderr
    );
    let summary = run.summary();
    let imported = summary["imported"].as_u64().unwrap() as usize;
    let before_rerun = summary["already_imported"].as_u64().unwrap() as usize;
    assert_eq!(imported + before_rerun, valid, "{summary}");
    assert!(before_rerun >= at_kill - 1, "{summary}");
    assert_eq!(summary["registered_through_function"], 1);
    assert_eq!(summary["failed"], 0);

    let items = scan(ddb, table).await;
    assert_eq!(
        items.len(),
        valid + 1,
        "each valid user once, and the function's user"
    );
    assert_eq!(
        items[REGISTERED_FIRST_MOBILE],
        stage.before[REGISTERED_FIRST_MOBILE]
    );
    assert_eq!(
        s(&items[REGISTERED_FIRST_MOBILE], "user_id"),
        stage.function_user
    );
    let mut ids: Vec<i64> = items
        .values()
        .filter(|i| i.contains_key("legacy_id"))
        .map(|i| n(i, "legacy_id"))
        .collect();
    ids.sort();
    let mut want: Vec<i64> = IMPORTED
        .iter()
        .copied()
        .chain(fixture.filler.ids())
        .collect();
    want.sort();
    assert_eq!(ids, want, "every valid user exactly once");
    for id in fixture.filler.ids() {
        let item = &items[&fixture.filler.mobile(id)];
        assert_eq!(n(item, "legacy_id"), id);
        assert_eq!(s(item, "password_hash"), fixture.filler.password_hash);
    }
    for user in fixture.imported_users() {
        let item = &items[&user.mobile];
        assert_eq!(n(item, "legacy_id"), user.legacy_id);
        assert_eq!(s(item, "password_hash"), user.werkzeug_hash);
    }
}

/// The last `progress: written N/M` count in the importer's log.
fn written_so_far(log: &std::path::Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("progress: written "))
        .filter_map(|l| l.split('/').next()?.parse().ok())
        .next_back()
        .unwrap_or(0)
}
