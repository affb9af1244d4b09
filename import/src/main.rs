//! `ihome-import`: the command line. Exit status 0 when every row was imported or already there,
//! 1 when anything was rejected, in conflict, failed or left undone (the report says which),
//! 2 when the import could not run (arguments, the source, the report file).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use ihome_import::legacy::{Columns, Source};
use ihome_import::run::{self, Options};
use ihome_import::store::Writer;

/// Imports the iHome site's users into the function's DynamoDB table, keeping their werkzeug
/// password hashes (login upgrades them). Safe to run again and to interrupt: a user already in
/// the table is never replaced. See docs/migration.md.
#[derive(Parser, Debug)]
#[command(version, args_override_self = true, group(ArgGroup::new("source").required(true).args(["mysql", "sqlite", "jsonl"])))]
struct Cli {
    /// The site's MySQL/MariaDB database: mysql://user:pass@host:port/db (sqlx parameters such
    /// as ?ssl-mode=verify_identity&ssl-ca=rds-ca.pem apply). Prefer the environment variable:
    /// a password on the command line shows in `ps`.
    #[arg(
        long,
        env = "IHOME_IMPORT_MYSQL_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    mysql: Option<String>,
    /// A SQLite file holding the table (opened read-only).
    #[arg(long, value_name = "PATH")]
    sqlite: Option<PathBuf>,
    /// A JSON Lines export: one object per user, keyed by the column names.
    #[arg(long, value_name = "PATH")]
    jsonl: Option<PathBuf>,

    /// The function's users table.
    #[arg(long, env = "USERS_TABLE", value_name = "NAME")]
    users_table: String,
    /// A DynamoDB endpoint other than the SDK's (which reads AWS_ENDPOINT_URL_DYNAMODB).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// DynamoDB connect and per-attempt timeout, as the function's DYNAMODB_TIMEOUT_MS.
    #[arg(
        long,
        env = "DYNAMODB_TIMEOUT_MS",
        default_value_t = 1000,
        value_name = "MS"
    )]
    dynamodb_timeout_ms: u64,
    /// Puts in flight at once. 32 writes about the 4,000 a second a new on-demand table takes
    /// (5 ms a put); more throttles it, until the table has scaled (docs/migration.md).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Read, check and report; write nothing (DynamoDB is not contacted).
    #[arg(long)]
    dry_run: bool,
    /// The report (JSON Lines): every row not imported and why, then the summary. Default:
    /// ihome-import-report-<UTC time>.jsonl in the current directory.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,

    /// The zone of create_time: iHome stored datetime.now() of its server, most likely in
    /// Asia/Shanghai (UTC+08:00 all year since 1991). Use +00:00 if the server ran in UTC. A
    /// TIMESTAMP column (MySQL) or a value with an offset (JSON) is read as the point it names.
    #[arg(long, default_value = "+08:00", value_parser = parse_offset, value_name = "±HH:MM", allow_hyphen_values = true)]
    create_time_utc_offset: time::UtcOffset,
    /// Plain progress lines at this interval (seconds) when stderr is not a terminal.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    progress_every: f64,

    /// The site's user table (`schema.table` allowed).
    #[arg(long, default_value = "ih_user_profile", value_name = "NAME")]
    legacy_table: String,
    #[arg(long, default_value = "id", value_name = "NAME")]
    id_column: String,
    #[arg(long, default_value = "name", value_name = "NAME")]
    name_column: String,
    #[arg(long, default_value = "mobile", value_name = "NAME")]
    mobile_column: String,
    #[arg(long, default_value = "password_hash", value_name = "NAME")]
    password_hash_column: String,
    #[arg(long, default_value = "create_time", value_name = "NAME")]
    create_time_column: String,
}

fn parse_offset(raw: &str) -> Result<time::UtcOffset, String> {
    let s = raw.trim();
    if matches!(s, "Z" | "UTC" | "utc") {
        return Ok(time::UtcOffset::UTC);
    }
    let format = time::format_description::parse_borrowed::<1>(
        "[offset_hour sign:mandatory]:[offset_minute]",
    )
    .expect("the format parses");
    time::UtcOffset::parse(s, &format).map_err(|_| "expected ±HH:MM, e.g. +08:00".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: the work is waiting on DynamoDB, and the puts in flight share it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    runtime.block_on(import(cli))
}

async fn import(cli: Cli) -> ExitCode {
    let source = match (cli.mysql, cli.sqlite, cli.jsonl) {
        (Some(url), _, _) => Source::Mysql(url),
        (_, Some(path), _) => Source::Sqlite(path),
        (_, _, Some(path)) => Source::Jsonl(path),
        _ => unreachable!("clap requires one source"),
    };
    let columns = Columns {
        table: cli.legacy_table,
        id: cli.id_column,
        name: cli.name_column,
        mobile: cli.mobile_column,
        password_hash: cli.password_hash_column,
        create_time: cli.create_time_column,
    };
    if let Err(e) = columns.check() {
        eprintln!("ihome-import: {e}");
        return ExitCode::from(2);
    }
    let report = cli.report.unwrap_or_else(default_report);
    let writer = if cli.dry_run {
        None
    } else {
        let timeout = Duration::from_millis(cli.dynamodb_timeout_ms.max(1));
        Some(Writer {
            client: ihome_import::dynamodb_client(timeout, cli.endpoint_url.as_deref()).await,
            table: cli.users_table.clone(),
        })
    };
    eprintln!(
        "ihome-import: {} into DynamoDB table {}{}, {} at once, create_time at UTC{:+03}:{:02}",
        source.describe(),
        cli.users_table,
        if cli.dry_run { " (dry run)" } else { "" },
        cli.concurrency,
        cli.create_time_utc_offset.whole_hours(),
        cli.create_time_utc_offset.minutes_past_hour().abs(),
    );
    let opts = Options {
        source,
        columns,
        offset: cli.create_time_utc_offset,
        concurrency: cli.concurrency.into(),
        writer,
        report: report.clone(),
        progress_every: Duration::from_secs_f64(cli.progress_every.clamp(0.0, 86_400.0)),
    };
    match run::run(opts).await {
        Ok(summary) => {
            println!("{}", summary.line());
            println!("report: {}", report.display());
            if summary.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ihome-import: {e}");
            ExitCode::from(2)
        }
    }
}

fn default_report() -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    PathBuf::from(format!(
        "ihome-import-report-{:04}{:02}{:02}T{:02}{:02}{:02}Z.jsonl",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00").unwrap().whole_hours(), 8);
        assert_eq!(parse_offset("-05:30").unwrap().whole_minutes(), -330);
        assert_eq!(parse_offset("Z").unwrap(), time::UtcOffset::UTC);
        assert!(parse_offset("8").is_err());
        assert!(parse_offset("Asia/Shanghai").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
