//! End to end: every file in `events/` replayed through the built function binary, running
//! under a Lambda Runtime API on loopback against real Redis and DynamoDB. The file name up to
//! `--` is the `code` the answer must carry, and the event's own path says which route it goes
//! to (registration, login, or none); each case arranges the stores for its row, then checks
//! the stored state (the item, the SMS code, the login throttle counts) and that the function's
//! logs hold no secret. Every file is replayed in both status modes
//! (`STATUS_CODES=ihome` and `http`), with `ALLOWED_ORIGINS` set to the site the events name.
//! `E2E_BOOTSTRAP=path` replays against another build (e.g. the release `bootstrap`; a wrapper
//! script that runs the arm64 one under qemu works too).

mod support;

use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use ihome_register::core::domain::{Mobile, Password, Source};
use ihome_register::core::hashing;
use ihome_register::edge::contract::{Outcome, StatusMode, negotiate};
use ihome_register::stores::throttle;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use redis::AsyncCommands;
use serde_json::Value;
use support::runtime_api::{Function, Reply, RuntimeApi};
use support::{Stores, closed_port, s};

const PASSWORD: &str = "correct horse battery";
/// The login events' wrong password, and PASSWORD as a full-width input method types it
/// (`scripts/make-events.py`).
const WRONG_PASSWORD: &str = "correct horse batterY";
const FULL_WIDTH_PASSWORD: &str = "ｃｏｒｒｅｃｔ\u{3000}ｈｏｒｓｅ\u{3000}ｂａｔｔｅｒｙ";
/// The address the login events' `X-Forwarded-For` names first: never the one counted.
const FORGED_IP: &str = "192.0.2.99";
/// The name the login events' users are stored with: the cookie's `name` must be the item's.
const STORED_NAME: &str = "王小明";

/// The route an event goes to, by its own path (`rawPath`, or `path` for payload 1.0) and, on
/// the paths issue 19 shares, its method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Register,
    Login,
    /// Logout, log out everywhere, password change: the routes that need a session.
    Session,
    Reset,
    Unknown,
}

fn route(event: &Value) -> Route {
    let path = event["rawPath"]
        .as_str()
        .or(event["path"].as_str())
        .unwrap();
    let method = event["requestContext"]["http"]["method"]
        .as_str()
        .or(event["httpMethod"].as_str())
        .unwrap();
    match (path, method) {
        ("/api/v1.0/users", _) => Route::Register,
        ("/api/v1.0/sessions", "DELETE") => Route::Session,
        ("/api/v1.0/sessions", _) => Route::Login,
        ("/api/v1.0/session" | "/api/v1.0/users/password", _) => Route::Session,
        ("/api/v1.0/password_resets", _) => Route::Reset,
        _ => Route::Unknown,
    }
}

/// The password a change or a reset sets (`scripts/make-events.py`).
const NEW_PASSWORD: &str = "staple battery horse correct";

/// The cookie an event that needs a session carries until the replay fills it in.
fn session_placeholder(event: &str) -> Option<String> {
    let start = event.find("@session-of-")? + "@session-of-".len();
    let end = start + event[start..].find('@')?;
    Some(event[start..end].to_owned())
}

/// The deletion of the session cookie, as logout answers it.
const DELETED: &str = "__Host-session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax";

/// The address API Gateway saw: `requestContext.http.sourceIp` (2.0) or `identity.sourceIp`.
fn source_ip(event: &Value) -> &str {
    let context = &event["requestContext"];
    context["http"]["sourceIp"]
        .as_str()
        .or(context["identity"]["sourceIp"].as_str())
        .unwrap()
}

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

/// Every row a request can reach has an event on each route that can answer it, as HTTP API and
/// as REST API (`internal` has none: no request can ask for it; a unit test covers it).
#[test]
fn every_row_has_an_event_on_each_route_for_both_api_types() {
    use Outcome::*;
    let login_only = [
        LoggedIn,
        BadCredentials,
        TooManyAttempts,
        ThrottleStoreUnavailable,
    ];
    let register_only = [
        Registered,
        PasswordMismatch,
        WeakPassword(ihome_register::core::domain::Weakness::Common),
        InvalidSmsCode,
        SmsCodeExpired,
        SmsCodeMismatch,
        MobileExists,
        SmsStoreUnavailable,
    ];
    for api in ["http-api", "rest-api"] {
        let mut found = BTreeSet::new();
        for path in event_files() {
            if path.parent().unwrap().file_name().unwrap() != api {
                continue;
            }
            let name = path.file_stem().unwrap().to_str().unwrap();
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let code = outcome(name.split("--").next().unwrap()).code();
            found.insert((format!("{:?}", route(&event)), code));
        }
        for o in Outcome::ALL {
            let want: &[Route] = match o {
                Internal => &[],
                NotFound => &[Route::Unknown],
                // Issue 19's routes: the session ones (logout, everywhere, password change),
                // and the reset.
                LoggedOut | LoggedOutEverywhere | PasswordChanged | NotLoggedIn => {
                    &[Route::Session]
                }
                SessionStoreUnavailable => &[Route::Session],
                PasswordReset => &[Route::Reset],
                SmsCodeExpired | SmsCodeMismatch | InvalidSmsCode | SmsStoreUnavailable => {
                    &[Route::Register, Route::Reset]
                }
                o if login_only.contains(&o) => &[Route::Login],
                o if register_only.contains(&o) => &[Route::Register],
                _ => &[Route::Register, Route::Login],
            };
            for r in want {
                assert!(
                    found.contains(&(format!("{r:?}"), o.code())),
                    "{api}: no event for {} on {r:?}",
                    o.code()
                );
            }
        }
    }
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
        let mut text = std::fs::read_to_string(&path).unwrap();
        // A session the function itself issued, for the user this event names.
        let session = match session_placeholder(&text) {
            Some(m) => {
                let arranged = log_in_for(&mut st, &healthy.0, &m).await;
                text = text.replace(&format!("@session-of-{m}@"), &arranged.token);
                stored += 1;
                // That login's own metrics line.
                answered.push("logged_in".to_owned());
                Some(arranged)
            }
            None => None,
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        let route = route(&event);
        let form = body_of(&event);
        let field = |k: &str| form.as_ref().and_then(|f| f[k].as_str()).map(str::to_owned);
        let mobile = field("mobile").and_then(|m| Mobile::parse(&m).ok());
        let m = mobile.as_ref().map(|m| m.as_str().to_owned());
        let code = field("sms_code").unwrap_or_else(|| "123456".to_owned());
        let ctx = format!("{} ({mode_name})", path.display());

        // Arrange the stores for the row.
        let mut login = None;
        match (&mobile, route) {
            (Some(mobile), Route::Register) => {
                let m = mobile.as_str();
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
            (Some(mobile), Route::Reset) => {
                stored += usize::from(arrange_reset(&mut st, mobile, want, &name).await);
            }
            (_, Route::Session) => {}
            (Some(mobile), Route::Login | Route::Unknown) => {
                let arranged = arrange_login(&mut st, mobile, source_ip(&event), want, &name).await;
                stored += usize::from(arranged.user.is_some());
                login = Some(arranged);
            }
            (None, _) => {}
        }

        let (api, _) = match want {
            Outcome::SmsStoreUnavailable
            | Outcome::ThrottleStoreUnavailable
            | Outcome::SessionStoreUnavailable => &no_redis,
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
        // The iHome mode, written out here rather than taken from the library it tests: 200
        // wherever the seed answered in JSON, and for the login's too_many_attempts, which
        // iHome's own login answered in JSON.
        let status = match (mode, errno, want) {
            (StatusMode::Ihome, "0" | "4001" | "4002" | "4003" | "4004" | "4101" | "4103", _) => {
                200
            }
            (StatusMode::Ihome, _, Outcome::TooManyAttempts) => 200,
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
        // 503: one second; 429: the seconds left of the limit reached (600 here); else none.
        let retry_after = header(&answer, "retry-after");
        match want {
            Outcome::TooManyAttempts => {
                let seconds: u64 = retry_after.unwrap().parse().unwrap();
                assert!((1..=600).contains(&seconds), "{ctx}: retry-after {seconds}");
            }
            _ if http_status == 503 => assert_eq!(retry_after, Some("1"), "{ctx}"),
            _ => assert_eq!(retry_after, None, "{ctx}"),
        }
        assert!(
            !text.contains(PASSWORD)
                && !text.contains(WRONG_PASSWORD)
                && !text.contains(NEW_PASSWORD)
                && !text.contains(&code),
            "{ctx}: answer echoes a secret"
        );

        // The stored state.
        if route == Route::Session {
            check_session(&mut st, session.as_ref(), want, &event, &answer, &ctx).await;
            continue;
        }
        if route == Route::Reset {
            if let Some(m) = &mobile {
                check_reset(&mut st, m, want, &answer, &ctx).await;
            } else {
                assert!(cookies(&answer).is_empty(), "{ctx}");
            }
            continue;
        }
        if let Some(arranged) = login {
            check_login(&mut st, &arranged, want, &answer, &ctx).await;
            if want == Outcome::LoggedIn {
                masked_mobiles.push(mobile.as_ref().unwrap().masked());
            }
            continue;
        }
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
                let claims = decode_cookie(&st, &cookie[0]);
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
    assert!(replayed >= 120, "replayed only {replayed} events");
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
            "the registration or login of {m} is logged"
        );
    }
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        NEW_PASSWORD,
        FULL_WIDTH_PASSWORD,
        "123456",
        "eyJ",
        "$argon2",
        st.secret.as_str(),
        "13900000001",
        "13700000001",
        "13900000101",
        "13700000101",
        "13600000101",
        "203.0.113.21",
        "203.0.113.22",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}

/// What a login row's event met in the stores before it was replayed.
struct Arranged {
    mobile: Mobile,
    /// The three failure-count keys of (mobile, source address), as `stores::throttle` names them.
    keys: [String; 3],
    /// The same for the address `X-Forwarded-For` names first, which must never be counted.
    forged: [String; 3],
    /// The counts set before the event.
    before: [i64; 3],
    /// The stored user (user_id, password_hash), when the row has one.
    user: Option<(String, String)>,
}

/// Arranges the stores for a login event (or one to an unknown path): fresh throttle counts for
/// its mobile and source address; a user holding PASSWORD where the row needs one; a failure
/// count already at the default limit (5 in 10 minutes per mobile and address) for
/// `too_many_attempts`; and counts a success must clear or keep for `logged_in`.
async fn arrange_login(
    st: &mut Stores,
    mobile: &Mobile,
    ip: &str,
    want: Outcome,
    name: &str,
) -> Arranged {
    let keys = throttle::keys(mobile, &Source::from_address(Some(ip)));
    let forged = throttle::keys(mobile, &Source::from_address(Some(FORGED_IP)));
    for key in keys.iter().chain(&forged) {
        let _: () = st.redis.del(key).await.unwrap();
    }
    let before = match want {
        // Two failures from this address, three more from it for other mobiles, two for this
        // mobile: a success clears the first and leaves the other two as they were.
        Outcome::LoggedIn => [2, 3, 2],
        Outcome::TooManyAttempts => [5, 0, 0],
        _ => [0, 0, 0],
    };
    let windows: [u64; 3] = [600, 3600, 3600];
    for ((key, n), window) in keys.iter().zip(before).zip(windows) {
        if n > 0 {
            let _: () = st.redis.set_ex(key, n, window).await.unwrap();
        }
    }
    let has_user = matches!(
        want,
        Outcome::LoggedIn
            | Outcome::BadCredentials
            | Outcome::TooManyAttempts
            | Outcome::ThrottleStoreUnavailable
    ) && !name.contains("unknown-mobile");
    let user = if has_user {
        Some(put_user_with_password(st, mobile).await)
    } else {
        None
    };
    Arranged {
        mobile: mobile.clone(),
        keys,
        forged,
        before,
        user,
    }
}

/// Stores a user as a registration would have, with PASSWORD hashed by the function's own
/// hashing, under the name STORED_NAME (a renamed user's): returns (user_id, password_hash).
async fn put_user_with_password(st: &Stores, mobile: &Mobile) -> (String, String) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let hash = hashing::hash(&Password::parse(PASSWORD, PASSWORD, mobile).unwrap()).unwrap();
    let user_id = uuid::Uuid::now_v7().to_string();
    let s = |v: &str| AttributeValue::S(v.to_owned());
    st.ddb
        .put_item()
        .table_name(&st.table)
        .item("mobile", s(mobile.as_str()))
        .item("user_id", s(&user_id))
        .item("name", s(STORED_NAME))
        .item("password_hash", s(&hash))
        .item("created_at", s("2026-01-01T00:00:00Z"))
        .send()
        .await
        .unwrap();
    (user_id, hash)
}

async fn counts(st: &mut Stores, keys: &[String; 3]) -> [i64; 3] {
    let mut out = [0; 3];
    for (i, key) in keys.iter().enumerate() {
        let n: Option<i64> = st.redis.get(key).await.unwrap();
        out[i] = n.unwrap_or(0);
    }
    out
}

/// The stored state after a login event: the throttle counts, the item, the cookie.
async fn check_login(st: &mut Stores, a: &Arranged, want: Outcome, answer: &Value, ctx: &str) {
    let after = counts(st, &a.keys).await;
    let [by_both, by_address, by_mobile] = a.before;
    let expected = match want {
        // A success clears (mobile, address) and gives its place back in the other two.
        Outcome::LoggedIn => [0, by_address, by_mobile],
        // A failure judged by a verification counts once in each.
        Outcome::BadCredentials => [by_both + 1, by_address + 1, by_mobile + 1],
        // Refused before counting, and Redis down counts nothing; an attempt the user store
        // never judged is given back; a refusal before any store touches none.
        _ => a.before,
    };
    assert_eq!(
        after, expected,
        "{ctx}: failure counts (mobile+address, address, mobile)"
    );
    if want == Outcome::TooManyAttempts {
        let ttl: i64 = st.redis.pttl(&a.keys[0]).await.unwrap();
        assert!(ttl > 0, "{ctx}: the limit keeps its window");
    }
    assert_eq!(
        counts(st, &a.forged).await[..2],
        [0, 0],
        "{ctx}: X-Forwarded-For is never the address counted"
    );
    let item = st.item(a.mobile.as_str()).await;
    match &a.user {
        Some((user_id, hash)) => {
            let item = item.unwrap_or_else(|| panic!("{ctx}: the user is still there"));
            assert_eq!(s(&item, "user_id"), user_id, "{ctx}");
            assert_eq!(
                s(&item, "password_hash"),
                hash,
                "{ctx}: our hash, left as it was"
            );
        }
        None => assert!(item.is_none(), "{ctx}: a login creates nobody"),
    }
    let cookie = cookies(answer);
    if want != Outcome::LoggedIn {
        assert!(cookie.is_empty(), "{ctx}: no cookie");
        return;
    }
    assert_eq!(cookie.len(), 1, "{ctx}: one cookie");
    let (user_id, _) = a.user.as_ref().unwrap();
    let claims = decode_cookie(st, &cookie[0]);
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.name.as_str(),
            claims.mobile.as_str()
        ),
        (user_id.as_str(), STORED_NAME, a.mobile.as_str()),
        "{ctx}: the cookie names the stored user, by the item's name"
    );
}

/// A user stored for a session event and logged in through the function.
struct Session {
    mobile: Mobile,
    user_id: String,
    hash: String,
    token: String,
    jti: String,
}

/// Stores a user holding PASSWORD under `mobile` and logs it in through `api` (a login event of
/// its own, from an address of its own): the session a browser would hold.
async fn log_in_for(st: &mut Stores, api: &RuntimeApi, mobile: &str) -> Session {
    let mobile = Mobile::parse(mobile).unwrap();
    let (user_id, hash) = put_user_with_password(st, &mobile).await;
    let mut login: Value =
        serde_json::from_str(include_str!("../events/http-api/logged_in.json")).unwrap();
    let body = serde_json::json!({"mobile": mobile.as_str(), "password": PASSWORD});
    login["body"] = Value::String(body.to_string());
    login["requestContext"]["http"]["sourceIp"] = Value::String("198.51.100.77".into());
    let Reply::Response(answer) = api.invoke(login.to_string().as_bytes()).await else {
        panic!("the login for a session event failed")
    };
    let cookie = cookies(&answer).pop().expect("the login set a cookie");
    let claims = decode_cookie(st, &cookie);
    let token = cookie["__Host-session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    Session {
        mobile,
        user_id,
        hash,
        token,
        jti: claims.jti,
    }
}

/// The stored state after a logout, log out everywhere or password change event.
async fn check_session(
    st: &mut Stores,
    session: Option<&Session>,
    want: Outcome,
    event: &Value,
    answer: &Value,
    ctx: &str,
) {
    let cookie = cookies(answer);
    let ended_here = |s: &Session| format!("session_ended:{}", s.jti);
    let path = event["rawPath"]
        .as_str()
        .or(event["path"].as_str())
        .unwrap();
    let logout = path != "/api/v1.0/users/password";
    match want {
        // Logout and log out everywhere delete the cookie, with or without a session.
        Outcome::LoggedOut | Outcome::LoggedOutEverywhere | Outcome::NotLoggedIn if logout => {
            assert_eq!(cookie, [DELETED], "{ctx}: the cookie deleted")
        }
        Outcome::PasswordChanged => assert_eq!(cookie.len(), 1, "{ctx}: a fresh cookie"),
        _ => assert!(cookie.is_empty(), "{ctx}: no cookie"),
    }
    let Some(sess) = session else {
        return;
    };
    let item = st.item(sess.mobile.as_str()).await.unwrap();
    let version = item
        .get("session_version")
        .map(|v| v.as_n().unwrap().to_owned());
    let copy: Option<String> = st
        .redis
        .get(format!("session_user:{}", sess.user_id))
        .await
        .unwrap();
    let ended: Option<String> = st.redis.get(ended_here(sess)).await.unwrap();
    match want {
        Outcome::LoggedOut => {
            assert_eq!(ended.as_deref(), Some("1"), "{ctx}: this token ended");
            assert_eq!((version, copy.as_deref()), (None, Some("0")), "{ctx}");
        }
        Outcome::LoggedOutEverywhere => {
            assert_eq!(ended, None, "{ctx}");
            assert_eq!(
                (version.as_deref(), copy.as_deref()),
                (Some("1"), Some("1")),
                "{ctx}"
            );
            assert_eq!(s(&item, "password_hash"), sess.hash, "{ctx}: the hash kept");
        }
        Outcome::PasswordChanged => {
            assert_eq!(
                (version.as_deref(), copy.as_deref()),
                (Some("1"), Some("1")),
                "{ctx}"
            );
            let hash = s(&item, "password_hash");
            assert_ne!(hash, sess.hash, "{ctx}: the hash replaced");
            let typed = ihome_register::core::domain::TypedPassword::new(NEW_PASSWORD);
            assert!(
                hashing::verify(Some(hash), &typed).unwrap().matched,
                "{ctx}"
            );
            let claims = decode_cookie(st, &cookie[0]);
            assert_eq!(
                (claims.sub.as_str(), claims.sv),
                (sess.user_id.as_str(), 1),
                "{ctx}"
            );
        }
        _ => {
            // Refused (a wrong current password, a weak new one) or Redis down: nothing ended.
            assert_eq!((ended, version), (None, None), "{ctx}: nothing ended");
            assert_eq!(s(&item, "password_hash"), sess.hash, "{ctx}: the hash kept");
        }
    }
}

/// Arranges the stores for a reset event: a user holding PASSWORD where the row reaches the
/// user store, with a reset code (`sms_code_reset_<mobile>`; 000000 for the mismatch), or only
/// a registration code for the registration-code row. Returns whether a user was stored.
async fn arrange_reset(st: &mut Stores, mobile: &Mobile, want: Outcome, name: &str) -> bool {
    let m = mobile.as_str();
    let reset_key = format!("sms_code_reset_{m}");
    let _: () = st.redis.del(&reset_key).await.unwrap();
    st.del_code(m).await;
    let with_user = matches!(
        want,
        Outcome::PasswordReset
            | Outcome::SmsCodeMismatch
            | Outcome::SmsStoreUnavailable
            | Outcome::UserStoreUnavailable
    ) || name.contains("registration-code");
    if with_user {
        put_user_with_password(st, mobile).await;
    }
    let _: () = st.redis.del(format!("login_fail:m:{m}")).await.unwrap();
    match want {
        Outcome::SmsCodeExpired if name.contains("registration-code") => {
            st.set_code(m, "123456", 300).await
        }
        Outcome::SmsCodeExpired => {}
        Outcome::SmsCodeMismatch => {
            let _: () = st.redis.set_ex(&reset_key, "000000", 300).await.unwrap();
        }
        _ => {
            let _: () = st.redis.set_ex(&reset_key, "123456", 300).await.unwrap();
            // A lockout the reset must lift.
            let _: () = st
                .redis
                .set_ex(format!("login_fail:m:{m}"), 20, 3600)
                .await
                .unwrap();
        }
    }
    with_user
}

/// The stored state after a reset event.
async fn check_reset(st: &mut Stores, mobile: &Mobile, want: Outcome, answer: &Value, ctx: &str) {
    let m = mobile.as_str();
    let reset: Option<String> = st.redis.get(format!("sms_code_reset_{m}")).await.unwrap();
    let lock: Option<i64> = st.redis.get(format!("login_fail:m:{m}")).await.unwrap();
    let item = st.item(m).await;
    let cookie = cookies(answer);
    match want {
        Outcome::PasswordReset => {
            let item = item.unwrap();
            assert_eq!(reset, None, "{ctx}: the code spent");
            assert_eq!(lock, None, "{ctx}: the lockout lifted");
            assert_eq!(item["session_version"].as_n().unwrap(), "1", "{ctx}");
            let typed = ihome_register::core::domain::TypedPassword::new(NEW_PASSWORD);
            let hash = s(&item, "password_hash");
            assert!(
                hashing::verify(Some(hash), &typed).unwrap().matched,
                "{ctx}"
            );
            assert_eq!(cookie.len(), 1, "{ctx}: logged in");
            assert_eq!(decode_cookie(st, &cookie[0]).sv, 1, "{ctx}");
        }
        _ => {
            assert!(cookie.is_empty(), "{ctx}: no cookie");
            if let Some(item) = item {
                assert!(
                    !item.contains_key("session_version"),
                    "{ctx}: nothing ended"
                );
            }
            match want {
                Outcome::SmsCodeMismatch => {
                    let kept = reset.as_deref().map(support::StoredCode::parse);
                    let kept = kept.map(|c| (c.digits, c.wrong, c.claimed));
                    assert_eq!(kept, Some(("000000".into(), 1, false)), "{ctx}");
                }
                Outcome::SmsCodeExpired => {}
                // A store failed (the code given back), or refused before any store (untouched).
                _ => {
                    let kept = reset.as_deref().map(support::StoredCode::parse);
                    let kept = kept.map(|c| (c.digits, c.wrong, c.claimed));
                    assert_eq!(
                        kept,
                        Some(("123456".into(), 0, false)),
                        "{ctx}: the code kept"
                    );
                    assert_eq!(lock, Some(20), "{ctx}: the lockout stays");
                }
            }
            if want == Outcome::SmsCodeExpired {
                assert_eq!(reset, None, "{ctx}");
                // A registration code is not a reset code: left as it was.
                let registration = st.code(m).await;
                assert!(registration.is_none() || registration.as_deref() == Some("123456"));
            }
        }
    }
}

fn decode_cookie(st: &Stores, set_cookie: &str) -> ihome_register::core::session::Claims {
    let token = set_cookie
        .strip_prefix("__Host-session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    jsonwebtoken::decode::<ihome_register::core::session::Claims>(
        token,
        &DecodingKey::from_secret(st.secret.as_bytes()),
        &Validation::new(Algorithm::HS256),
    )
    .unwrap()
    .claims
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
