//! Judging each legacy row: which become users (and with what), which are rejected and why,
//! and which share a mobile with another row (conflicts, none imported).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ihome_register::core::domain::Mobile;
use serde::Serialize;
use time::UtcOffset;

use crate::legacy::{CreateTime, LegacyRow};

/// Why a row is not imported. Several can apply to one row; all are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A JSON line that is not an object.
    UnreadableLine,
    /// A JSON object with no integer id.
    IdMissing,
    MobileMissing,
    MobileEmpty,
    /// Does not parse as a mainland mobile (`Mobile::parse`, the function's own rule).
    MobileInvalid,
    PasswordHashMissing,
    PasswordHashEmpty,
    /// Not a `pbkdf2:` or `scrypt:` werkzeug hash: the formats werkzeug 3 still checks, and so
    /// the only ones a login can verify and upgrade (`plain$$…`, salted `sha1$…` and other
    /// pre-2.3 methods are not).
    PasswordHashUnsupported,
}

/// A row that can become a user.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub legacy_id: i64,
    pub mobile: Mobile,
    /// The row's name, or the mobile (as the function names users) when it has none.
    pub name: String,
    /// The werkzeug string as stored.
    pub password_hash: String,
    /// `None`: the row has no readable create_time (the report says so; the run's start is used).
    pub created_at: Option<SystemTime>,
    /// Why `created_at` is `None`.
    pub time_note: Option<&'static str>,
}

/// A row that cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub id: Option<i64>,
    pub line: Option<u64>,
    /// Masked (`mask_raw`): enough, with the id, to find the row; never the whole number.
    pub mobile: Option<String>,
    pub reasons: Vec<Reason>,
    /// The mobile, when it parses (the row failed for another reason): it still counts in
    /// conflicts. Never reported (its Debug is masked).
    pub number: Option<Mobile>,
}

/// Every check the function itself would make of the row, plus the hash's format.
pub fn judge(row: &LegacyRow, offset: UtcOffset) -> Result<Candidate, Rejected> {
    let mut reasons = Vec::new();
    if row.unreadable {
        reasons.push(Reason::UnreadableLine);
    } else if row.id.is_none() {
        reasons.push(Reason::IdMissing);
    }
    let mobile = match row.mobile.as_deref() {
        _ if row.unreadable => None,
        None => {
            reasons.push(Reason::MobileMissing);
            None
        }
        Some(raw) if raw.trim().is_empty() => {
            reasons.push(Reason::MobileEmpty);
            None
        }
        Some(raw) => Mobile::parse(raw)
            .inspect_err(|_| reasons.push(Reason::MobileInvalid))
            .ok(),
    };
    match row.password_hash.as_deref() {
        _ if row.unreadable => {}
        None => reasons.push(Reason::PasswordHashMissing),
        Some(h) if h.trim().is_empty() => reasons.push(Reason::PasswordHashEmpty),
        Some(h) if !is_werkzeug_hash(h) => reasons.push(Reason::PasswordHashUnsupported),
        Some(_) => {}
    }
    let (Some(legacy_id), Some(mobile), true) = (row.id, mobile.clone(), reasons.is_empty()) else {
        return Err(Rejected {
            id: row.id,
            line: row.line,
            mobile: row.mobile.as_deref().map(mask_raw),
            reasons,
            number: mobile,
        });
    };
    let (created_at, time_note) = match row.create_time.unwrap_or(CreateTime::Missing) {
        CreateTime::Naive(t) => (Some(to_system(t.assume_offset(offset))), None),
        CreateTime::Aware(t) => (Some(to_system(t)), None),
        CreateTime::Missing => (None, Some("create_time_missing")),
        CreateTime::Unreadable => (None, Some("create_time_unreadable")),
    };
    let name = match row.name.as_deref() {
        Some(n) if !n.trim().is_empty() => n.to_owned(),
        _ => mobile.as_str().to_owned(),
    };
    Ok(Candidate {
        legacy_id,
        mobile,
        name,
        password_hash: row.password_hash.clone().unwrap_or_default(),
        created_at,
        time_note,
    })
}

fn to_system(t: time::OffsetDateTime) -> SystemTime {
    let nanos = t.unix_timestamp_nanos();
    match u64::try_from(nanos) {
        Ok(n) => UNIX_EPOCH + Duration::from_nanos(n),
        Err(_) => UNIX_EPOCH,
    }
}

/// `method$salt$hash` with a pbkdf2 or scrypt method, a salt and a hex digest.
pub fn is_werkzeug_hash(h: &str) -> bool {
    let mut parts = h.split('$');
    let (Some(method), Some(salt), Some(digest), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let method_ok = |m: &str| {
        let mut fields = m.split(':');
        match fields.next() {
            Some("pbkdf2") => {
                fields.next().is_none_or(|hash| {
                    !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_alphanumeric())
                }) && fields.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }
            Some("scrypt") => {
                fields.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }
            _ => false,
        }
    };
    method_ok(method)
        && !salt.is_empty()
        && !digest.is_empty()
        && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A stored mobile as it may appear in the report: the first 3 and last 4 characters of a value
/// of 11 or more (the shape of what is wrong stays visible: `138********9999`,
/// `138*******0abc`), the first 3 of a shorter one, nothing of one under 7.
pub fn mask_raw(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        11.. => (3, 4),
        7..=10 => (3, 0),
        _ => (0, 0),
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// Rows that share a mobile and hold back a candidate: `(mobile, the ids, ascending)` for every
/// mobile that two or more rows normalise to, at least one of them a candidate. A rejected row
/// whose mobile parses counts too: it may be the person's account (e.g. a pre-2.3 hash they still
/// log in with on the site), and which account is theirs is not the import's to choose. The
/// whole set is in memory first.
pub fn conflicts(candidates: &[Candidate], rejected: &[Rejected]) -> HashMap<String, Vec<i64>> {
    let mut by_mobile: HashMap<&str, (Vec<i64>, bool)> = HashMap::with_capacity(candidates.len());
    let rows = candidates
        .iter()
        .map(|c| (c.mobile.as_str(), c.legacy_id, true))
        .chain(
            rejected
                .iter()
                .filter_map(|r| Some((r.number.as_ref()?.as_str(), r.id?, false))),
        );
    for (mobile, id, candidate) in rows {
        let (ids, any_candidate) = by_mobile.entry(mobile).or_default();
        ids.push(id);
        *any_candidate |= candidate;
    }
    by_mobile
        .into_iter()
        .filter(|(_, (ids, any_candidate))| ids.len() > 1 && *any_candidate)
        .map(|(m, (mut ids, _))| {
            ids.sort_unstable();
            (m.to_owned(), ids)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    fn row(mobile: Option<&str>, hash: Option<&str>) -> LegacyRow {
        LegacyRow {
            id: Some(7),
            name: Some("张三".into()),
            mobile: mobile.map(Into::into),
            password_hash: hash.map(Into::into),
            create_time: Some(CreateTime::Naive(datetime!(2023-08-01 00:00:00))),
            ..LegacyRow::default()
        }
    }

    const HASH: &str = "pbkdf2:sha256:600000$bNZjgnwbDznDEVyG$f8aa";

    #[test]
    fn a_good_row_becomes_a_candidate_in_the_functions_terms() {
        let c = judge(&row(Some(" +86 138 0000 0007 "), Some(HASH)), offset!(+8)).unwrap();
        assert_eq!(c.legacy_id, 7);
        assert_eq!(c.mobile.as_str(), "13800000007");
        assert_eq!(c.name, "张三");
        assert_eq!(c.password_hash, HASH);
        // Midnight in Shanghai is 16:00 UTC the day before.
        assert_eq!(
            c.created_at,
            Some(to_system(datetime!(2023-07-31 16:00:00 UTC)))
        );
        let utc = judge(&row(Some("13800000007"), Some(HASH)), offset!(UTC)).unwrap();
        assert_eq!(
            utc.created_at,
            Some(to_system(datetime!(2023-08-01 00:00:00 UTC)))
        );
    }

    #[test]
    fn a_row_without_a_name_is_named_by_its_mobile() {
        let mut r = row(Some("13800000003"), Some(HASH));
        r.name = None;
        assert_eq!(judge(&r, offset!(+8)).unwrap().name, "13800000003");
        r.name = Some("  ".into());
        assert_eq!(judge(&r, offset!(+8)).unwrap().name, "13800000003");
    }

    #[test]
    fn a_missing_time_is_noted_not_rejected() {
        let mut r = row(Some("13800000019"), Some(HASH));
        r.create_time = Some(CreateTime::Missing);
        let c = judge(&r, offset!(+8)).unwrap();
        assert_eq!(
            (c.created_at, c.time_note),
            (None, Some("create_time_missing"))
        );
        r.create_time = Some(CreateTime::Unreadable);
        let c = judge(&r, offset!(+8)).unwrap();
        assert_eq!(c.time_note, Some("create_time_unreadable"));
    }

    #[test]
    fn rejections_name_every_reason_and_mask_the_mobile() {
        let reasons = |m: Option<&str>, h: Option<&str>| {
            let r = judge(&row(m, h), offset!(+8)).unwrap_err();
            (r.reasons, r.mobile)
        };
        assert_eq!(
            reasons(Some("138000000099999"), Some(HASH)),
            (
                vec![Reason::MobileInvalid],
                Some("138********9999".to_owned())
            )
        );
        assert_eq!(
            reasons(Some("13800000010abc"), Some(HASH)),
            (
                vec![Reason::MobileInvalid],
                Some("138*******0abc".to_owned())
            )
        );
        assert_eq!(
            reasons(Some(""), Some(HASH)),
            (vec![Reason::MobileEmpty], Some(String::new()))
        );
        assert_eq!(
            reasons(None, None),
            (
                vec![Reason::MobileMissing, Reason::PasswordHashMissing],
                None
            )
        );
        assert_eq!(
            reasons(Some("13800000014"), Some("")).0,
            vec![Reason::PasswordHashEmpty]
        );
        assert_eq!(
            reasons(Some("13800000020"), Some("sha1$abc$0123")).0,
            vec![Reason::PasswordHashUnsupported]
        );
        let unreadable = LegacyRow {
            line: Some(4),
            unreadable: true,
            ..LegacyRow::default()
        };
        let r = judge(&unreadable, offset!(+8)).unwrap_err();
        assert_eq!((r.reasons, r.line), (vec![Reason::UnreadableLine], Some(4)));
        let mut no_id = row(Some("13800000007"), Some(HASH));
        no_id.id = None;
        assert_eq!(
            judge(&no_id, offset!(+8)).unwrap_err().reasons,
            vec![Reason::IdMissing]
        );
    }

    #[test]
    fn werkzeug_formats() {
        for ok in [
            "pbkdf2:sha1:1000$oV5FkxcW$d1fb3599f3e1c4",
            "pbkdf2:sha256:150000$35TO3rW1$62f79490f7",
            "pbkdf2:sha256$salt$ab12",
            "pbkdf2$salt$ab12",
            "scrypt:32768:8:1$Q5tSf73UIlVWazJQ$282c68",
        ] {
            assert!(is_werkzeug_hash(ok), "{ok}");
        }
        for bad in [
            "plain$$secret",
            "sha1$salt$0123abcd",
            "md5$salt$0123",
            "pbkdf2:sha256:many$s$ab",
            "pbkdf2:sha256:1000$$ab",
            "pbkdf2:sha256:1000$s$",
            "pbkdf2:sha256:1000$s$xyz",
            "pbkdf2:sha256:1000$s$ab$cd",
            "scrypt:32768:8:x$s$ab",
            "$argon2id$v=19$m=19456,t=2,p=1$salt$hash",
            "correct horse",
        ] {
            assert!(!is_werkzeug_hash(bad), "{bad}");
        }
    }

    #[test]
    fn masking_keeps_the_shape_not_the_number() {
        assert_eq!(mask_raw("13812345678"), "138****5678");
        assert_eq!(mask_raw("13812345678 "), "138*****678 ");
        assert_eq!(mask_raw("１３８１２３４５６７８"), "１３８****５６７８");
        assert_eq!(mask_raw("1381234"), "138****");
        assert_eq!(mask_raw("138123"), "******");
        assert_eq!(mask_raw(""), "");
    }

    #[test]
    fn every_row_sharing_a_mobile_is_in_conflict() {
        let c = |id, m: &str| {
            judge(
                &{
                    let mut r = row(Some(m), Some(HASH));
                    r.id = Some(id);
                    r
                },
                offset!(+8),
            )
            .unwrap()
        };
        let all = [
            c(15, "13800000015"),
            c(1, "13800000001"),
            c(16, "+86 138 0000 0015"),
            c(17, "138-0000-0015"),
        ];
        let found = conflicts(&all, &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found["13800000015"], vec![15, 16, 17]);
        // A rejected row with a number that parses holds its twin back; two rejected rows alone
        // hold nothing.
        let rejected = |id, m: &str| {
            let mut r = row(Some(m), None);
            r.id = Some(id);
            judge(&r, offset!(+8)).unwrap_err()
        };
        let found = conflicts(
            &all[1..2],
            &[
                rejected(23, "138 0000 0001"),
                rejected(30, "13900000030"),
                rejected(31, "+8613900000030"),
            ],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found["13800000001"], vec![1, 23]);
    }
}
