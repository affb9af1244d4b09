//! The new request bodies and the session cookie, parsed without I/O from bytes a client
//! controls (issue 19): every input goes through
//! - `PasswordChange::from_json` (the body of `PUT /api/v1.0/users/password`) against a fixed
//!   session mobile,
//! - `Registration::from_json` (the body of `POST /api/v1.0/password_resets`, which has the
//!   registration's shape), and
//! - `Verifier::verify_cookie` (the `Cookie` header every authenticated route reads), the bytes
//!   as a header value.
//!
//! None may panic. A password change refuses only with the rows its route can answer (never
//! `invalid_mobile` nor `invalid_sms_code`: the mobile is the session's, there is no code), and
//! refuses an unreadable body exactly as a registration does (one `Fields` reader). A cookie is
//! accepted only with this verifier's issuer, and a header without the cookie is `NoCookie`.
//! scripts/fuzz seeds the corpus with the events' bodies, cookie headers and a token signed with
//! SECRET below (so mutations start from a token that verifies).
#![no_main]

use std::sync::LazyLock;

use ihome_register::core::domain::{Mobile, PasswordChange, Registration, Rejection};
use ihome_register::core::session::{VerifyError, Verifier};
use libfuzzer_sys::fuzz_target;

/// The seed token's key and issuer (scripts/fuzz signs one with them).
const SECRET: &[u8] = b"fuzz-bodies-0123456789abcdef-0123456789";
const ISSUER: &str = "ihome";

static MOBILE: LazyLock<Mobile> = LazyLock::new(|| Mobile::parse("13812345678").unwrap());
static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| Verifier::new([SECRET], ISSUER).unwrap());

fuzz_target!(|data: &[u8]| {
    let change = PasswordChange::from_json(data, &MOBILE);
    if let Err(r) = &change {
        assert!(
            !matches!(r, Rejection::InvalidMobile | Rejection::InvalidSmsCode),
            "a password change refused with {r:?}"
        );
    }
    let reset = Registration::from_json(data);
    // One body reader: unreadable for one is unreadable for the other.
    assert_eq!(
        matches!(change, Err(Rejection::InvalidBody)),
        matches!(reset, Err(Rejection::InvalidBody)),
        "the two bodies disagree on whether the body is readable"
    );

    let header = String::from_utf8_lossy(data);
    match VERIFIER.verify_cookie(&header) {
        Ok(claims) => assert_eq!(claims.iss, ISSUER),
        Err(VerifyError::NoCookie) => {}
        Err(_) => assert!(
            header.contains("__Host-session="),
            "a header without the cookie failed as something else than NoCookie"
        ),
    }
});
