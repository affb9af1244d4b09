//! The iHome JSON contract: every answer is `{"errno", "errmsg", "code"}`. `errno` keeps the
//! seed's string codes so existing front ends work; `code` is a stable snake_case reason for
//! programs; `errmsg` is Chinese (the seed's wording where it had one) or English.

use crate::domain::{Rejection, Weakness};
use crate::register::RegisterError;

/// The iHome `RET` codes this endpoint uses.
pub mod errno {
    pub const OK: &str = "0";
    pub const DBERR: &str = "4001";
    pub const NODATA: &str = "4002";
    pub const DATAEXIST: &str = "4003";
    pub const PARAMERR: &str = "4103";
    pub const REQERR: &str = "4201";
    pub const SERVERERR: &str = "4500";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// Every answer the endpoint gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Registered,
    InvalidBody,
    MissingField,
    InvalidMobile,
    PasswordMismatch,
    WeakPassword(Weakness),
    InvalidSmsCode,
    SmsCodeExpired,
    SmsCodeMismatch,
    MobileExists,
    SmsStoreUnavailable,
    UserStoreUnavailable,
    BodyTooLarge,
    MethodNotAllowed,
    Internal,
}

impl Outcome {
    /// HTTP status, errno and code: the contract's table, in one place.
    pub fn parts(self) -> (u16, &'static str, &'static str) {
        use Outcome::*;
        match self {
            Registered => (201, errno::OK, "registered"),
            InvalidBody => (400, errno::PARAMERR, "invalid_body"),
            MissingField => (400, errno::PARAMERR, "missing_field"),
            InvalidMobile => (400, errno::PARAMERR, "invalid_mobile"),
            PasswordMismatch => (400, errno::PARAMERR, "password_mismatch"),
            WeakPassword(_) => (400, errno::PARAMERR, "weak_password"),
            InvalidSmsCode => (400, errno::PARAMERR, "invalid_sms_code"),
            SmsCodeExpired => (400, errno::NODATA, "sms_code_expired"),
            SmsCodeMismatch => (400, errno::NODATA, "sms_code_mismatch"),
            MobileExists => (409, errno::DATAEXIST, "mobile_exists"),
            SmsStoreUnavailable => (503, errno::DBERR, "sms_store_unavailable"),
            UserStoreUnavailable => (503, errno::DBERR, "user_store_unavailable"),
            BodyTooLarge => (413, errno::REQERR, "body_too_large"),
            MethodNotAllowed => (405, errno::REQERR, "method_not_allowed"),
            Internal => (500, errno::SERVERERR, "internal"),
        }
    }

    pub fn status(self) -> u16 {
        self.parts().0
    }

    pub fn code(self) -> &'static str {
        self.parts().2
    }

    pub fn message(self, lang: Lang) -> &'static str {
        use Outcome::*;
        let (zh, en) = match self {
            Registered => ("注册成功", "registered"),
            InvalidBody => ("参数错误", "the body must be a JSON object"),
            MissingField => (
                "参数不完整",
                "mobile, sms_code, password and password2 are all required strings",
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
            SmsStoreUnavailable => (
                "读取真实短信验证码异常",
                "the SMS code store is unavailable; try again",
            ),
            UserStoreUnavailable => ("查询数据库异常", "the user store is unavailable; try again"),
            BodyTooLarge => ("请求体过大", "the body is larger than 16 KiB"),
            MethodNotAllowed => ("请求方法不允许", "only POST is allowed"),
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
            RegisterError::Internal(_) => Self::Internal,
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
        ] {
            assert_eq!(o.message(Lang::Zh), zh);
        }
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
