//! The session cookie as other services see it, on a cookie this function issued through the
//! real handler (real Redis, the local DynamoDB server): the Rust verifier and the Flask hook
//! (contrib/flask/ihome_session.py) both log the request in as the stored user, across a key
//! rotation, and both refuse a tampered, foreign-keyed or expired cookie.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ihome_register::core::session::{Claims, Verifier, VerifyError, key_id};
use ihome_register::edge::app::App;
use ihome_register::edge::http;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{PASSWORD, Stores, random_mobile, random_secret, s};

/// Registers `mobile` through the handler as the iHome front end does (the default status
/// mode) and returns the `set-cookie` value and the stored item's `user_id`.
async fn register(st: &mut Stores, app: &Arc<App>, mobile: &str) -> (String, String) {
    support::logs::forbid([mobile, "135790", PASSWORD]);
    st.set_code(mobile, "135790", 300).await;
    let mut e: Value =
        serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
    e["body"] = json!(
        json!({"mobile": mobile, "sms_code": "135790",
                             "password": PASSWORD, "password2": PASSWORD})
        .to_string()
    );
    let resp = http::handle(
        app.clone(),
        lambda_http::request::from_str(&e.to_string()).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200, "STATUS_CODES=ihome answers 200");
    let lambda_http::Body::Text(body) = resp.body() else {
        panic!("text body")
    };
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["code"],
        "registered"
    );
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-session=ey"));
    let item = st.item(mobile).await.expect("the user is stored");
    assert_eq!(st.code(mobile).await, None, "the code is spent");
    (cookie, s(&item, "user_id").to_owned())
}

/// The JWT inside a `set-cookie` value.
fn token_of(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("__Host-session="))
        .expect("the session cookie")
}

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Claims, key: &str, kid_of: &str) -> String {
    let header = Header {
        kid: Some(key_id(kid_of.as_bytes())),
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

/// What no verifier may accept, made from a real session: the payload changed to another
/// user (signature kept); the same claims signed with a key nobody holds (under its own kid, and
/// under the current key's); signed with the current key but naming the stranger's kid (the kid
/// binds the key); and, signed with the current key, expired or from another issuer.
fn forgeries(token: &str, current: &str, other_user: &str) -> Vec<(&'static str, String)> {
    let (header, signature) = (
        token.split('.').next().unwrap(),
        token.rsplit('.').next().unwrap(),
    );
    let mut claims = claims_of(token);
    claims.sub = other_user.to_owned();
    let tampered = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let claims = claims_of(token);
    let stranger = random_secret();
    support::logs::forbid([&stranger]);
    let mut expired = claims_of(token);
    expired.exp = expired.iat - 3600;
    expired.iat -= 3600 + 86_400;
    let mut foreign = claims_of(token);
    foreign.iss = "elsewhere".into();
    vec![
        ("tampered", tampered),
        ("unknown_key", sign(&claims, &stranger, &stranger)),
        ("forged_kid", sign(&claims, &stranger, current)),
        ("stranger_kid", sign(&claims, current, &stranger)),
        ("expired", sign(&expired, current, current)),
        ("other_issuer", sign(&foreign, current, current)),
    ]
}

struct Rotation {
    st: Stores,
    previous: String,
    /// Issued by the function while it signed with the previous key, and now.
    old: (String, String),
    new: (String, String),
}

/// The function signs a session with the previous key, then (rotated) one with the current.
async fn rotation() -> Rotation {
    let mut st = Stores::fresh().await;
    let previous = random_secret();
    support::logs::forbid([&previous]);
    let before = st
        .app_env(&[("STATUS_CODES", "ihome"), ("JWT_SECRET", &previous)])
        .await;
    let old = register(&mut st, &before, &random_mobile()).await;
    let after = st.app_env(&[("STATUS_CODES", "ihome")]).await;
    let new = register(&mut st, &after, &random_mobile()).await;
    Rotation {
        st,
        previous,
        old,
        new,
    }
}

#[tokio::test]
async fn the_rust_verifier_accepts_this_functions_cookies_across_a_rotation() {
    let r = rotation().await;
    let current = r.st.secret.as_str();
    let verifier = Verifier::new([r.previous.as_bytes(), current.as_bytes()], "ihome").unwrap();

    for (cookie, user_id) in [&r.old, &r.new] {
        let claims = verifier.verify_cookie(cookie).expect("a valid session");
        assert_eq!(&claims.sub, user_id, "sub is the stored user_id");
        assert_eq!(claims.name, claims.mobile);
        let item =
            r.st.item(&claims.mobile)
                .await
                .expect("stored under its mobile");
        assert_eq!(s(&item, "user_id"), user_id);
        // As a browser sends it back.
        let header = format!("lang=zh; __Host-session={}", token_of(cookie));
        assert_eq!(verifier.verify_cookie(&header).unwrap(), claims);
    }
    let kid = |c: &str| jsonwebtoken::decode_header(token_of(c)).unwrap().kid;
    assert_eq!(kid(&r.old.0), Some(key_id(r.previous.as_bytes())));
    assert_eq!(kid(&r.new.0), Some(key_id(current.as_bytes())));

    // Once the previous key is dropped, its sessions are refused by kid.
    let current_only = Verifier::new([current.as_bytes()], "ihome").unwrap();
    assert!(current_only.verify_cookie(&r.new.0).is_ok());
    assert_eq!(
        current_only.verify_cookie(&r.old.0).err(),
        Some(VerifyError::UnknownKey)
    );

    let token = token_of(&r.new.0);
    let expected = [
        ("tampered", VerifyError::Signature),
        ("unknown_key", VerifyError::UnknownKey),
        ("forged_kid", VerifyError::Signature),
        ("stranger_kid", VerifyError::UnknownKey),
        ("expired", VerifyError::Expired),
        ("other_issuer", VerifyError::Issuer),
    ];
    assert_eq!(forgeries(token, current, &r.old.1).len(), expected.len());
    for ((case, forged), (name, error)) in forgeries(token, current, &r.old.1).iter().zip(expected)
    {
        assert_eq!(*case, name);
        assert_eq!(verifier.verify(forged).err(), Some(error), "{case}");
    }
    support::logs::assert_clean();
}

#[tokio::test]
async fn the_flask_hook_logs_in_with_this_functions_cookies_and_refuses_forgeries() {
    let r = rotation().await;
    let current = r.st.secret.as_str();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("tests/flask/session_hook.py"))
        .env("JWT_SECRET", current)
        .env("JWT_SECRET_PREVIOUS", &r.previous)
        .env_remove("JWT_ISSUER")
        .env("COOKIE_VALID", token_of(&r.new.0))
        .env("COOKIE_OLD", token_of(&r.old.0));
    let forged = forgeries(token_of(&r.new.0), current, &r.old.1);
    let mut cases = vec!["valid", "old"];
    for (case, token) in &forged {
        cmd.env(format!("COOKIE_{}", case.to_uppercase()), token);
        cases.push(case);
    }
    let run = cmd
        .env("SESSION_CASES", cases.join(","))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{} runs (scripts/test installs it): {e}", python.display()));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "the Flask driver failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&run.stdout).unwrap();

    // The hook logs in as the SQL row it found or created by mobile: an integer id, never the
    // cookie's sub, never user #1's (13000000001, already there).
    let rows = seen["rows"].clone();
    assert_eq!(rows.as_object().map(|r| r.len()), Some(3), "{rows}");
    let login = |(cookie, _): &(String, String)| {
        let mobile = claims_of(token_of(cookie)).mobile;
        let id = &rows[&mobile];
        assert!(id.as_u64().is_some_and(|id| id > 1), "{mobile}: {id}");
        json!({"user_id": id, "name": mobile, "mobile": mobile})
    };
    let (new, old) = (login(&r.new), login(&r.old));
    for (cookie, user_id) in [&r.new, &r.old] {
        let mobile = claims_of(token_of(cookie)).mobile;
        assert_eq!(s(&r.st.item(&mobile).await.unwrap(), "user_id"), user_id);
    }
    assert_eq!(
        seen,
        json!({
            "valid": new,
            "old": old,
            "tampered": null,
            "unknown_key": null,
            "forged_kid": null,
            "stranger_kid": null,
            "expired": null,
            "other_issuer": null,
            "no_cookie": null,
            "valid_then_tampered": [new, null],
            // logged in; the logout's answer deletes the cookie; the client drops it; out.
            "logout": [new, true, true, null],
            "rows": rows,
        })
    );
    assert!(!stderr.contains(current) && !stderr.contains("eyJ"));
    support::logs::assert_clean();
}
