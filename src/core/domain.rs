//! The request's four fields, parsed into values that cannot be invalid ("parse, don't
//! validate"). Nothing here touches I/O, so every rule that can reject a request runs before the
//! SMS code is consumed.

use std::borrow::Cow;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// Unicode NFKC (compatibility decomposition, then canonical composition), as NIST SP 800-63B
/// asks of passwords and as a Chinese input method's full-width forms need. ASCII is already in
/// NFKC, so the common case costs one scan and no allocation.
pub fn nfkc(raw: &str) -> Cow<'_, str> {
    if raw.is_ascii() {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.nfkc().collect())
    }
}

/// Why a request was rejected before any I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("body is empty, not UTF-8, not JSON or not a JSON object")]
    InvalidBody,
    #[error("a field is missing, null, empty or not a string")]
    MissingField,
    #[error("mobile is not a mainland mobile number")]
    InvalidMobile,
    #[error("password and password2 differ")]
    PasswordMismatch,
    #[error("password fails the policy: {0:?}")]
    WeakPassword(Weakness),
    #[error("sms_code is not exactly 6 ASCII digits")]
    InvalidSmsCode,
}

/// Which rule of the password policy (NIST 800-63B) a password broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    TooShort,
    TooLong,
    SameAsMobile,
    Common,
}

/// A mainland China mobile number in its 11-digit form: `1[3-9]` then 9 ASCII digits.
///
/// Accepts a number as people type it: NFKC first (so full-width digits, `＋` and the
/// ideographic space of a Chinese input method become ASCII), surrounding whitespace trimmed,
/// then spaces, `-`, `.` and parentheses removed anywhere, then one `+86`, `0086` or `86` prefix
/// stripped. What is left must be exactly `^1[3-9][0-9]{9}$`. The seed's unanchored `re.match`
/// also let through longer strings, trailing junk and non-ASCII digits, and refused the 16x/19x
/// ranges; those stay refused (digits NFKC does not map to ASCII, such as Arabic-Indic ones, are
/// not digits here).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

static MOBILE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^1[3-9][0-9]{9}$").expect("the mobile pattern compiles"));

/// What may stand between the digits of a number as typed: `+86 138-1234-5678`, `(+86)138...`.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')')
}

impl Mobile {
    /// Compiles the pattern and pages in the NFKC tables ahead of the first request (init runs
    /// at full CPU; the first request would otherwise take the page faults).
    pub fn prepare() {
        LazyLock::force(&MOBILE_RE);
        // Full width (compatibility), a combining accent (composition), a ligature, Hangul.
        std::hint::black_box(nfkc("＋８６ １３８-ｅ\u{301}ﬃ가").len());
    }

    pub fn parse(raw: &str) -> Result<Self, Rejection> {
        // Only `0086` and 11 digits can matter: a longer input is refused as soon as that much
        // of it is normalised, so a 16 KiB field costs microseconds, not a whole NFKC pass.
        const LONGEST: usize = 15;
        let mut compact = String::with_capacity(LONGEST);
        for c in raw.trim().nfkc().filter(|c| !is_separator(*c)) {
            if compact.len() >= LONGEST {
                return Err(Rejection::InvalidMobile);
            }
            compact.push(c);
        }
        let digits = ["+86", "0086", "86"]
            .iter()
            .find_map(|prefix| compact.strip_prefix(prefix))
            .unwrap_or(&compact);
        if digits.len() == 11 && MOBILE_RE.is_match(digits) {
            Ok(Self(digits.to_owned()))
        } else {
            Err(Rejection::InvalidMobile)
        }
    }

    /// The 11-digit form that keys the user and the SMS code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`: the only form of a mobile that may appear in a log line.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

/// Debug prints the masked form, so a stray `{:?}` cannot leak a number into the logs.
impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

/// The code the user typed: exactly 6 ASCII digits, nothing trimmed.
pub struct SmsCode(SecretString);

impl SmsCode {
    pub fn parse(raw: &str) -> Result<Self, Rejection> {
        if raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(SecretString::from(raw)))
        } else {
            Err(Rejection::InvalidSmsCode)
        }
    }

    /// The six digits, for the store that compares them (inside Redis, in one atomic script).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmsCode(******)")
    }
}

/// Minimum and maximum password length, in characters (Unicode scalar values) after NFKC.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

include!(concat!(env!("OUT_DIR"), "/common_passwords.rs"));

/// A password that passed the policy, in NFKC: 8 to 128 characters, not the mobile number (in
/// any form `Mobile::parse` accepts), and not among the 20,000 most common passwords (compared
/// case-insensitively; see `data/`).
///
/// Both fields are normalised to NFKC before anything else, as NIST SP 800-63B asks of
/// verifiers: a Chinese input method left in full-width mode types `ａｂｃ１２３` for `abc123`,
/// and the same password typed half-width at login must match. Length is counted, the policy
/// checked and the hash taken on the normalised form, so a login must apply NFKC too
/// (`docs/sessions.md`). Nothing is trimmed.
pub struct Password(SecretString);

impl Password {
    pub fn parse(password: &str, password2: &str, mobile: &Mobile) -> Result<Self, Rejection> {
        // Typed the same (the usual case) is the same after NFKC; otherwise compare as the two
        // normalise, stopping at the first difference.
        if password != password2 && !password.nfkc().eq(password2.nfkc()) {
            return Err(Rejection::PasswordMismatch);
        }
        // Counted on the normalised form, but no further than the policy needs: a long input
        // is too long without normalising all of it (one NFKC character can expand to 18).
        let chars = password.nfkc().take(*PASSWORD_CHARS.end() + 1).count();
        let weak = |w| Err(Rejection::WeakPassword(w));
        if chars < *PASSWORD_CHARS.start() {
            return weak(Weakness::TooShort);
        }
        if chars > *PASSWORD_CHARS.end() {
            return weak(Weakness::TooLong);
        }
        let password = nfkc(password);
        if Mobile::parse(&password).is_ok_and(|m| &m == mobile) {
            return weak(Weakness::SameAsMobile);
        }
        if is_common(&password) {
            return weak(Weakness::Common);
        }
        Ok(Self(SecretString::from(password.into_owned())))
    }

    /// The normalised password, for the hash.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(******)")
    }
}

fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS
        .binary_search(&password.to_lowercase().as_str())
        .is_ok()
}

/// A registration request whose every field is valid.
#[derive(Debug)]
pub struct Registration {
    pub mobile: Mobile,
    pub sms_code: SmsCode,
    pub password: Password,
}

/// A request body's fields: a JSON object, whatever the content-type said.
struct Fields(serde_json::Map<String, Value>);

impl Fields {
    fn parse(body: &[u8]) -> Result<Self, Rejection> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok(Self(fields)),
            _ => Err(Rejection::InvalidBody),
        }
    }

    /// A field that must be a non-empty string.
    fn get(&self, name: &str) -> Result<&str, Rejection> {
        match self.0.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            _ => Err(Rejection::MissingField),
        }
    }
}

impl Registration {
    /// Parses a request body: a JSON object with the string fields `mobile`, `sms_code`,
    /// `password` and `password2`. Other fields are ignored. The checks run in the order of the
    /// contract's table: body, fields, mobile, passwords, code.
    pub fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        let fields = Fields::parse(body)?;
        let (mobile, sms_code, password, password2) = (
            fields.get("mobile")?,
            fields.get("sms_code")?,
            fields.get("password")?,
            fields.get("password2")?,
        );
        let mobile = Mobile::parse(mobile)?;
        let password = Password::parse(password, password2, &mobile)?;
        let sms_code = SmsCode::parse(sms_code)?;
        Ok(Self {
            mobile,
            sms_code,
            password,
        })
    }
}

/// A password as typed at login, kept exactly as typed. No policy applies (the policy is for
/// choosing a password, not for presenting one): whatever it is, it is verified, so a refusal
/// takes as long as any other. An argon2id hash of ours is over its NFKC form, as registration
/// hashed it; an imported werkzeug hash is over the bytes as typed, as the old site never
/// normalised.
pub struct TypedPassword(SecretString);

impl TypedPassword {
    pub fn new(typed: &str) -> Self {
        Self(SecretString::from(typed))
    }

    /// The bytes as typed, for a werkzeug hash.
    pub fn as_typed(&self) -> &str {
        self.0.expose_secret()
    }

    /// The NFKC form, for an argon2id hash (and the one a new hash is taken over).
    pub fn normalised(&self) -> Cow<'_, str> {
        nfkc(self.0.expose_secret())
    }
}

impl fmt::Debug for TypedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TypedPassword(******)")
    }
}

/// A login request whose fields are usable: `{mobile, password}`.
#[derive(Debug)]
pub struct Credentials {
    pub mobile: Mobile,
    pub password: TypedPassword,
}

impl Credentials {
    /// Parses a request body: a JSON object with the string fields `mobile` and `password`, read
    /// like a registration's (the mobile in any form `Mobile::parse` accepts). Checks in the
    /// contract's order: body, fields, mobile.
    pub fn from_json(body: &[u8]) -> Result<Self, Rejection> {
        let fields = Fields::parse(body)?;
        let (mobile, password) = (fields.get("mobile")?, fields.get("password")?);
        Ok(Self {
            mobile: Mobile::parse(mobile)?,
            password: TypedPassword::new(password),
        })
    }
}

/// A password change, `{password, new_password, new_password2}`, for the session's user: the
/// current password as typed (verified like a login's), and the new one under the registration's
/// policy and normalisation. A new password equal to the current one is allowed: the change still
/// ends every other session, and refusing it would protect nothing the user does not know.
#[derive(Debug)]
pub struct PasswordChange {
    pub current: TypedPassword,
    pub new: Password,
}

impl PasswordChange {
    /// Parses a request body; `mobile` is the session's, which the new password may not be.
    /// Checks in the contract's order: body, fields, the new password's policy.
    pub fn from_json(body: &[u8], mobile: &Mobile) -> Result<Self, Rejection> {
        let fields = Fields::parse(body)?;
        let (current, new, new2) = (
            fields.get("password")?,
            fields.get("new_password")?,
            fields.get("new_password2")?,
        );
        Ok(Self {
            current: TypedPassword::new(current),
            new: Password::parse(new, new2, mobile)?,
        })
    }
}

/// Where a login attempt came from, as the throttles count it: the address API Gateway saw
/// (`requestContext.http.sourceIp` / `identity.sourceIp`), never `X-Forwarded-For`, which the
/// client writes. An IPv6 address counts as its /64, the block one subscriber is given and can
/// rotate addresses within freely; an IPv4-mapped IPv6 address as its IPv4 address. A request
/// without a readable address (none reaches the function through API Gateway) counts as
/// `unknown`, one shared source.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Source(String);

impl Source {
    pub fn from_address(address: Option<&str>) -> Self {
        use std::net::IpAddr;
        let parsed = address.and_then(|a| a.trim().parse::<IpAddr>().ok());
        Self(match parsed.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            None => "unknown".to_owned(),
        })
    }

    /// The address, or its /64 for IPv6, or `unknown`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Debug hides the address: it is personal data, and no log line needs it.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Source(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_that_parse_normalise_to_eleven_digits() {
        for (raw, want) in [
            ("13812345678", "13812345678"),
            ("13012345678", "13012345678"),
            ("16612345678", "16612345678"),
            ("19912345678", "19912345678"),
            ("  13812345678 ", "13812345678"),
            ("13812345678\n", "13812345678"),
            ("+8613812345678", "13812345678"),
            ("8613812345678", "13812345678"),
            (" +8619912345678\t", "19912345678"),
        ] {
            assert_eq!(
                Mobile::parse(raw).map(|m| m.0),
                Ok(want.to_owned()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn mobiles_as_people_type_them_are_one_number() {
        for raw in [
            "+86 138 1234 5678",
            "138 1234 5678",
            "138-1234-5678",
            "138.1234.5678",
            "0086 13812345678",
            "008613812345678",
            "0086-138-1234-5678",
            "(+86)13812345678",
            "(+86) 138 1234 5678",
            "86 138 1234 5678",
            "+86-138-1234-5678",
            "(138)12345678",
            // A Chinese input method in full-width mode: digits, plus, ideographic space.
            "１３８１２３４５６７８",
            "＋８６　１３８　１２３４　５６７８",
            "（＋８６）１３８－１２３４－５６７８",
            "０ ０ ８ ６ １３８１２３４５６７８",
            "\u{3000}13812345678\u{3000}",
            "138\u{a0}1234\u{a0}5678", // no-break spaces, NFKC: spaces
            "１38１２34５６78",        // half and full width mixed
        ] {
            assert_eq!(
                Mobile::parse(raw).map(|m| m.0),
                Ok("13812345678".to_owned()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn mobiles_the_seed_got_wrong_are_rejected() {
        for raw in [
            "138123456789999",  // unanchored regex accepted a 15-digit string
            "13812345678abc",   // ... and trailing junk
            "13812345678\n1",   // ... and a second line
            "13١٢٣٤٥٦٧٨٩",      // Arabic-Indic digits matched \d
            "12812345678",      // 12x is no mobile range
            "1381234567",       // 10 digits
            "23812345678",      // does not start with 1
            "0086138123456780", // 00 prefix, 12 digits after it
            "+8513812345678",   // another country
            "+86",              // prefix only
            "",                 // empty after the field check is impossible, but still
        ] {
            assert_eq!(Mobile::parse(raw), Err(Rejection::InvalidMobile), "{raw:?}");
        }
    }

    #[test]
    fn numbers_that_are_not_one_mainland_mobile_stay_rejected() {
        for raw in [
            "138 1234 567",             // 10 digits
            "138 1234 56789",           // 12 digits
            "+86 138 1234 56789",       // 12 digits after the prefix
            "１３８１２３４５６７",     // 10 full-width digits
            "138a1234b5678",            // letters anywhere
            "a13812345678",             // ... even in front
            "１３８１２３４５６７８ｘ", // a full-width letter is a letter
            "+1 138 1234 5678",         // another country code
            "+852 138 1234 5678",       // Hong Kong
            "001 13812345678",          // another international prefix
            "+86+8613812345678",        // the prefix twice
            "8686 13812345678",         // ... written out
            "+ 8 6 1 3 8",              // far too short
            "١٣٨١٢٣٤٥٦٧٨",              // Arabic-Indic digits: NFKC leaves them alone
            "۱۳۸۱۲۳۴۵۶۷۸",              // Extended Arabic-Indic (Persian)
            "१३८१२३४५६७८",              // Devanagari
            "13812345678\u{0}",         // a control character
            "138\t1234\t5678",          // tabs are not separators
            "138\n1234\n5678",          // nor line breaks
            "138\u{7f}12345678",        // DEL
            "138\u{200b}12345678",      // a zero-width space NFKC keeps
            "138_1234_5678",            // not a separator
            "138/1234/5678",            // nor this
            "138–1234–5678",            // an en dash NFKC keeps
            "+86 038 1234 5678",        // no 0 after the prefix
        ] {
            assert_eq!(Mobile::parse(raw), Err(Rejection::InvalidMobile), "{raw:?}");
        }
    }

    #[test]
    fn masked_mobile_hides_the_middle_four_digits() {
        let m = Mobile::parse("13812345678").unwrap();
        assert_eq!(m.masked(), "138****5678");
        assert_eq!(format!("{m:?}"), "Mobile(138****5678)");
    }

    #[test]
    fn sms_codes_are_exactly_six_ascii_digits() {
        assert!(SmsCode::parse("012345").is_ok());
        for raw in [
            "12345",
            "1234567",
            " 123456",
            "123456 ",
            "12345a",
            "１２３４５６",
            "١٢٣٤٥٦",
        ] {
            assert_eq!(
                SmsCode::parse(raw).err(),
                Some(Rejection::InvalidSmsCode),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn sms_code_keeps_its_digits_and_hides_them_from_debug() {
        let code = SmsCode::parse("012345").unwrap();
        assert_eq!(code.expose(), "012345");
        assert_eq!(format!("{code:?}"), "SmsCode(******)");
    }

    fn mobile() -> Mobile {
        Mobile::parse("13812345678").unwrap()
    }

    #[test]
    fn password_policy() {
        let weak = |p: &str| Password::parse(p, p, &mobile()).err();
        assert_eq!(weak("correct horse battery"), None);
        assert_eq!(weak("Zr7#kq!m"), None, "8 characters is enough");
        assert_eq!(
            weak("Zr7#kq!"),
            Some(Rejection::WeakPassword(Weakness::TooShort))
        );
        assert_eq!(
            weak("密码很长但是只有七"),
            None,
            "9 CJK characters count as 9"
        );
        assert_eq!(
            weak("密码只有七个字"),
            Some(Rejection::WeakPassword(Weakness::TooShort))
        );
        assert_eq!(weak(&"x".repeat(128)), None);
        assert_eq!(
            weak(&"x".repeat(129)),
            Some(Rejection::WeakPassword(Weakness::TooLong))
        );
        for same in ["13812345678", "+8613812345678", "8613812345678"] {
            assert_eq!(
                weak(same),
                Some(Rejection::WeakPassword(Weakness::SameAsMobile))
            );
        }
        assert_eq!(
            weak("13912345678"),
            None,
            "another number is only a password"
        );
        for common in [
            "password",
            "PASSWORD",
            "12345678",
            "iloveyou",
            "qwertyuiop",
            "1qaz2wsx",
        ] {
            assert_eq!(
                weak(common),
                Some(Rejection::WeakPassword(Weakness::Common)),
                "{common}"
            );
        }
    }

    #[test]
    fn full_and_half_width_forms_of_a_password_are_one_password() {
        let (full, half) = ("ａｂｃ１２３ｘｙｚ！", "abc123xyz!");
        let p = Password::parse(full, half, &mobile()).expect("one password typed two ways");
        assert_eq!(p.expose(), half, "kept in NFKC");
        let q = Password::parse(half, full, &mobile()).unwrap();
        assert_eq!(q.expose(), half);
        // The ideographic space a full-width input method types is a space.
        let spaced = Password::parse("ｃｏｒｒｅｃｔ　ｈｏｒｓｅ", "correct horse", &mobile());
        assert_eq!(spaced.unwrap().expose(), "correct horse");
        // Canonically equivalent spellings (precomposed or combining accent) are one password.
        let composed = Password::parse("caf\u{e9} au lait", "cafe\u{301} au lait", &mobile());
        assert_eq!(composed.unwrap().expose(), "caf\u{e9} au lait");
        assert_eq!(
            Password::parse("ａｂｃ１２３ｘｙｚ！", "abc123xyz?", &mobile()).err(),
            Some(Rejection::PasswordMismatch)
        );
    }

    #[test]
    fn password_length_is_counted_after_normalising() {
        let weak = |p: &str| Password::parse(p, p, &mobile()).err();
        // U+FB03 "ﬃ" is three letters in NFKC: 4 characters typed, 8 counted.
        assert_eq!("\u{fb03}\u{fb03}ab".chars().count(), 4);
        assert_eq!(
            weak("\u{fb03}\u{fb03}ab"),
            None,
            "reaches 8 through expansion"
        );
        assert_eq!(
            weak("\u{fb03}\u{fb03}a"),
            Some(Rejection::WeakPassword(Weakness::TooShort)),
            "7 after expansion"
        );
        // U+FDFA is 18 characters in NFKC: 8 typed are 144.
        assert_eq!(
            weak(&"\u{fdfa}".repeat(8)),
            Some(Rejection::WeakPassword(Weakness::TooLong))
        );
        // Bounded work still gives the contract's answer: a difference past the limit is a
        // mismatch, and two widths of one long password are one (too long) password.
        let long = "x".repeat(200);
        assert_eq!(
            Password::parse(&format!("{long}a"), &format!("{long}b"), &mobile()).err(),
            Some(Rejection::PasswordMismatch)
        );
        assert_eq!(
            Password::parse(&"ｘ".repeat(200), &long, &mobile()).err(),
            Some(Rejection::WeakPassword(Weakness::TooLong))
        );
        assert_eq!(
            weak(&"x".repeat(129)),
            Some(Rejection::WeakPassword(Weakness::TooLong))
        );
        assert_eq!(weak(&"ｘ".repeat(128)), None);
        // Composition shrinks: 8 letters with combining accents are 8 characters, not 16.
        assert_eq!(weak(&"e\u{301}".repeat(8)), None);
        assert_eq!(
            weak(&"e\u{301}".repeat(7)),
            Some(Rejection::WeakPassword(Weakness::TooShort)),
            "14 typed, 7 counted"
        );
    }

    #[test]
    fn the_policy_sees_the_normalised_password() {
        let weak = |p: &str| Password::parse(p, p, &mobile()).err();
        for common in [
            "ｐａｓｓｗｏｒｄ",
            "ＰＡＳＳＷＯＲＤ",
            "１２３４５６７８",
            "ｉｌｏｖｅｙｏｕ",
        ] {
            assert_eq!(
                weak(common),
                Some(Rejection::WeakPassword(Weakness::Common)),
                "{common}"
            );
        }
        for same in [
            "１３８１２３４５６７８",
            "+86 138 1234 5678",
            "（＋８６）１３８－１２３４－５６７８",
        ] {
            assert_eq!(
                weak(same),
                Some(Rejection::WeakPassword(Weakness::SameAsMobile)),
                "{same}"
            );
        }
    }

    #[test]
    fn hashes_of_either_width_verify_the_other_after_normalising() {
        use argon2::{Argon2, PasswordHash, PasswordVerifier};
        let (full, half) = ("ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　９", "correct horse 9");
        let verifies = |hash: &str, typed: &str| {
            Argon2::default()
                .verify_password(typed.as_bytes(), &PasswordHash::new(hash).unwrap())
                .is_ok()
        };
        for (stored, typed_at_login) in [(full, half), (half, full)] {
            let hash =
                crate::core::hashing::hash(&Password::parse(stored, stored, &mobile()).unwrap())
                    .unwrap();
            assert!(
                verifies(&hash, &nfkc(typed_at_login)),
                "{stored} / {typed_at_login}"
            );
            assert!(verifies(&hash, &nfkc(stored)));
            assert!(
                !verifies(&hash, full),
                "the raw full-width bytes were not hashed"
            );
        }
    }

    #[test]
    fn password_mismatch_is_checked_before_the_policy() {
        assert_eq!(
            Password::parse("a", "b", &mobile()).err(),
            Some(Rejection::PasswordMismatch)
        );
    }

    #[test]
    fn common_password_table_is_sorted_and_in_policy() {
        assert!(COMMON_PASSWORDS.len() > 5_000);
        assert!(COMMON_PASSWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            COMMON_PASSWORDS
                .iter()
                .all(|p| PASSWORD_CHARS.contains(&p.chars().count()))
        );
    }

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn bodies_map_to_the_contract_rows() {
        use serde_json::json;
        let ok = json!({"mobile": "13812345678", "sms_code": "123456",
                        "password": "correct horse", "password2": "correct horse"});
        let reg = Registration::from_json(&body(ok.clone())).unwrap();
        assert_eq!(reg.mobile.as_str(), "13812345678");

        let with = |k: &str, v: serde_json::Value| {
            let mut o = ok.clone();
            o[k] = v;
            Registration::from_json(&body(o)).err()
        };
        let without = |k: &str| {
            let mut o = ok.clone();
            o.as_object_mut().unwrap().remove(k);
            Registration::from_json(&body(o)).err()
        };
        for raw in [
            &b""[..],
            b"   ",
            b"{not json",
            b"[1,2]",
            b"null",
            b"\"abc\"",
            b"42",
            b"mobile=13812345678&sms_code=111111",
            b"\xff\xfe{}",
            b"{\"mobile\":",
        ] {
            assert_eq!(
                Registration::from_json(raw).err(),
                Some(Rejection::InvalidBody),
                "{raw:?}"
            );
        }
        for k in ["mobile", "sms_code", "password", "password2"] {
            assert_eq!(without(k), Some(Rejection::MissingField), "{k} missing");
            assert_eq!(
                with(k, json!(null)),
                Some(Rejection::MissingField),
                "{k} null"
            );
            assert_eq!(
                with(k, json!("")),
                Some(Rejection::MissingField),
                "{k} empty"
            );
            assert_eq!(
                with(k, json!(12345678)),
                Some(Rejection::MissingField),
                "{k} number"
            );
            assert_eq!(
                with(k, json!(["x"])),
                Some(Rejection::MissingField),
                "{k} array"
            );
        }
        assert_eq!(
            with("mobile", json!("138123456789999")),
            Some(Rejection::InvalidMobile)
        );
        assert_eq!(
            with("password2", json!("other horse")),
            Some(Rejection::PasswordMismatch)
        );
        assert_eq!(
            with("sms_code", json!(" 123456 ")),
            Some(Rejection::InvalidSmsCode)
        );
        let mut weak = ok.clone();
        weak["password"] = json!("password");
        weak["password2"] = json!("password");
        assert_eq!(
            Registration::from_json(&body(weak)).err(),
            Some(Rejection::WeakPassword(Weakness::Common))
        );
    }

    #[test]
    fn login_bodies_map_to_the_contract_rows() {
        use serde_json::json;
        let ok = json!({"mobile": "+86 138 1234 5678", "password": "ｃｏｒｒｅｃｔ horse"});
        let c = Credentials::from_json(&body(ok.clone())).unwrap();
        assert_eq!(c.mobile.as_str(), "13812345678");
        assert_eq!(
            c.password.as_typed(),
            "ｃｏｒｒｅｃｔ horse",
            "kept as typed"
        );
        assert_eq!(c.password.normalised(), "correct horse");
        assert!(
            !format!("{c:?}").contains("correct"),
            "Debug hides the password"
        );
        for raw in [&b""[..], b"[]", b"null", b"{\"mobile\":", b"\xff{}"] {
            assert_eq!(
                Credentials::from_json(raw).err(),
                Some(Rejection::InvalidBody),
                "{raw:?}"
            );
        }
        for k in ["mobile", "password"] {
            for v in [json!(null), json!(""), json!(5), json!(["x"])] {
                let mut o = ok.clone();
                o[k] = v.clone();
                assert_eq!(
                    Credentials::from_json(&body(o)).err(),
                    Some(Rejection::MissingField),
                    "{k}={v}"
                );
            }
            let mut o = ok.clone();
            o.as_object_mut().unwrap().remove(k);
            assert_eq!(
                Credentials::from_json(&body(o)).err(),
                Some(Rejection::MissingField)
            );
        }
        let mut o = ok.clone();
        o["mobile"] = json!("138123456789999");
        assert_eq!(
            Credentials::from_json(&body(o)).err(),
            Some(Rejection::InvalidMobile)
        );
        // No policy at login: a short or common password is still verified.
        let short = json!({"mobile": "13812345678", "password": "x"});
        assert!(Credentials::from_json(&body(short)).is_ok());
    }

    #[test]
    fn sources_are_addresses_ipv6_by_its_64() {
        for (raw, want) in [
            (Some("203.0.113.10"), "203.0.113.10"),
            (Some(" 203.0.113.10 "), "203.0.113.10"),
            (Some("::ffff:203.0.113.10"), "203.0.113.10"),
            (Some("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"),
            (Some("2001:DB8:1:2::ffff"), "2001:db8:1:2::/64"),
            (Some("not an address"), "unknown"),
            (Some("203.0.113.10, 198.51.100.1"), "unknown"),
            (None, "unknown"),
        ] {
            assert_eq!(Source::from_address(raw).as_str(), want, "{raw:?}");
        }
        assert_eq!(
            format!("{:?}", Source::from_address(Some("203.0.113.10"))),
            "Source(..)"
        );
    }
}
