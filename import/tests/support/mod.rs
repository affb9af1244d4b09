//! The importer's tests on real parts: the legacy table seeded by werkzeug's own
//! `generate_password_hash` (scripts/seed-legacy-users.py) into MariaDB, SQLite or JSON Lines;
//! a fresh DynamoDB table per test on the local server; the built `ihome-import` binary.
//! `scripts/test` starts MariaDB and moto and exports IMPORT_TEST_MYSQL_URL and
//! AWS_ENDPOINT_URL_DYNAMODB.
#![allow(dead_code)]

#[path = "../../../tests/support/faults.rs"]
pub mod faults;
#[path = "../../../tests/support/tables.rs"]
pub mod tables;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use serde::Deserialize;
use serde_json::Value;

pub type Item = HashMap<String, AttributeValue>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test, which starts MariaDB and the DynamoDB server")
    })
}

pub fn random_name(prefix: &str) -> String {
    format!(
        "{prefix}_{:016x}",
        RandomState::new().hash_one(std::time::SystemTime::now())
    )
}

/// One row of the seeded table, as the seed script wrote it (its password in clear: test data).
#[derive(Clone, Debug, Deserialize)]
pub struct FixtureRow {
    pub id: i64,
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub password: Option<String>,
    pub password_hash: Option<String>,
    pub werkzeug: Option<String>,
    pub create_time: Option<String>,
}

/// Generated users: ids `start..start+count`, mobiles `15` + the id in 9 digits, one hash.
#[derive(Clone, Debug, Deserialize)]
pub struct Filler {
    pub start: i64,
    pub count: i64,
    pub password: String,
    pub password_hash: String,
}

impl Filler {
    pub fn mobile(&self, id: i64) -> String {
        format!("15{id:09}")
    }
    pub fn ids(&self) -> std::ops::Range<i64> {
        self.start..self.start + self.count
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Fixture {
    pub rows: Vec<FixtureRow>,
    pub filler: Filler,
}

/// The fixture's rows that become users: each werkzeug version's default, werkzeug 3's pbkdf2,
/// a mobile typed with +86 and spaces, one with surrounding spaces, one without create_time.
pub const IMPORTED: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 19];
/// Registered through the function before the import (the tests put it first).
pub const REGISTERED_FIRST: i64 = 18;
pub const REGISTERED_FIRST_MOBILE: &str = "13800000018";

/// A user the import brings in, with the password they used on the site.
#[derive(Clone, Debug)]
pub struct LegacyUser {
    /// The 11-digit form the item is keyed by.
    pub mobile: String,
    pub password: String,
    pub legacy_id: i64,
    /// The werkzeug hash as the site stored it (and as the import copies it).
    pub werkzeug_hash: String,
    pub werkzeug_version: String,
}

impl Fixture {
    pub fn row(&self, id: i64) -> &FixtureRow {
        self.rows.iter().find(|r| r.id == id).unwrap()
    }

    /// Every user the import brings in, for a test that logs each one in through the function
    /// with the old password and sees the hash upgraded to argon2id (issue 15, §3).
    pub fn imported_users(&self) -> Vec<LegacyUser> {
        IMPORTED
            .iter()
            .map(|&id| {
                let r = self.row(id);
                let raw = r.mobile.as_deref().unwrap();
                LegacyUser {
                    mobile: ihome_register::core::domain::Mobile::parse(raw)
                        .unwrap()
                        .as_str()
                        .to_owned(),
                    password: r.password.clone().unwrap(),
                    legacy_id: id,
                    werkzeug_hash: r.password_hash.clone().unwrap(),
                    werkzeug_version: r.werkzeug.clone().unwrap(),
                }
            })
            .collect()
    }
}

/// Where the seed script writes the legacy table.
pub enum Seed<'a> {
    Mysql { url: &'a str, table: &'a str },
    Sqlite(&'a Path),
    Jsonl(&'a Path),
}

/// Runs scripts/seed-legacy-users.py (werkzeug's own hashes, cached in .run/) into `target`,
/// with `filler` generated users (ids from 1000) besides the fixture.
pub fn seed(target: Seed, filler: u32) -> Fixture {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run the tests with scripts/test",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(root().join("scripts/seed-legacy-users.py"));
    match target {
        Seed::Mysql { url, table } => cmd.args(["--mysql", url, "--table", table]),
        Seed::Sqlite(path) => cmd.arg("--sqlite").arg(path),
        Seed::Jsonl(path) => cmd.arg("--jsonl").arg(path),
    };
    cmd.args(["--filler", &filler.to_string()]);
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "seed-legacy-users.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the seed script prints the fixture")
}

/// A DynamoDB client for the test's own reads and setup (the function's settings).
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    require_env("AWS_ENDPOINT_URL_DYNAMODB");
    // Generous: the local server is slow while an import writes to it.
    ihome_import::dynamodb_client(std::time::Duration::from_secs(10), None).await
}

/// A fresh users table, keyed by `mobile` as the function's.
pub async fn fresh_table(ddb: &aws_sdk_dynamodb::Client) -> String {
    let table = random_name("import-test").replace('_', "-");
    tables::create_table(ddb, &table).await;
    table
}

/// Every item, by mobile.
pub async fn scan(ddb: &aws_sdk_dynamodb::Client, table: &str) -> HashMap<String, Item> {
    let mut items = HashMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            items.insert(s(item, "mobile").to_owned(), item.clone());
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

pub async fn count(ddb: &aws_sdk_dynamodb::Client, table: &str) -> usize {
    let mut total = 0;
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        total += page.count() as usize;
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return total;
        }
    }
}

pub fn s<'a>(item: &'a Item, field: &str) -> &'a str {
    item.get(field)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("item has no string {field}"))
}

pub fn n(item: &Item, field: &str) -> i64 {
    item.get(field)
        .and_then(|v| v.as_n().ok())
        .unwrap_or_else(|| panic!("item has no number {field}"))
        .parse()
        .unwrap()
}

/// A user registered the function's way: its argon2id hash, its adapter's conditional put.
pub async fn register_through_function(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    mobile: &str,
    password: &str,
) -> String {
    use ihome_register::core::domain::{Mobile, Password};
    use ihome_register::core::ports::{NewUser, UserStore};
    use ihome_register::stores::users::DynamoUsers;
    let mobile = Mobile::parse(mobile).unwrap();
    let password = Password::parse(password, password, &mobile).unwrap();
    let user_id = uuid::Uuid::now_v7();
    let user = NewUser {
        user_id,
        mobile,
        password_hash: ihome_register::core::hashing::hash(&password).unwrap(),
        created_at: std::time::SystemTime::now(),
        replaces_pending: false,
    };
    DynamoUsers::new(ddb.clone(), table)
        .insert(&user)
        .await
        .unwrap();
    user_id.to_string()
}

/// One run of the built binary, and what it left.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The report's lines, the summary last.
    pub report: Vec<Value>,
}

impl Run {
    pub fn summary(&self) -> &Value {
        let last = self
            .report
            .last()
            .expect("the report ends with the summary");
        assert_eq!(last["outcome"], "summary");
        last
    }

    /// The report's lines for legacy id `id`.
    pub fn lines_for(&self, id: i64) -> Vec<&Value> {
        self.report.iter().filter(|l| l["id"] == id).collect()
    }

    /// Every output the operator sees, for checks that no secret is in any.
    pub fn all_output(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.stdout,
            self.stderr,
            self.report
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

pub fn import_command(table: &str, report: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ihome-import"));
    cmd.args(["--users-table", table, "--concurrency", "4"])
        .arg("--report")
        .arg(report)
        .env_remove("IHOME_IMPORT_MYSQL_URL");
    cmd
}

pub fn finish(out: Output, report: &Path) -> Run {
    let report = std::fs::read_to_string(report)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every report line is JSON"))
        .collect();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        report,
    }
}

/// Runs the binary to its end with `args` after the table and report.
pub fn import(table: &str, report: &Path, args: &[&str]) -> Run {
    let out = import_command(table, report)
        .args(args)
        .output()
        .expect("the importer runs");
    finish(out, report)
}

/// A scratch directory, removed at drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(random_name("ihome-import-test"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
