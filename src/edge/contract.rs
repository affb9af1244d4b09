//! The iHome JSON contract: every answer is `{"errno", "errmsg", "code"}`. `errno` keeps the
//! seed's string codes so existing front ends work; `code` is a stable snake_case reason for
//! programs; `errmsg` is Chinese (the seed's wording where it had one) or English.

use crate::core::account::AccountError;
use crate::core::domain::{Rejection, Weakness};
use crate::core::login::LoginError;
use crate::core::register::RegisterError;

/// The iHome `RET` codes this endpoint uses.
pub mod errno {
    pub const OK: &str = "0";
    pub const DBERR: &str = "4001";
    pub const NODATA: &str = "4002";
    pub const DATAEXIST: &str = "4003";
    /// iHome's login answered a wrong password with `DATAERR`.
    pub const DATAERR: &str = "4004";
    /// iHome's `SESSIONERR`: what its `login_required` answered without a login.
    pub const SESSIONERR: &str = "4101";
    pub const PARAMERR: &str = "4103";
    pub const REQERR: &str = "4201";
    pub const SERVERERR: &str = "4500";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// Every answer the function gives, on either route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Registered,
    LoggedIn,
    LoggedOut,
    LoggedOutEverywhere,
    PasswordChanged,
    PasswordReset,
    NotLoggedIn,
    InvalidBody,
    MissingField,
    InvalidMobile,
    PasswordMismatch,
    WeakPassword(Weakness),
    InvalidSmsCode,
    SmsCodeExpired,
    SmsCodeMismatch,
    MobileExists,
    BadCredentials,
    TooManyAttempts,
    SmsStoreUnavailable,
    ThrottleStoreUnavailable,
    UserStoreUnavailable,
    SessionStoreUnavailable,
    BodyTooLarge,
    MethodNotAllowed,
    NotFound,
    ForbiddenOrigin,
    Internal,
}

/// Which HTTP statuses answers carry (`STATUS_CODES`).
///
/// `Ihome` (the default) answers HTTP 200 for every outcome iHome's Flask views answered in JSON
/// (errno `0`, `4001`, `4002`, `4003`, `4004`, `4103`, and the login's `4201` "too many
/// attempts"), because the iHome pages post with jQuery and only a `success` callback, which
/// jQuery calls on 2xx alone: with real statuses every refusal would leave the page silent.
/// `Http` gives each outcome its own status (201, 400, 401, 409, 429, 503, ...). The other
/// `4201` answers and `4500` keep their statuses in both: iHome never answered those in JSON,
/// and a 403, 404 or 500 must stay visible to API Gateway and browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusMode {
    #[default]
    Ihome,
    Http,
}

impl Outcome {
    /// Every row of the contract, once (a weak password stands for each of its reasons).
    pub const ALL: [Outcome; 27] = [
        Outcome::Registered,
        Outcome::LoggedIn,
        Outcome::LoggedOut,
        Outcome::LoggedOutEverywhere,
        Outcome::PasswordChanged,
        Outcome::PasswordReset,
        Outcome::NotLoggedIn,
        Outcome::InvalidBody,
        Outcome::MissingField,
        Outcome::InvalidMobile,
        Outcome::PasswordMismatch,
        Outcome::WeakPassword(Weakness::Common),
        Outcome::InvalidSmsCode,
        Outcome::SmsCodeExpired,
        Outcome::SmsCodeMismatch,
        Outcome::MobileExists,
        Outcome::BadCredentials,
        Outcome::TooManyAttempts,
        Outcome::SmsStoreUnavailable,
        Outcome::ThrottleStoreUnavailable,
        Outcome::UserStoreUnavailable,
        Outcome::SessionStoreUnavailable,
        Outcome::BodyTooLarge,
        Outcome::MethodNotAllowed,
        Outcome::NotFound,
        Outcome::ForbiddenOrigin,
        Outcome::Internal,
    ];

    /// The row whose `code` is `code`.
    pub fn from_code(code: &str) -> Option<Outcome> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }

    /// HTTP status, errno and code: the contract's table, in one place.
    pub fn parts(self) -> (u16, &'static str, &'static str) {
        use Outcome::*;
        match self {
            Registered => (201, errno::OK, "registered"),
            LoggedIn => (200, errno::OK, "logged_in"),
            LoggedOut => (200, errno::OK, "logged_out"),
            LoggedOutEverywhere => (200, errno::OK, "logged_out_everywhere"),
            PasswordChanged => (200, errno::OK, "password_changed"),
            PasswordReset => (200, errno::OK, "password_reset"),
            NotLoggedIn => (401, errno::SESSIONERR, "not_logged_in"),
            InvalidBody => (400, errno::PARAMERR, "invalid_body"),
            MissingField => (400, errno::PARAMERR, "missing_field"),
            InvalidMobile => (400, errno::PARAMERR, "invalid_mobile"),
            PasswordMismatch => (400, errno::PARAMERR, "password_mismatch"),
            WeakPassword(_) => (400, errno::PARAMERR, "weak_password"),
            InvalidSmsCode => (400, errno::PARAMERR, "invalid_sms_code"),
            SmsCodeExpired => (400, errno::NODATA, "sms_code_expired"),
            SmsCodeMismatch => (400, errno::NODATA, "sms_code_mismatch"),
            MobileExists => (409, errno::DATAEXIST, "mobile_exists"),
            BadCredentials => (401, errno::DATAERR, "bad_credentials"),
            TooManyAttempts => (429, errno::REQERR, "too_many_attempts"),
            SmsStoreUnavailable => (503, errno::DBERR, "sms_store_unavailable"),
            ThrottleStoreUnavailable => (503, errno::DBERR, "throttle_store_unavailable"),
            UserStoreUnavailable => (503, errno::DBERR, "user_store_unavailable"),
            SessionStoreUnavailable => (503, errno::DBERR, "session_store_unavailable"),
            BodyTooLarge => (413, errno::REQERR, "body_too_large"),
            MethodNotAllowed => (405, errno::REQERR, "method_not_allowed"),
            NotFound => (404, errno::REQERR, "not_found"),
            ForbiddenOrigin => (403, errno::REQERR, "forbidden_origin"),
            Internal => (500, errno::SERVERERR, "internal"),
        }
    }

    /// The HTTP status under `STATUS_CODES=http`.
    pub fn status(self) -> u16 {
        self.parts().0
    }

    /// The HTTP status the answer carries in `mode`.
    pub fn status_in(self, mode: StatusMode) -> u16 {
        let (status, errno, _) = self.parts();
        let seed_answered_in_json =
            self == Outcome::TooManyAttempts || !matches!(errno, errno::REQERR | errno::SERVERERR);
        match mode {
            StatusMode::Ihome if seed_answered_in_json => 200,
            _ => status,
        }
    }

    pub fn code(self) -> &'static str {
        self.parts().2
    }

    pub fn message(self, lang: Lang) -> &'static str {
        use Outcome::*;
        let (zh, en) = match self {
            Registered => ("注册成功", "registered"),
            LoggedIn => ("登录成功", "logged in"),
            LoggedOut => ("已退出登录", "logged out"),
            LoggedOutEverywhere => ("已在所有设备上退出登录", "logged out on every device"),
            PasswordChanged => ("密码已修改", "password changed"),
            PasswordReset => ("密码已重置", "password reset; logged in"),
            NotLoggedIn => ("用户未登录", "not logged in"),
            InvalidBody => ("参数错误", "the body must be a JSON object"),
            MissingField => (
                "参数不完整",
                "a required field is missing, null, empty or not a string",
            ),
            InvalidMobile => ("手机号格式错误", "invalid mobile number"),
            PasswordMismatch => ("两次密码不一致", "the passwords do not match"),
            WeakPassword(Weakness::TooShort) => (
                "密码至少需要8个字符",
                "the password needs at least 8 characters",
            ),
            WeakPassword(Weakness::TooLong) => (
                "密码最多128个字符",
                "the password may have at most 128 characters",
            ),
            WeakPassword(Weakness::SameAsMobile) => (
                "密码不能与手机号相同",
                "the password must not be the mobile number",
            ),
            WeakPassword(Weakness::Common) => (
                "密码过于常见，请换一个",
                "this password is too common; choose another",
            ),
            InvalidSmsCode => ("短信验证码格式错误", "the SMS code must be 6 digits"),
            SmsCodeExpired => (
                "短信验证码失效",
                "the SMS code has expired or was never sent",
            ),
            SmsCodeMismatch => ("短信验证码错误", "wrong SMS code"),
            MobileExists => ("手机号已存在", "this mobile number is already registered"),
            BadCredentials => ("用户名或密码错误", "wrong mobile number or password"),
            TooManyAttempts => (
                "错误次数过多，请稍后重试",
                "too many failed attempts; try again later",
            ),
            SmsStoreUnavailable => (
                "读取真实短信验证码异常",
                "the SMS code store is unavailable; try again",
            ),
            ThrottleStoreUnavailable => (
                "查询数据库异常",
                "the login throttle store is unavailable; try again",
            ),
            UserStoreUnavailable => ("查询数据库异常", "the user store is unavailable; try again"),
            SessionStoreUnavailable => (
                "查询数据库异常",
                "the session store is unavailable; try again",
            ),
            BodyTooLarge => ("请求体过大", "the body is larger than 16 KiB"),
            MethodNotAllowed => ("请求方法不允许", "this method is not allowed here"),
            NotFound => ("接口不存在", "no such route"),
            ForbiddenOrigin => (
                "非法请求",
                "requests from other sites may not register, log in or change a session",
            ),
            Internal => ("内部错误", "internal error"),
        };
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

impl From<Rejection> for Outcome {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::InvalidBody => Self::InvalidBody,
            Rejection::MissingField => Self::MissingField,
            Rejection::InvalidMobile => Self::InvalidMobile,
            Rejection::PasswordMismatch => Self::PasswordMismatch,
            Rejection::WeakPassword(w) => Self::WeakPassword(w),
            Rejection::InvalidSmsCode => Self::InvalidSmsCode,
        }
    }
}

impl From<&RegisterError> for Outcome {
    fn from(e: &RegisterError) -> Self {
        match e {
            RegisterError::SmsCodeExpired => Self::SmsCodeExpired,
            RegisterError::SmsCodeMismatch => Self::SmsCodeMismatch,
            RegisterError::MobileExists => Self::MobileExists,
            RegisterError::SmsStoreUnavailable(_) => Self::SmsStoreUnavailable,
            RegisterError::UserStoreUnavailable(_) => Self::UserStoreUnavailable,
            RegisterError::SessionStoreUnavailable(_) => Self::SessionStoreUnavailable,
            RegisterError::Internal(_) => Self::Internal,
        }
    }
}

impl From<&LoginError> for Outcome {
    fn from(e: &LoginError) -> Self {
        match e {
            LoginError::BadCredentials => Self::BadCredentials,
            LoginError::TooManyAttempts { .. } => Self::TooManyAttempts,
            LoginError::ThrottleStoreUnavailable(_) => Self::ThrottleStoreUnavailable,
            LoginError::UserStoreUnavailable(_) => Self::UserStoreUnavailable,
            LoginError::SessionStoreUnavailable(_) => Self::SessionStoreUnavailable,
            LoginError::Internal(_) => Self::Internal,
        }
    }
}

impl From<&AccountError> for Outcome {
    fn from(e: &AccountError) -> Self {
        match e {
            AccountError::NotLoggedIn => Self::NotLoggedIn,
            AccountError::Rejected(r) => Self::from(*r),
            AccountError::BadCredentials => Self::BadCredentials,
            AccountError::TooManyAttempts { .. } => Self::TooManyAttempts,
            AccountError::SmsCodeExpired => Self::SmsCodeExpired,
            AccountError::SmsCodeMismatch => Self::SmsCodeMismatch,
            AccountError::SessionStoreUnavailable(_) => Self::SessionStoreUnavailable,
            AccountError::ThrottleStoreUnavailable(_) => Self::ThrottleStoreUnavailable,
            AccountError::SmsStoreUnavailable(_) => Self::SmsStoreUnavailable,
            AccountError::UserStoreUnavailable(_) => Self::UserStoreUnavailable,
            AccountError::Internal(_) => Self::Internal,
        }
    }
}

/// Picks the answer's language from `Accept-Language`: English when an `en` range has a higher
/// quality than every `zh` range (ties go to the one listed first), Chinese otherwise.
pub fn negotiate(accept_language: Option<&str>) -> Lang {
    let Some(header) = accept_language else {
        return Lang::Zh;
    };
    let mut best: Option<(Lang, f32)> = None;
    for range in header.split(',') {
        let mut parts = range.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let lang = match tag.split('-').next() {
            Some("en") => Lang::En,
            Some("zh") => Lang::Zh,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((lang, q));
        }
    }
    best.map_or(Lang::Zh, |(lang, _)| lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_wording_is_kept_in_chinese() {
        for (o, zh) in [
            (Outcome::Registered, "注册成功"),
            (Outcome::MissingField, "参数不完整"),
            (Outcome::InvalidMobile, "手机号格式错误"),
            (Outcome::PasswordMismatch, "两次密码不一致"),
            (Outcome::SmsCodeExpired, "短信验证码失效"),
            (Outcome::SmsCodeMismatch, "短信验证码错误"),
            (Outcome::MobileExists, "手机号已存在"),
            (Outcome::SmsStoreUnavailable, "读取真实短信验证码异常"),
            (Outcome::UserStoreUnavailable, "查询数据库异常"),
            (Outcome::ForbiddenOrigin, "非法请求"),
            (Outcome::LoggedIn, "登录成功"),
            (Outcome::BadCredentials, "用户名或密码错误"),
            (Outcome::TooManyAttempts, "错误次数过多，请稍后重试"),
        ] {
            assert_eq!(o.message(Lang::Zh), zh);
        }
    }

    #[test]
    fn ihome_mode_answers_200_where_the_seed_answered_in_json() {
        use Outcome::*;
        for o in Outcome::ALL {
            assert_eq!(o.status_in(StatusMode::Http), o.status(), "{o:?}");
            let ihome = o.status_in(StatusMode::Ihome);
            match o.parts().1 {
                "0" | "4001" | "4002" | "4003" | "4004" | "4101" | "4103" => {
                    assert_eq!(ihome, 200, "{o:?}")
                }
                "4201" if o == TooManyAttempts => assert_eq!(ihome, 200, "iHome's login"),
                "4201" | "4500" => assert_eq!(ihome, o.status(), "{o:?}"),
                other => panic!("{o:?}: unexpected errno {other}"),
            }
        }
        assert_eq!(
            [
                Registered,
                LoggedIn,
                MobileExists,
                BadCredentials,
                TooManyAttempts
            ]
            .map(|o| o.status()),
            [201, 200, 409, 401, 429]
        );
        assert_eq!(ThrottleStoreUnavailable.status(), 503);
        assert_eq!(NotFound.status_in(StatusMode::Ihome), 404);
        assert_eq!(ForbiddenOrigin.status_in(StatusMode::Ihome), 403);
        assert_eq!(StatusMode::default(), StatusMode::Ihome);
    }

    #[test]
    fn every_code_names_one_row() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
        assert_eq!(Outcome::from_code("nope"), None);
    }

    #[test]
    fn accept_language() {
        for (header, want) in [
            (None, Lang::Zh),
            (Some(""), Lang::Zh),
            (Some("en"), Lang::En),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh),
            (Some("en;q=0.5, zh-TW;q=0.8"), Lang::Zh),
            (Some("zh;q=0.5, EN-gb;q=0.8"), Lang::En),
            (Some("fr, de"), Lang::Zh),
            (Some("fr, en;q=0.1"), Lang::En),
            (Some("en;q=0, zh;q=0"), Lang::Zh),
            (Some("*"), Lang::Zh),
        ] {
            assert_eq!(negotiate(header), want, "{header:?}");
        }
    }
}
