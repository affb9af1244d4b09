//! Property tests for the parsers: whatever the input, a normalised value or a typed error,
//! never a panic; and what parses is what the contract says.

use ihome_register::domain::{Mobile, Password, Registration, Rejection, SmsCode};
use proptest::prelude::*;

#[path = "support/stand_ins.rs"]
mod stand_ins;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_is_a_normalised_mobile_or_invalid_mobile(raw in any::<String>()) {
        match Mobile::parse(&raw) {
            Ok(m) => {
                let d = m.as_str().as_bytes();
                prop_assert_eq!(d.len(), 11);
                prop_assert!(d.iter().all(u8::is_ascii_digit));
                prop_assert!(d[0] == b'1' && (b'3'..=b'9').contains(&d[1]));
                prop_assert_eq!(m.masked().len(), 11);
            }
            Err(e) => prop_assert_eq!(e, Rejection::InvalidMobile),
        }
    }

    #[test]
    fn every_mainland_number_parses_in_every_accepted_form(
        second in 3u8..=9, rest in "[0-9]{9}", prefix in prop::sample::select(vec!["", "+86", "86"]),
        before in "[ \t\n]{0,3}", after in "[ \t\n]{0,3}",
    ) {
        let number = format!("1{second}{rest}");
        let raw = format!("{before}{prefix}{number}{after}");
        let parsed = Mobile::parse(&raw).unwrap();
        prop_assert_eq!(parsed.as_str(), number.as_str());
    }

    #[test]
    fn any_string_is_a_code_only_if_six_ascii_digits(raw in any::<String>()) {
        let six = raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(SmsCode::parse(&raw).is_ok(), six);
    }

    #[test]
    fn passwords_are_accepted_or_refused_with_a_reason(p in any::<String>(), q in any::<String>()) {
        let mobile = Mobile::parse("13812345678").unwrap();
        prop_assert_eq!(
            Password::parse(&p, &q, &mobile).err().filter(|e| *e == Rejection::PasswordMismatch).is_some(),
            p != q
        );
        if let Ok(ok) = Password::parse(&p, &p, &mobile) {
            prop_assert!((8..=128).contains(&ok.expose().chars().count()));
        }
    }

    #[test]
    fn any_bytes_are_a_registration_or_a_rejection(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Registration::from_json(&body);
    }

    #[test]
    fn any_json_object_of_strings_is_a_registration_or_a_rejection(
        fields in prop::collection::btree_map(
            prop::sample::select(vec!["mobile", "sms_code", "password", "password2", "other"]),
            prop_oneof![any::<String>().prop_map(serde_json::Value::from), Just(serde_json::Value::Null), any::<i64>().prop_map(serde_json::Value::from)],
            0..5,
        )
    ) {
        let body = serde_json::to_vec(&fields).unwrap();
        if let Ok(r) = Registration::from_json(&body) {
            prop_assert_eq!(r.mobile.as_str().len(), 11);
        }
    }
}

/// The whole request path without I/O: an API Gateway event with arbitrary body bytes, method,
/// language and `Sec-Fetch-Site` through the handler, its stores stand-ins that hold no code.
/// Every answer is a JSON body in the contract with the status its `code` has in the mode: a
/// 4xx with real statuses, 200 or a 4201 4xx in the iHome mode; none is a 5xx.
mod request_path {
    use super::stand_ins::service;
    use ihome_register::contract::{Outcome, StatusMode};
    use ihome_register::domain::Weakness;
    use lambda_http::Body;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn every_answer_is_a_4xx_in_the_contract(
            body in prop::collection::vec(any::<u8>(), 0..20_000),
            keep_valid_body in any::<bool>(),
            method in prop::sample::select(vec!["POST", "GET", "PUT", "DELETE", "OPTIONS"]),
            lang in "[a-zA-Z;=,.* -]{0,20}",
            site in prop::sample::select(vec!["", "cross-site", "same-origin", "same-site", "none"]),
            http_statuses in any::<bool>(),
        ) {
            use base64::Engine;
            let mut e: Value = serde_json::from_str(include_str!("../events/http-api/registered.json")).unwrap();
            e["requestContext"]["http"]["method"] = json!(method);
            e["headers"]["accept-language"] = json!(lang);
            if !site.is_empty() {
                e["headers"]["sec-fetch-site"] = json!(site);
            }
            if !keep_valid_body {
                e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&body));
                e["isBase64Encoded"] = json!(true);
            }
            let req = lambda_http::request::from_str(&e.to_string()).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (mode, name) = match http_statuses {
                true => (StatusMode::Http, "http"),
                false => (StatusMode::Ihome, "ihome"),
            };
            let resp = runtime.block_on(ihome_register::http::handle(service(name), req));
            let status = resp.status().as_u16();
            let Body::Text(text) = resp.body() else { panic!("text body") };
            let answer: Value = serde_json::from_str(text).unwrap();
            prop_assert_eq!(answer.as_object().unwrap().len(), 3);
            prop_assert!(answer["errno"].as_str().is_some_and(|e| e.starts_with('4')));
            let outcome = outcome(answer["code"].as_str().unwrap());
            prop_assert!((400..500).contains(&outcome.status()), "{}", text);
            prop_assert_eq!(status, outcome.status_in(mode), "{}", text);
            if site == "cross-site" && method == "POST" {
                prop_assert_eq!(outcome, Outcome::ForbiddenOrigin);
            }
        }
    }

    /// The contract row named `code`.
    fn outcome(code: &str) -> Outcome {
        use Outcome::*;
        [
            InvalidBody,
            MissingField,
            InvalidMobile,
            PasswordMismatch,
            WeakPassword(Weakness::Common),
            InvalidSmsCode,
            SmsCodeExpired,
            BodyTooLarge,
            MethodNotAllowed,
            ForbiddenOrigin,
        ]
        .into_iter()
        .find(|o| o.code() == code)
        .unwrap_or_else(|| panic!("not an answer the stand-ins can give: {code}"))
    }
}
