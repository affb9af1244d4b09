//! Property tests for the parsers: whatever the input, a normalised value or a typed error,
//! never a panic; and what parses is what the contract says.

use ihome_register::core::domain::{Mobile, Password, Registration, Rejection, SmsCode, nfkc};
use proptest::prelude::*;

/// What people put between digits, half and full width ("" is no separator at all).
const SEPARATORS: [&str; 12] = [
    "", "", "", " ", "-", ".", "(", ")", "\u{3000}", "－", "．", "）",
];

/// The full-width form of an ASCII digit, as a Chinese input method types it.
fn full_width_of(digit: char) -> char {
    char::from_u32(digit as u32 - '0' as u32 + '０' as u32).unwrap()
}

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
    fn a_number_as_people_type_it_keys_like_its_plain_eleven_digits(
        second in 3u8..=9, rest in "[0-9]{9}",
        full_width in prop::collection::vec(any::<bool>(), 11),
        gaps in prop::collection::vec(prop::sample::select(SEPARATORS.to_vec()), 11),
        prefix in prop::sample::select(vec!["", "+86", "86", "0086", "(+86)", "+86 ", "＋８６", "００８６", "（＋８６）"]),
        before in "[ \t\n\u{3000}]{0,3}", after in "[ \t\n\u{3000}]{0,3}",
    ) {
        let number = format!("1{second}{rest}");
        let mut typed = format!("{before}{prefix}");
        for ((digit, wide), gap) in number.chars().zip(full_width).zip(gaps) {
            typed.push(if wide { full_width_of(digit) } else { digit });
            typed.push_str(gap);
        }
        typed.push_str(&after);
        let key = Mobile::parse(&typed);
        prop_assert_eq!(key.as_ref().map(Mobile::as_str), Ok(number.as_str()), "{:?}", typed);
        prop_assert_eq!(key, Mobile::parse(&number));
    }

    #[test]
    fn whatever_is_accepted_keys_by_the_last_eleven_digits_it_spells(
        second in 3u8..=9, rest in "[0-9]{9}",
        prefix in prop::sample::select(vec!["", "+86", "86", "0086", "＋８６ "]),
        junk in prop::collection::vec((0usize..16, "[0-9０-９+＋ ()（）.a\u{3000}\u{0}\t٣-]"), 0..3),
    ) {
        // A typed number with up to 2 characters slipped in: some are separators (still the
        // number), others digits, letters or controls (another number, or none).
        let mut typed: Vec<char> = format!("{prefix}1{second}{rest}").chars().collect();
        for (at, c) in &junk {
            typed.insert((*at).min(typed.len()), c.chars().next().unwrap());
        }
        let raw: String = typed.into_iter().collect();
        let spelled: String = nfkc(&raw).chars().filter(char::is_ascii_digit).collect();
        match Mobile::parse(&raw) {
            Ok(m) => {
                prop_assert!(spelled.ends_with(m.as_str()), "{:?}", raw);
                prop_assert!(["", "86", "0086"].contains(&&spelled[..spelled.len() - 11]), "{:?}", raw);
                prop_assert_eq!(Mobile::parse(m.as_str()), Ok(m.clone()), "the key is its own key");
            }
            Err(e) => {
                prop_assert_eq!(e, Rejection::InvalidMobile);
                let only_separators = junk.iter().all(|(_, c)| " ()（）.-\u{3000}".contains(c.as_str()));
                prop_assert!(!only_separators, "separators alone never break a number: {:?}", raw);
            }
        }
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
            nfkc(&p) != nfkc(&q)
        );
        if let Ok(ok) = Password::parse(&p, &p, &mobile) {
            prop_assert!((8..=128).contains(&ok.expose().chars().count()));
            prop_assert_eq!(nfkc(ok.expose()), ok.expose(), "kept in NFKC");
        }
    }

    #[test]
    fn a_password_typed_full_width_is_the_same_password(half in "[!-~]{1,140}") {
        // What a Chinese input method in full-width mode types for printable ASCII.
        let full: String = half.chars().map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap()).collect();
        let mobile = Mobile::parse("13812345678").unwrap();
        let (f, h) = (Password::parse(&full, &full, &mobile), Password::parse(&half, &half, &mobile));
        prop_assert_eq!(f.as_ref().err(), h.as_ref().err(), "one verdict");
        if let (Ok(f), Ok(h)) = (f, h) {
            prop_assert_eq!(f.expose(), h.expose());
        }
        prop_assert!(Password::parse(&full, &half, &mobile).err() != Some(Rejection::PasswordMismatch));
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
    use ihome_register::edge::contract::{Outcome, StatusMode};
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
            let resp = runtime.block_on(ihome_register::edge::http::handle(service(name), req));
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
        Outcome::from_code(code).unwrap_or_else(|| panic!("no contract row is named {code}"))
    }
}

/// `docs/sessions.md` tells logins to apply NFKC with Python's one-liner: it must agree with
/// the function's normalisation on what people type.
#[test]
fn the_python_one_liner_of_the_docs_normalises_like_the_function() {
    use std::io::Write;
    let docs = include_str!("../docs/sessions.md");
    let one_liner = r#"import unicodedata; typed = unicodedata.normalize("NFKC", typed)"#;
    assert!(docs.contains(one_liner), "the docs' line changed");
    let samples = [
        "correct horse battery",
        "ａｂｃ１２３ｘｙｚ！",
        "ｃｏｒｒｅｃｔ　ｈｏｒｓｅ",
        "\u{fb03}\u{fb03}ab",
        "cafe\u{301} au lait",
        "\u{fdfa}",
        "㈱㍻½ⅨΩK",
        "\u{1100}\u{1161}\u{11a8}한국어",
        "密码很长但是只有七",
        "𝐏𝐚𝐬𝐬 ①②③ ¹²³",
    ];
    let script = format!(
        "import json, sys\nout = []\nfor typed in json.load(sys.stdin):\n    {one_liner}\n    out.append(typed)\nprint(json.dumps(out))"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is installed (the scripts need it)");
    let input = serde_json::to_vec(&samples).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let python: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    let rust: Vec<String> = samples.iter().map(|s| nfkc(s).into_owned()).collect();
    assert_eq!(python, rust);
    assert_ne!(rust, samples, "the samples exercise normalisation");
}
