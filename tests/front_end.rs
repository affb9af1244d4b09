//! What the iHome front end and other sites see, against real Redis and the local DynamoDB
//! server: the status modes (`STATUS_CODES`) row by row, and the origin check (login CSRF).
//! Each case checks the answer and the stored state (the item, the code and its tries).

mod support;

use std::sync::Arc;

use ihome_register::edge::app::App;
use ihome_register::edge::http;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use support::{PASSWORD, Stores, closed_port, random_mobile, s};

const SITE: &str = "https://www.ihome.example";

/// A real HTTP API (2.0) event from `events/` with `body` and extra headers.
fn event(body: &str, headers: &[(&str, &str)]) -> Request {
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["body"] = json!(body);
    for (k, v) in headers {
        e["headers"][k] = json!(v);
    }
    lambda_http::request::from_str(&e.to_string()).unwrap()
}

fn form(mobile: &str, code: &str) -> String {
    json!({"mobile": mobile, "sms_code": code, "password": PASSWORD, "password2": PASSWORD})
        .to_string()
}

struct Answer {
    status: u16,
    errno: String,
    code: String,
    resp: Response<Body>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.resp.headers().get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send(app: &Arc<App>, mobile: &str, code: &str, req: Request) -> Answer {
    support::logs::forbid([mobile, code, PASSWORD]);
    let resp = http::handle(app.clone(), req).await;
    support::logs::assert_clean();
    let Body::Text(text) = resp.body() else {
        panic!("text body")
    };
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(!text.contains(code) && !text.contains(PASSWORD));
    Answer {
        status: resp.status().as_u16(),
        errno: v["errno"].as_str().unwrap().to_owned(),
        code: v["code"].as_str().unwrap().to_owned(),
        resp,
    }
}

/// Every row the seed answered in JSON is HTTP 200 in the iHome mode, with the same errno,
/// code, headers and cookie as in the http mode, and the same stored effect.
#[tokio::test]
async fn ihome_mode_answers_200_with_the_same_body_headers_cookie_and_effect() {
    let mut st = Stores::fresh().await;
    for (mode, app) in [
        ("ihome", st.app_env(&[("STATUS_CODES", "ihome")]).await),
        ("http", st.app().await),
    ] {
        let ok = |http: u16| if mode == "ihome" { 200 } else { http };

        // Registered: the cookie, the user, the code spent.
        let m = random_mobile();
        st.set_code(&m, "246810", 300).await;
        let a = send(&app, &m, "246810", event(&form(&m, "246810"), &[])).await;
        assert_eq!(
            (a.status, &*a.errno, &*a.code),
            (ok(201), "0", "registered")
        );
        let cookie = a.header("set-cookie").expect("the session cookie");
        assert!(cookie.starts_with("__Host-session=ey"), "{mode}");
        assert!(cookie.ends_with("; Path=/; Max-Age=86400; HttpOnly; Secure; SameSite=Lax"));
        let item = st.item(&m).await.expect("the user is stored");
        assert_eq!(s(&item, "mobile"), m);
        assert_eq!(st.code(&m).await, None);

        // Mobile taken: the first user kept, the proven code spent.
        let a = send(&app, &m, "135791", {
            st.set_code(&m, "135791", 300).await;
            event(&form(&m, "135791"), &[])
        })
        .await;
        assert_eq!(
            (a.status, &*a.errno, &*a.code),
            (ok(409), "4003", "mobile_exists")
        );
        assert_eq!(
            s(&st.item(&m).await.unwrap(), "user_id"),
            s(&item, "user_id")
        );
        assert_eq!(a.header("set-cookie"), None);

        // Wrong code: the stored one kept, one wrong try counted.
        let m = random_mobile();
        st.set_code(&m, "222222", 300).await;
        let a = send(&app, &m, "111111", event(&form(&m, "111111"), &[])).await;
        assert_eq!(
            (a.status, &*a.errno, &*a.code),
            (ok(400), "4002", "sms_code_mismatch")
        );
        let kept = st.stored(&m).await.unwrap();
        assert_eq!(
            (kept.digits.as_str(), kept.wrong, kept.claimed),
            ("222222", 1, false)
        );

        // Invalid input: nothing touched.
        let a = send(&app, &m, "222222", event(&form("12345", "222222"), &[])).await;
        assert_eq!(
            (a.status, &*a.errno, &*a.code),
            (ok(400), "4103", "invalid_mobile")
        );
        assert_eq!(st.stored(&m).await.unwrap().wrong, 1);

        // The stores down: 503 or 200, retry-after kept either way, the code kept.
        let no_redis = st
            .app_env(&[
                ("STATUS_CODES", mode),
                ("REDIS_URL", &format!("redis://{}", closed_port())),
            ])
            .await;
        let m = random_mobile();
        st.set_code(&m, "444444", 300).await;
        let a = send(&no_redis, &m, "444444", event(&form(&m, "444444"), &[])).await;
        assert_eq!(
            (a.status, &*a.errno, &*a.code),
            (ok(503), "4001", "sms_store_unavailable")
        );
        assert_eq!(a.header("retry-after"), Some(http::RETRY_AFTER_SECONDS));
        assert_eq!(st.code(&m).await.as_deref(), Some("444444"));
        assert!(st.item(&m).await.is_none());

        // 4201 and 4500 keep their statuses in both modes.
        let huge = json!({"padding": "x".repeat(http::MAX_BODY_BYTES)}).to_string();
        let a = send(&app, &m, "444444", event(&huge, &[])).await;
        assert_eq!(
            (a.status, &*a.errno, &*a.code),
            (413, "4201", "body_too_large")
        );
    }
    assert_eq!(st.count_items().await, 2);
}

/// Another site's form (text/plain, no preflight) carrying a valid code is refused before the
/// body is read: the code keeps no trace of the request and nothing is written. The site's own
/// origin registers.
#[tokio::test]
async fn another_site_cannot_sign_a_visitor_up_and_the_listed_origin_can() {
    let mut st = Stores::fresh().await;
    for mode in ["ihome", "http"] {
        let open = st.app_env(&[("STATUS_CODES", mode)]).await;
        let listed = st
            .app_env(&[("STATUS_CODES", mode), ("ALLOWED_ORIGINS", SITE)])
            .await;
        let m = random_mobile();
        st.set_code(&m, "864200", 300).await;
        let text_plain = ("content-type", "text/plain");
        for (app, headers) in [
            (
                &open,
                vec![
                    text_plain,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://evil.example"),
                ],
            ),
            (
                &listed,
                vec![
                    text_plain,
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "https://evil.example"),
                ],
            ),
            (&listed, vec![("origin", "https://evil.example")]),
            (
                &listed,
                vec![
                    ("sec-fetch-site", "same-site"),
                    ("origin", "https://api.ihome.example"),
                ],
            ),
            (&listed, vec![("origin", "null")]),
        ] {
            let a = send(app, &m, "864200", event(&form(&m, "864200"), &headers)).await;
            assert_eq!(
                (a.status, &*a.errno, &*a.code),
                (403, "4201", "forbidden_origin"),
                "{mode} {headers:?}"
            );
            assert_eq!(a.header("set-cookie"), None);
            let untouched = st.stored(&m).await.expect("the code is still there");
            assert_eq!(
                (
                    untouched.digits.as_str(),
                    untouched.wrong,
                    untouched.claimed
                ),
                ("864200", 0, false),
                "{headers:?}"
            );
            assert!(st.pttl(&m).await > 0, "with its TTL");
            assert!(st.item(&m).await.is_none(), "nothing written");
        }
        // Without either header (apps, curl, servers) and from the listed origin, it registers.
        let same_origin = [("sec-fetch-site", "same-origin"), ("origin", SITE)];
        let a = send(
            &listed,
            &m,
            "864200",
            event(&form(&m, "864200"), &same_origin),
        )
        .await;
        assert_eq!(a.code, "registered", "{mode}");
        assert!(a.header("set-cookie").is_some());
        assert!(st.item(&m).await.is_some());
        let m2 = random_mobile();
        st.set_code(&m2, "975310", 300).await;
        let a = send(&listed, &m2, "975310", event(&form(&m2, "975310"), &[])).await;
        assert_eq!(a.code, "registered", "{mode}");
        assert!(st.item(&m2).await.is_some());
    }
    assert_eq!(st.count_items().await, 4);
}
