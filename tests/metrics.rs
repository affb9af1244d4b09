//! The metrics line (CloudWatch EMF) of each invocation, against real Redis and the local
//! DynamoDB server: one object per invocation, the outcome as the `Outcome` dimension, the time
//! of each stage the request reached, `ColdStart` on an instance's first invocation only, and
//! nothing from the request beyond its outcome. The end-to-end test (`events.rs`) checks the
//! same of the built binary's stdout.

mod support;

use std::sync::{Arc, Mutex};

use ihome_register::edge::app::{self, App};
use ihome_register::edge::http;
use ihome_register::edge::metrics::Metrics;
use serde_json::{Value, json};
use support::{PASSWORD, Stores, closed_port, config_with_env, random_mobile};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn sink(line: &str) {
    LINES.lock().unwrap().push(line.to_owned());
}

async fn app(st: &Stores, env: &[(&str, &str)]) -> Arc<App> {
    let config = config_with_env(&st.table, &st.redis_url, &st.secret, env);
    let mut app = app::build(&config).await.unwrap();
    app.metrics = Metrics::with_sink(&config.metrics_namespace, sink);
    Arc::new(app)
}

/// Posts the form (with `headers`) and returns the one metrics line it wrote.
async fn post(app: &Arc<App>, body: Value, headers: &[(&str, &str)]) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["body"] = json!(body.to_string());
    for (k, v) in headers {
        e["headers"][k] = json!(v);
    }
    let req = lambda_http::request::from_str(&e.to_string()).unwrap();
    let before = LINES.lock().unwrap().len();
    http::handle(app.clone(), req).await;
    let lines = LINES.lock().unwrap();
    assert_eq!(lines.len(), before + 1, "one line per invocation");
    let line = lines.last().unwrap();
    assert!(!line.contains('\n'));
    serde_json::from_str(line).unwrap()
}

fn form(mobile: &str, code: &str) -> Value {
    json!({"mobile": mobile, "sms_code": code, "password": PASSWORD, "password2": PASSWORD})
}

fn stages(v: &Value) -> [bool; 3] {
    ["HashTime", "RedisTime", "DynamoDbTime"].map(|k| v[k].as_f64().is_some_and(|ms| ms > 0.0))
}

#[tokio::test]
async fn each_invocation_writes_one_emf_line_with_its_outcome_and_stages() {
    let mut st = Stores::fresh().await;
    let app = app(&st, &[("METRICS_NAMESPACE", "IHome/Registration-test")]).await;

    let m = random_mobile();
    st.set_code(&m, "246810", 300).await;
    let v = post(&app, form(&m, "246810"), &[]).await;
    assert_eq!(
        (&v["Outcome"], &v["Requests"]),
        (&json!("registered"), &json!(1))
    );
    assert_eq!(stages(&v), [true, true, true], "{v}");
    assert_eq!(v["ColdStart"], 1, "the instance's first invocation");
    let directives = &v["_aws"]["CloudWatchMetrics"];
    assert_eq!(directives[0]["Namespace"], "IHome/Registration-test");
    assert_eq!(directives[0]["Dimensions"], json!([["Outcome"]]));
    assert_eq!(directives[1]["Dimensions"], json!([[]]));
    // requestId is Lambda's, which only the runtime attaches: events.rs checks it on the binary.
    let item = st.item(&m).await.expect("the user is stored");
    let user_id = support::s(&item, "user_id").to_owned();

    // A wrong code reaches Redis only; a malformed request and another site's, nothing.
    let m2 = random_mobile();
    st.set_code(&m2, "111111", 300).await;
    let v = post(&app, form(&m2, "222222"), &[]).await;
    assert_eq!(v["Outcome"], "sms_code_mismatch");
    assert_eq!(stages(&v), [false, true, false], "{v}");
    assert!(v.get("ColdStart").is_none(), "warm: {v}");
    let v = post(&app, form("12345", "111111"), &[]).await;
    assert_eq!(v["Outcome"], "invalid_mobile");
    assert_eq!(stages(&v), [false, false, false], "{v}");
    assert_eq!(v["_aws"]["CloudWatchMetrics"].as_array().unwrap().len(), 1);
    let cross = [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ];
    let v = post(&app, form(&m2, "111111"), &cross).await;
    assert_eq!(v["Outcome"], "forbidden_origin");
    assert_eq!(stages(&v), [false, false, false], "{v}");
    assert_eq!(
        st.stored(&m2).await.unwrap().wrong,
        1,
        "untouched by the refused request"
    );

    // Another instance, its Redis down: a cold start, and the time lost on Redis.
    let no_redis = format!("redis://{}", closed_port());
    let down = app_with_redis(&st, &no_redis).await;
    let v = post(&down, form(&m2, "111111"), &[]).await;
    assert_eq!(v["Outcome"], "sms_store_unavailable");
    assert_eq!(stages(&v), [false, true, false], "{v}");
    assert_eq!(v["ColdStart"], 1);

    // Nothing from the request but its outcome: no mobile, code, password, id or secret.
    let lines = LINES.lock().unwrap().join("\n");
    let secrets = [
        &m, &m2, "246810", "111111", "222222", PASSWORD, &st.secret, &user_id,
    ];
    for secret in secrets.map(|s| s.to_string()) {
        assert!(!lines.contains(&secret), "{secret} in {lines}");
    }
}

async fn app_with_redis(st: &Stores, redis_url: &str) -> Arc<App> {
    app(st, &[("REDIS_URL", redis_url)]).await
}
