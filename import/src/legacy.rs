//! Reading the site's user table (`ih_user_profile`) from MySQL/MariaDB, a SQLite file or a JSON
//! Lines export, one row at a time, into [`LegacyRow`]s. Only the five named columns are read;
//! nothing here judges a value (that is `rows`), and no value is ever logged.

use std::fmt;
use std::io::BufRead;
use std::path::PathBuf;
use std::str::FromStr;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::{Column, ConnectOptions, Row, TypeInfo};
use time::{OffsetDateTime, PrimitiveDateTime};

/// Where the users come from.
#[derive(Clone)]
pub enum Source {
    /// `mysql://user:pass@host:port/db` (also `mariadb://`), with sqlx's URL parameters
    /// (`?ssl-mode=verify_identity&ssl-ca=rds-ca.pem`).
    Mysql(String),
    Sqlite(PathBuf),
    Jsonl(PathBuf),
}

impl Source {
    /// How the source may be named in a log line: a MySQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Source::Mysql(url) => format!("MySQL {}", redact_url(url)),
            Source::Sqlite(path) => format!("SQLite {}", path.display()),
            Source::Jsonl(path) => format!("JSON Lines {}", path.display()),
        }
    }
}

/// Never `Debug`-print a URL that may hold a password.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// `mysql://user:secret@host/db` as `mysql://user:***@host/db`; anything unparsable as
/// `<unreadable URL>` (it might still hold a password).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unreadable URL>".to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = path.split('?').next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// The table and its columns (defaults: iHome's). In a JSON Lines export the column names are
/// the objects' keys and the table is not used.
#[derive(Clone, Debug)]
pub struct Columns {
    pub table: String,
    pub id: String,
    pub name: String,
    pub mobile: String,
    pub password_hash: String,
    pub create_time: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            table: "ih_user_profile".into(),
            id: "id".into(),
            name: "name".into(),
            mobile: "mobile".into(),
            password_hash: "password_hash".into(),
            create_time: "create_time".into(),
        }
    }
}

impl Columns {
    /// Every name must be a plain SQL identifier (the table may be `schema.table`): they are
    /// spliced into the query, so nothing else is let through.
    pub fn check(&self) -> Result<(), String> {
        let ident = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        };
        let table_ok = match self.table.split_once('.') {
            Some((schema, table)) => ident(schema) && ident(table),
            None => ident(&self.table),
        };
        if !table_ok {
            return Err(format!("table name {:?} is not an identifier", self.table));
        }
        for c in [
            &self.id,
            &self.name,
            &self.mobile,
            &self.password_hash,
            &self.create_time,
        ] {
            if !ident(c) {
                return Err(format!("column name {c:?} is not an identifier"));
            }
        }
        Ok(())
    }

    fn select(&self, quote: char) -> String {
        let q = |s: &str| {
            s.split('.')
                .map(|part| format!("{quote}{part}{quote}"))
                .collect::<Vec<_>>()
                .join(".")
        };
        format!(
            "SELECT {}, {}, {}, {}, {} FROM {} ORDER BY {}",
            q(&self.id),
            q(&self.name),
            q(&self.mobile),
            q(&self.password_hash),
            q(&self.create_time),
            q(&self.table),
            q(&self.id),
        )
    }
}

/// A row's creation time as the source holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateTime {
    Missing,
    /// A naive DATETIME (the site wrote `datetime.now()`): its zone is the operator's to say.
    Naive(PrimitiveDateTime),
    /// A point in time (a MySQL TIMESTAMP, or a JSON string with an offset).
    Aware(OffsetDateTime),
    /// Present but not a time this reader knows.
    Unreadable,
}

/// One row of the table, every value as stored (untrimmed, unchecked).
#[derive(Clone, Debug, Default)]
pub struct LegacyRow {
    /// `None` only for a JSON line without a usable id.
    pub id: Option<i64>,
    /// The 1-based line of a JSON Lines export.
    pub line: Option<u64>,
    /// The line is not a JSON object.
    pub unreadable: bool,
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub password_hash: Option<String>,
    pub create_time: Option<CreateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// sqlx's text names the failing step (connect, query, column) without the URL.
    #[error("reading the table failed: {0}")]
    Sql(String),
    #[error("reading {path} failed: {error}")]
    File { path: String, error: std::io::Error },
}

/// Reads every row, in id order for SQL sources and in file order for JSON Lines, passing each
/// to `each` as it arrives.
pub async fn read(
    source: &Source,
    columns: &Columns,
    mut each: impl FnMut(LegacyRow),
) -> Result<(), ReadError> {
    let sql_err = |e: sqlx::Error| ReadError::Sql(describe_sql_error(&e));
    match source {
        Source::Mysql(url) => {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let options = sqlx::mysql::MySqlConnectOptions::from_str(&url).map_err(sql_err)?;
            let mut conn = options.connect().await.map_err(sql_err)?;
            let sql = sqlx::AssertSqlSafe(columns.select('`'));
            let mut rows = sqlx::query(sql).fetch(&mut conn);
            while let Some(row) = rows.try_next().await.map_err(sql_err)? {
                each(mysql_row(&row).map_err(sql_err)?);
            }
        }
        Source::Sqlite(path) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true);
            let mut conn = options.connect().await.map_err(sql_err)?;
            let sql = sqlx::AssertSqlSafe(columns.select('"'));
            let mut rows = sqlx::query(sql).fetch(&mut conn);
            while let Some(row) = rows.try_next().await.map_err(sql_err)? {
                each(sqlite_row(&row).map_err(sql_err)?);
            }
        }
        Source::Jsonl(path) => {
            let file_err = |error| ReadError::File {
                path: path.display().to_string(),
                error,
            };
            let file = std::fs::File::open(path).map_err(file_err)?;
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(file_err)?;
                if line.trim().is_empty() {
                    continue;
                }
                each(json_row(&line, n as u64 + 1, columns));
            }
        }
    }
    Ok(())
}

/// sqlx's errors, without anything that could quote a value or the URL.
fn describe_sql_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => format!(
            "database error {}: {}",
            db.code().unwrap_or_default(),
            db.message()
        ),
        sqlx::Error::Io(io) => format!("connection failed: {io}"),
        sqlx::Error::Tls(_) => "TLS failed".to_owned(),
        sqlx::Error::Configuration(_) => "the URL is not a usable MySQL URL".to_owned(),
        sqlx::Error::ColumnDecode { index, .. } => {
            format!("column {index} has a type this importer cannot read")
        }
        sqlx::Error::ColumnNotFound(c) => format!("no column {c}"),
        sqlx::Error::Protocol(_) => "protocol error".to_owned(),
        _ => "unexpected error".to_owned(),
    }
}

fn mysql_row(row: &sqlx::mysql::MySqlRow) -> Result<LegacyRow, sqlx::Error> {
    let create_time = if row.column(4).type_info().name() == "TIMESTAMP" {
        // sqlx sets the session time_zone to +00:00, so a TIMESTAMP arrives in UTC.
        row.try_get::<Option<OffsetDateTime>, _>(4)?
            .map(CreateTime::Aware)
    } else if let Ok(t) = row.try_get::<Option<PrimitiveDateTime>, _>(4) {
        t.map(CreateTime::Naive)
    } else {
        row.try_get::<Option<String>, _>(4)?.map(|s| parse_time(&s))
    };
    sql_row(row, create_time)
}

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<LegacyRow, sqlx::Error> {
    let create_time = if let Ok(t) = row.try_get::<Option<PrimitiveDateTime>, _>(4) {
        t.map(CreateTime::Naive)
    } else if let Ok(t) = row.try_get::<Option<String>, _>(4) {
        t.map(|s| parse_time(&s))
    } else {
        Some(CreateTime::Unreadable)
    };
    sql_row(row, create_time)
}

/// The first four columns of a row of either database, and its create_time as read.
fn sql_row<R: Row>(row: &R, create_time: Option<CreateTime>) -> Result<LegacyRow, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> u64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(LegacyRow {
        id: Some(int(row, 0)?),
        name: text(row, 1)?,
        mobile: text(row, 2)?,
        password_hash: text(row, 3)?,
        create_time: Some(create_time.unwrap_or(CreateTime::Missing)),
        ..LegacyRow::default()
    })
}

/// A signed or unsigned integer id of any width.
fn int<R: Row>(row: &R, i: usize) -> Result<i64, sqlx::Error>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> u64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    match row.try_get::<i64, _>(i) {
        Ok(v) => Ok(v),
        Err(e) => match row.try_get::<u64, _>(i) {
            Ok(v) => i64::try_from(v).map_err(|_| e),
            Err(_) => Err(e),
        },
    }
}

/// Text, or bytes taken as UTF-8 (a VARBINARY or BLOB column); bytes that are not UTF-8 keep
/// their shape with replacement characters, which no check accepts.
fn text<R: Row>(row: &R, i: usize) -> Result<Option<String>, sqlx::Error>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    match row.try_get::<Option<String>, _>(i) {
        Ok(v) => Ok(v),
        Err(e) => match row.try_get::<Option<Vec<u8>>, _>(i) {
            Ok(v) => Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned())),
            Err(_) => Err(e),
        },
    }
}

fn json_row(line: &str, n: u64, columns: &Columns) -> LegacyRow {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
        return LegacyRow {
            line: Some(n),
            unreadable: true,
            ..LegacyRow::default()
        };
    };
    let string = |key: &str| match fields.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        // A number exported as one: its digits are the value.
        Some(Value::Number(num)) => Some(num.to_string()),
        // A value of another kind keeps a shape no check accepts.
        Some(Value::Bool(_) | Value::Array(_) | Value::Object(_)) => Some("\u{fffd}".to_owned()),
        Some(Value::Null) | None => None,
    };
    let id = match fields.get(&columns.id) {
        Some(Value::Number(num)) => num.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let create_time = match fields.get(&columns.create_time) {
        None | Some(Value::Null) => CreateTime::Missing,
        Some(Value::String(s)) => parse_time(s),
        Some(_) => CreateTime::Unreadable,
    };
    LegacyRow {
        id,
        line: Some(n),
        unreadable: false,
        name: string(&columns.name),
        mobile: string(&columns.mobile),
        password_hash: string(&columns.password_hash),
        create_time: Some(create_time),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.f…]` (or with `T`) is naive; with `Z` or `±HH:MM` it is a point in time.
pub fn parse_time(raw: &str) -> CreateTime {
    use time::format_description::well_known::Rfc3339;
    let s = raw.trim();
    if s.is_empty() {
        return CreateTime::Missing;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return CreateTime::Aware(t);
    }
    let naive = s.replacen('T', " ", 1);
    let (whole, fraction) = match naive.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (naive.as_str(), None),
    };
    let format = time::format_description::parse_borrowed::<1>(
        "[year]-[month]-[day] [hour]:[minute]:[second]",
    )
    .expect("the format parses");
    let nanos = match fraction {
        None => Some(0),
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => f
            .parse::<u32>()
            .ok()
            .map(|n| n * 10u32.pow(9 - f.len() as u32)),
        Some(_) => None,
    };
    match (PrimitiveDateTime::parse(whole, &format), nanos) {
        (Ok(t), Some(n)) => t
            .replace_nanosecond(n)
            .map_or(CreateTime::Unreadable, CreateTime::Naive),
        _ => CreateTime::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("mysql://ihome:s3cret@db.example:3306/ihome?ssl-mode=required"),
            "mysql://ihome:***@db.example:3306/ihome"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1:3307/x"),
            "mysql://root@127.0.0.1:3307/x"
        );
        assert_eq!(
            redact_url("mysql://a:b@c@host/db"),
            "mysql://a:***@host/db",
            "the last @ ends the user info"
        );
        assert_eq!(redact_url("not a url s3cret"), "<unreadable URL>");
        let source = Source::Mysql("mysql://u:s3cret@h/db".into());
        assert!(!format!("{source:?} {}", source.describe()).contains("s3cret"));
    }

    #[test]
    fn names_must_be_identifiers() {
        assert!(Columns::default().check().is_ok());
        let with_table = |t: &str| Columns {
            table: t.into(),
            ..Columns::default()
        };
        assert!(with_table("legacy.ih_user_profile").check().is_ok());
        for bad in ["", "a b", "t; DROP TABLE x", "t`", "1t", "a.b.c", "t\""] {
            assert!(with_table(bad).check().is_err(), "{bad:?}");
        }
        let bad_column = Columns {
            mobile: "mobile) --".into(),
            ..Columns::default()
        };
        assert!(bad_column.check().is_err());
        assert_eq!(
            Columns::default().select('`'),
            "SELECT `id`, `name`, `mobile`, `password_hash`, `create_time` FROM `ih_user_profile` ORDER BY `id`"
        );
        assert_eq!(
            with_table("legacy.users").select('"'),
            r#"SELECT "id", "name", "mobile", "password_hash", "create_time" FROM "legacy"."users" ORDER BY "id""#
        );
    }

    #[test]
    fn times_as_exports_write_them() {
        assert_eq!(
            parse_time("2015-03-01 09:30:00"),
            CreateTime::Naive(datetime!(2015-03-01 09:30:00))
        );
        assert_eq!(
            parse_time("2024-06-18 23:59:59.987654"),
            CreateTime::Naive(datetime!(2024-06-18 23:59:59.987654))
        );
        assert_eq!(
            parse_time("2024-06-18T23:59:59"),
            CreateTime::Naive(datetime!(2024-06-18 23:59:59))
        );
        assert_eq!(
            parse_time("2024-06-18T23:59:59.5+08:00"),
            CreateTime::Aware(datetime!(2024-06-18 23:59:59.5 +08:00))
        );
        assert_eq!(
            parse_time("2024-06-18T15:59:59Z"),
            CreateTime::Aware(datetime!(2024-06-18 15:59:59 UTC))
        );
        assert_eq!(parse_time(""), CreateTime::Missing);
        assert_eq!(parse_time("yesterday"), CreateTime::Unreadable);
        assert_eq!(parse_time("2024-06-18 23:59:59."), CreateTime::Unreadable);
        assert_eq!(parse_time("2024-06-18 23:59:59.1x"), CreateTime::Unreadable);
        assert_eq!(parse_time("2024-02-30 00:00:00"), CreateTime::Unreadable);
    }

    #[test]
    fn json_lines_read_by_the_named_keys() {
        let columns = Columns::default();
        let row = json_row(
            r#"{"id": 7, "name": "张三", "mobile": " 13800000007 ", "password_hash": "scrypt:1:1:1$s$ab", "create_time": "2025-02-03 04:05:06", "id_card": "x"}"#,
            3,
            &columns,
        );
        assert_eq!(row.id, Some(7));
        assert_eq!(row.line, Some(3));
        assert_eq!(row.name.as_deref(), Some("张三"));
        assert_eq!(row.mobile.as_deref(), Some(" 13800000007 "));
        assert_eq!(
            row.create_time,
            Some(CreateTime::Naive(datetime!(2025-02-03 04:05:06)))
        );
        let numeric = json_row(
            r#"{"id": "8", "mobile": 13800000008, "password_hash": null}"#,
            4,
            &columns,
        );
        assert_eq!(numeric.id, Some(8));
        assert_eq!(numeric.mobile.as_deref(), Some("13800000008"));
        assert_eq!(numeric.password_hash, None);
        assert_eq!(numeric.create_time, Some(CreateTime::Missing));
        for junk in ["[1, 2]", "{not json", "null"] {
            let row = json_row(junk, 9, &columns);
            assert!(row.unreadable && row.id.is_none() && row.line == Some(9));
        }
    }
}
