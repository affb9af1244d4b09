//! End to end: every file in `events/` replayed through the built function binary, running
//! under a Lambda Runtime API on loopback against real Redis and DynamoDB. The file name up to
//! `--` is the `code` the answer must carry; each case also checks the stored state and that
//! the function's logs hold no secret. Every file is replayed in both status modes
//! (`STATUS_CODES=ihome` and `http`), with `ALLOWED_ORIGINS` set to the site the events name.
//! `E2E_BOOTSTRAP=path` replays against another build (e.g. the release `bootstrap`; a wrapper
//! script that runs the arm64 one under qemu works too).

mod support;

use std::path::{Path, PathBuf};

use ihome_register::core::domain::Mobile;
use ihome_register::edge::contract::{Outcome, StatusMode, negotiate};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use support::runtime_api::{Function, Reply, RuntimeApi};
use support::{Stores, closed_port, s};

const PASSWORD: &str = "correct horse battery";

fn binary() -> String {
    std::env::var("E2E_BOOTSTRAP")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ihome-register").to_owned())
}

fn outcome(code: &str) -> Outcome {
    Outcome::from_code(code).unwrap_or_else(|| panic!("no contract row is named {code}"))
}

fn event_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The request body of an event, decoded as API Gateway would hand it over.
fn body_of(event: &Value) -> Option<Value> {
    let raw = event["body"].as_str()?;
    let bytes = if event["isBase64Encoded"] == true {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap()
    } else {
        raw.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes).ok()
}

/// A header of an event or answer, from `headers` or else `multiValueHeaders` (payload 1.0).
fn header<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    let find = |map: &'a Value| {
        let (_, v) = map
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))?;
        v.as_str().or_else(|| v.as_array()?.first()?.as_str())
    };
    find(&event["headers"]).or_else(|| find(&event["multiValueHeaders"]))
}

/// `set-cookie` values of an answer: in `cookies` for payload 2.0, in the headers for 1.0.
fn cookies(answer: &Value) -> Vec<String> {
    let mut out: Vec<String> = answer["cookies"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            answer["multiValueHeaders"]["set-cookie"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if out.is_empty() {
        out.extend(header(answer, "set-cookie").map(str::to_owned));
    }
    out
}

/// The origin the events' own site posts from (`scripts/make-events.py`).
const SITE: &str = "https://www.ihome.example";

async fn launch(
    st: &Stores,
    mode: &str,
    redis_url: Option<String>,
    dynamodb: Option<String>,
) -> (RuntimeApi, Function) {
    let api = RuntimeApi::start().await;
    let env = [
        ("STATUS_CODES", mode.to_owned()),
        ("ALLOWED_ORIGINS", SITE.to_owned()),
        ("USERS_TABLE", st.table.clone()),
        (
            "REDIS_URL",
            redis_url.unwrap_or_else(|| st.redis_url.clone()),
        ),
        ("JWT_SECRET", st.secret.clone()),
        ("REDIS_TIMEOUT_MS", "500".to_owned()),
        ("DYNAMODB_TIMEOUT_MS", "500".to_owned()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB",
            dynamodb.unwrap_or_else(|| support::require_env("AWS_ENDPOINT_URL_DYNAMODB")),
        ),
    ];
    let function = Function::spawn(&binary(), &api, &env);
    (api, function)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_gets_its_contract_answer_from_the_built_function_in_both_status_modes() {
    // One after the other: the events name fixed mobiles.
    replay_every_event(StatusMode::Ihome, "ihome").await;
    replay_every_event(StatusMode::Http, "http").await;
}

async fn replay_every_event(mode: StatusMode, mode_name: &str) {
    let mut st = Stores::fresh().await;
    let healthy = launch(&st, mode_name, None, None).await;
    let no_redis = launch(
        &st,
        mode_name,
        Some(format!("redis://{}", closed_port())),
        None,
    )
    .await;
    let no_dynamodb = launch(
        &st,
        mode_name,
        None,
        Some(format!("http://{}", closed_port())),
    )
    .await;

    let mut stored = 0;
    let mut replayed = 0;
    let mut answered = Vec::new();
    let mut masked_mobiles = Vec::new();
    for path in event_files() {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let want = outcome(name.split("--").next().unwrap());
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let form = body_of(&event);
        let field = |k: &str| form.as_ref().and_then(|f| f[k].as_str()).map(str::to_owned);
        let mobile = field("mobile").and_then(|m| Mobile::parse(&m).ok());
        let m = mobile.as_ref().map(|m| m.as_str().to_owned());
        let code = field("sms_code").unwrap_or_else(|| "123456".to_owned());
        let ctx = format!("{} ({mode_name})", path.display());

        // Arrange the stores for the row.
        if let Some(m) = &m {
            st.del_code(m).await;
            match want {
                Outcome::SmsCodeExpired => {}
                Outcome::SmsCodeMismatch => st.set_code(m, "000000", 300).await,
                Outcome::MobileExists => {
                    st.put_user(m, "earlier-user").await;
                    st.set_code(m, &code, 300).await;
                }
                _ => st.set_code(m, &code, 300).await,
            }
        }

        let (api, _) = match want {
            Outcome::SmsStoreUnavailable => &no_redis,
            Outcome::UserStoreUnavailable => &no_dynamodb,
            _ => &healthy,
        };
        let answer = match api.invoke(event.to_string().as_bytes()).await {
            Reply::Response(v) => v,
            Reply::Error(e) => panic!("{ctx}: the function failed the invocation: {e}"),
        };
        replayed += 1;
        answered.push(want.code().to_owned());

        // The answer.
        let (http_status, errno, code_name) = want.parts();
        // The iHome mode, written out here rather than taken from the library it tests.
        let status = match (mode, errno) {
            (StatusMode::Ihome, "0" | "4001" | "4002" | "4003" | "4103") => 200,
            _ => http_status,
        };
        assert_eq!(answer["statusCode"], status, "{ctx}: {answer}");
        assert_ne!(answer["isBase64Encoded"], true, "{ctx}");
        let text = answer["body"].as_str().unwrap();
        let body: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            (body["errno"].as_str(), body["code"].as_str()),
            (Some(errno), Some(code_name)),
            "{ctx}"
        );
        let lang = negotiate(header(&event, "accept-language"));
        assert_eq!(body["errmsg"], want.message(lang), "{ctx}");
        assert_eq!(
            header(&answer, "content-type"),
            Some("application/json; charset=utf-8"),
            "{ctx}"
        );
        assert_eq!(header(&answer, "cache-control"), Some("no-store"), "{ctx}");
        assert_eq!(
            header(&answer, "retry-after").is_some(),
            http_status == 503,
            "{ctx}"
        );
        assert!(
            !text.contains(PASSWORD) && !text.contains(&code),
            "{ctx}: answer echoes a secret"
        );

        // The stored state.
        let Some(m) = m else {
            assert!(cookies(&answer).is_empty(), "{ctx}");
            continue;
        };
        let item = st.item(&m).await;
        let left = st.code(&m).await;
        match want {
            Outcome::Registered => {
                stored += 1;
                masked_mobiles.push(mobile.as_ref().unwrap().masked());
                let item = item.unwrap_or_else(|| panic!("{ctx}: user stored"));
                assert_eq!(left, None, "{ctx}: code consumed");
                let cookie = cookies(&answer);
                assert_eq!(cookie.len(), 1, "{ctx}: one cookie");
                let token = cookie[0]
                    .strip_prefix("__Host-session=")
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap();
                let claims = jsonwebtoken::decode::<ihome_register::core::session::Claims>(
                    token,
                    &DecodingKey::from_secret(st.secret.as_bytes()),
                    &Validation::new(Algorithm::HS256),
                )
                .unwrap()
                .claims;
                assert_eq!(claims.sub, s(&item, "user_id"), "{ctx}");
                assert_eq!(claims.mobile, m, "{ctx}");
            }
            Outcome::MobileExists => {
                stored += 1;
                assert_eq!(s(&item.unwrap(), "user_id"), "earlier-user", "{ctx}");
                assert_eq!(left, None, "{ctx}: the proven code is used up");
            }
            Outcome::SmsCodeMismatch => {
                assert!(item.is_none(), "{ctx}");
                let kept = st.stored(&m).await.map(|c| (c.digits, c.wrong, c.claimed));
                assert_eq!(
                    kept,
                    Some(("000000".into(), 1, false)),
                    "{ctx}: the stored code kept, one wrong try counted"
                );
            }
            Outcome::SmsCodeExpired => assert!(item.is_none() && left.is_none(), "{ctx}"),
            Outcome::UserStoreUnavailable => {
                assert!(item.is_none(), "{ctx}");
                assert_eq!(
                    left.as_deref(),
                    Some(code.as_str()),
                    "{ctx}: claim released"
                );
                assert!(st.pttl(&m).await > 0, "{ctx}: with its TTL");
            }
            _ => {
                assert!(item.is_none(), "{ctx}: nothing written");
                assert_eq!(
                    left.as_deref(),
                    Some(code.as_str()),
                    "{ctx}: code untouched"
                );
            }
        }
        if want != Outcome::Registered {
            assert!(cookies(&answer).is_empty(), "{ctx}");
        }
    }
    assert!(replayed >= 40, "replayed only {replayed} events");
    assert_eq!(st.count_items().await, stored);

    // The logs: JSON lines, masked mobiles, and no secret of any kind.
    let mut logs = String::new();
    for (_, function) in [healthy, no_redis, no_dynamodb] {
        logs.push_str(&function.stop().await);
    }
    // Every line is one JSON object: a log line, or the invocation's metrics (EMF).
    let mut metered = Vec::new();
    let mut cold_starts = 0;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        if let Some(emf) = v.get("_aws") {
            let directives = &emf["CloudWatchMetrics"];
            assert_eq!(directives[0]["Namespace"], "IHome/Registration", "{line}");
            assert_eq!(
                directives[0]["Dimensions"],
                serde_json::json!([["Outcome"]])
            );
            assert!(
                emf["Timestamp"].is_u64() && v["requestId"].is_string(),
                "{line}"
            );
            assert_eq!(v["Requests"], 1, "{line}");
            cold_starts += v["ColdStart"].as_u64().unwrap_or(0);
            metered.push(v["Outcome"].as_str().unwrap().to_owned());
            continue;
        }
        assert!(
            v["span"]["requestId"].is_string() || v["fields"]["message"].is_string(),
            "{line}"
        );
    }
    // One metrics object per invocation, naming its outcome; one cold start per process.
    metered.sort();
    answered.sort();
    assert_eq!(metered, answered, "{mode_name}");
    assert_eq!(cold_starts, 3, "{mode_name}");
    for m in &masked_mobiles {
        assert!(
            logs.contains(m.as_str()),
            "the registration of {m} is logged"
        );
    }
    for secret in [
        PASSWORD,
        "123456",
        "eyJ",
        "$argon2",
        st.secret.as_str(),
        "13900000001",
        "13700000001",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}

#[tokio::test]
async fn a_missing_setting_stops_the_start_naming_the_variable() {
    let api = RuntimeApi::start().await;
    let secret = support::random_secret();
    let function = Function::spawn(
        &binary(),
        &api,
        &[
            ("REDIS_URL", "redis://127.0.0.1:1".to_owned()),
            ("JWT_SECRET", secret.clone()),
        ],
    );
    let (status, output) = function.wait().await;
    assert!(!status.success());
    assert!(output.contains("USERS_TABLE"), "{output}");
    assert!(!output.contains(&secret), "{output}");
}
