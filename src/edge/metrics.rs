//! Metrics without extra calls: one CloudWatch embedded-metric-format (EMF) object per
//! invocation, one JSON line on stdout, which CloudWatch Logs turns into metrics. No SDK call,
//! no permission beyond the logs the function already writes, nothing on the request's path but
//! formatting one line.
//!
//! ```json
//! {"_aws":{"Timestamp":1795507200000,"CloudWatchMetrics":[
//!    {"Namespace":"IHome/Registration","Dimensions":[["Outcome"]],"Metrics":[{"Name":"Requests","Unit":"Count"}]},
//!    {"Namespace":"IHome/Registration","Dimensions":[[]],"Metrics":[{"Name":"HashTime","Unit":"Milliseconds"}, ...]}]},
//!  "Outcome":"registered","Requests":1,"HashTime":10.9,"RedisTime":0.4,"DynamoDbTime":2.9,"ColdStart":1,
//!  "requestId":"..."}
//! ```
//!
//! `Requests` is counted per `Outcome` (the contract's `code`), which alarms and the dashboard
//! read; the times and `ColdStart` carry no dimension, so they are 4 metrics rather than 4 per
//! outcome (CloudWatch bills each name and dimension value). A time is present only when the
//! invocation reached that stage. Nothing in the line comes from the request but its outcome and
//! Lambda's request id: no mobile, code or secret can reach it.
//!
//! A small writer over serde_json rather than a metrics crate: one object per invocation is all
//! that is needed, and it adds nothing to the binary (measured in docs/performance.md).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::core::domain::{Mobile, SmsCode, Source};
use crate::core::ports::{
    Admission, Attempt, ClaimId, LoginThrottle, NewUser, SessionStore, SessionStoreError,
    SmsCodeStore, SmsStoreError, Standing, StoredUser, ThrottleError, UserId, UserStore,
    UserStoreError,
};
use crate::core::timing::{Spent, Stage, timed};
use crate::edge::contract::Outcome;

pub const DEFAULT_NAMESPACE: &str = "IHome/Registration";

/// A store whose every call is timed: the Redis and DynamoDB adapters as the function runs them.
#[derive(Clone)]
pub struct Timed<S>(pub S);

impl<C: SmsCodeStore> SmsCodeStore for Timed<C> {
    async fn claim(
        &self,
        mobile: &Mobile,
        code: &SmsCode,
        claim: &ClaimId,
    ) -> Result<Attempt, SmsStoreError> {
        timed(Stage::Redis, self.0.claim(mobile, code, claim)).await
    }
    async fn consume(&self, mobile: &Mobile, claim: &ClaimId) -> Result<bool, SmsStoreError> {
        timed(Stage::Redis, self.0.consume(mobile, claim)).await
    }
    async fn release(
        &self,
        mobile: &Mobile,
        claim: &ClaimId,
        pending: Option<UserId>,
    ) -> Result<bool, SmsStoreError> {
        timed(Stage::Redis, self.0.release(mobile, claim, pending)).await
    }
}

impl<U: UserStore> UserStore for Timed<U> {
    async fn insert(&self, user: &NewUser) -> Result<(), UserStoreError> {
        timed(Stage::DynamoDb, self.0.insert(user)).await
    }
    async fn find(&self, mobile: &Mobile) -> Result<Option<StoredUser>, UserStoreError> {
        timed(Stage::DynamoDb, self.0.find(mobile)).await
    }
    async fn replace_hash(
        &self,
        mobile: &Mobile,
        old: &str,
        new: &str,
    ) -> Result<bool, UserStoreError> {
        timed(Stage::DynamoDb, self.0.replace_hash(mobile, old, new)).await
    }
    async fn end_sessions(
        &self,
        mobile: &Mobile,
        user_id: UserId,
    ) -> Result<Option<u64>, UserStoreError> {
        timed(Stage::DynamoDb, self.0.end_sessions(mobile, user_id)).await
    }
    async fn replace_password(
        &self,
        mobile: &Mobile,
        seen: &StoredUser,
        new_hash: &str,
    ) -> Result<Option<u64>, UserStoreError> {
        timed(
            Stage::DynamoDb,
            self.0.replace_password(mobile, seen, new_hash),
        )
        .await
    }
}

impl<S: SessionStore> SessionStore for Timed<S> {
    async fn standing(&self, jti: &str, user_id: &str) -> Result<Standing, SessionStoreError> {
        timed(Stage::Redis, self.0.standing(jti, user_id)).await
    }
    async fn end_token(&self, jti: &str, until: SystemTime) -> Result<(), SessionStoreError> {
        timed(Stage::Redis, self.0.end_token(jti, until)).await
    }
    async fn remember(
        &self,
        user_id: UserId,
        version: u64,
        keep: Duration,
    ) -> Result<(), SessionStoreError> {
        timed(Stage::Redis, self.0.remember(user_id, version, keep)).await
    }
}

impl<T: LoginThrottle> LoginThrottle for Timed<T> {
    async fn admit(&self, mobile: &Mobile, source: &Source) -> Result<Admission, ThrottleError> {
        timed(Stage::Redis, self.0.admit(mobile, source)).await
    }
    async fn succeeded(&self, mobile: &Mobile, source: &Source) -> Result<(), ThrottleError> {
        timed(Stage::Redis, self.0.succeeded(mobile, source)).await
    }
    async fn withdraw(&self, mobile: &Mobile, source: &Source) -> Result<(), ThrottleError> {
        timed(Stage::Redis, self.0.withdraw(mobile, source)).await
    }
    async fn forgive(&self, mobile: &Mobile, source: &Source) -> Result<(), ThrottleError> {
        timed(Stage::Redis, self.0.forgive(mobile, source)).await
    }
}

/// Writes the EMF line of each invocation. Built once per cold start; the first line it writes
/// carries `ColdStart`.
pub struct Metrics {
    namespace: String,
    cold: AtomicBool,
    sink: fn(&str),
}

/// Writes a line to stdout, where Lambda hands it to CloudWatch Logs. A failed write is dropped:
/// metrics must never fail a request.
fn stdout(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

impl Metrics {
    pub fn new(namespace: &str) -> Self {
        Self::with_sink(namespace, stdout)
    }

    /// Lines go to `sink` instead of stdout (tests capture them with the logs).
    pub fn with_sink(namespace: &str, sink: fn(&str)) -> Self {
        Self {
            namespace: namespace.to_owned(),
            cold: AtomicBool::new(true),
            sink,
        }
    }

    /// The EMF object for one invocation, as one line of JSON.
    pub fn line(
        &self,
        outcome: Outcome,
        spent: Spent,
        request_id: Option<&str>,
        now: SystemTime,
    ) -> String {
        let cold = self.cold.swap(false, Ordering::Relaxed);
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut root = Map::new();
        let mut timings = Vec::new();
        for (name, took) in [
            ("HashTime", spent.hash),
            ("RedisTime", spent.redis),
            ("DynamoDbTime", spent.dynamodb),
        ] {
            if let Some(took) = took {
                timings.push(json!({"Name": name, "Unit": "Milliseconds"}));
                root.insert(name.into(), json!(ms(took)));
            }
        }
        if cold {
            timings.push(json!({"Name": "ColdStart", "Unit": "Count"}));
            root.insert("ColdStart".into(), json!(1));
        }
        let mut directives = vec![json!({
            "Namespace": self.namespace,
            "Dimensions": [["Outcome"]],
            "Metrics": [{"Name": "Requests", "Unit": "Count"}],
        })];
        if !timings.is_empty() {
            directives.push(json!({
                "Namespace": self.namespace,
                "Dimensions": [[]],
                "Metrics": timings,
            }));
        }
        let timestamp = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp as u64, "CloudWatchMetrics": directives}),
        );
        root.insert("Outcome".into(), json!(outcome.code()));
        root.insert("Requests".into(), json!(1));
        if let Some(id) = request_id {
            root.insert("requestId".into(), json!(id));
        }
        Value::Object(root).to_string()
    }

    /// Writes the invocation's line.
    pub fn emit(&self, outcome: Outcome, spent: Spent, request_id: Option<&str>) {
        (self.sink)(&self.line(outcome, spent, request_id, SystemTime::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "one line");
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn the_first_line_is_a_cold_start_and_carries_every_stage_reached() {
        let m = Metrics::new("IHome/Registration");
        let spent = Spent {
            hash: Some(Duration::from_micros(10_912)),
            redis: Some(Duration::from_micros(405)),
            dynamodb: Some(Duration::from_micros(2_866)),
        };
        let now = UNIX_EPOCH + Duration::from_millis(1_795_507_200_123);
        let v = parse(&m.line(Outcome::Registered, spent, Some("req-1"), now));
        assert_eq!(v["_aws"]["Timestamp"], 1_795_507_200_123u64);
        let d = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(d[0]["Namespace"], "IHome/Registration");
        assert_eq!(d[0]["Dimensions"], json!([["Outcome"]]));
        assert_eq!(
            d[0]["Metrics"],
            json!([{"Name": "Requests", "Unit": "Count"}])
        );
        assert_eq!(d[1]["Dimensions"], json!([[]]));
        let names: Vec<_> = d[1]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("HashTime", "Milliseconds"),
                ("RedisTime", "Milliseconds"),
                ("DynamoDbTime", "Milliseconds"),
                ("ColdStart", "Count")
            ]
        );
        assert_eq!(
            (&v["Outcome"], &v["Requests"], &v["ColdStart"]),
            (&json!("registered"), &json!(1), &json!(1))
        );
        assert_eq!(
            (&v["HashTime"], &v["RedisTime"], &v["DynamoDbTime"]),
            (&json!(10.912), &json!(0.405), &json!(2.866))
        );
        assert_eq!(v["requestId"], "req-1");

        // Every metric a directive names is a member of the root, as EMF requires.
        for directive in d.as_array().unwrap() {
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(v[metric["Name"].as_str().unwrap()].is_number());
            }
        }
    }

    #[test]
    fn later_lines_are_warm_and_a_rejection_names_no_stage() {
        let m = Metrics::new("Custom/Namespace");
        m.line(
            Outcome::InvalidMobile,
            Spent::default(),
            None,
            SystemTime::now(),
        );
        let v = parse(&m.line(
            Outcome::ForbiddenOrigin,
            Spent::default(),
            None,
            SystemTime::now(),
        ));
        assert_eq!(v["Outcome"], "forbidden_origin");
        assert!(v.get("ColdStart").is_none() && v.get("HashTime").is_none());
        let d = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(d.len(), 1, "no timings directive without timings");
        assert_eq!(d[0]["Namespace"], "Custom/Namespace");
        assert!(v.get("requestId").is_none());
    }
}
