//! `ihome-account`: the operator's command for one account (issue 19). `disable MOBILE` ends
//! every session of the user and refuses their login, password reset and password change (each
//! answered as for a number with no account); `enable MOBILE` lifts that (sessions stay ended).
//!
//! Exit status 0 when done, 1 when no user has that mobile, 2 when it could not run (arguments,
//! a store unreachable). Needs `dynamodb:UpdateItem` on the users table (attributes `disabled`
//! and `session_version`) and the function's Redis (`REDIS_URL`): the DynamoDB item is written
//! first (the durable record), then the verifiers' copy in Redis. If Redis cannot be reached the
//! command says so and exits 2; the account is disabled already (run it again once Redis is
//! back, or wait for the function's logins, which refuse the account anyway).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ihome_register::core::domain::Mobile;
use ihome_register::core::ports::SessionStore;
use ihome_register::core::session::LEEWAY_SECONDS;
use ihome_register::stores::redis::Redis;
use ihome_register::stores::sessions::RedisSessions;
use ihome_register::stores::users::DynamoUsers;
use secrecy::SecretString;

/// Disables or re-enables one iHome account in the function's store. See docs/sessions.md.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The function's users table.
    #[arg(long, env = "USERS_TABLE", value_name = "NAME", global = true)]
    users_table: Option<String>,
    /// The function's Redis (redis:// or rediss://); prefer the environment: a password on the
    /// command line shows in `ps`.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        value_name = "URL",
        global = true
    )]
    redis_url: Option<String>,
    /// A DynamoDB endpoint other than the SDK's (which reads AWS_ENDPOINT_URL_DYNAMODB).
    #[arg(long, value_name = "URL", global = true)]
    endpoint_url: Option<String>,
    /// The function's SESSION_TTL_SECONDS: how long Redis must keep the user's record.
    #[arg(
        long,
        env = "SESSION_TTL_SECONDS",
        default_value_t = 86_400,
        global = true
    )]
    session_ttl_seconds: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// End every session and refuse login, reset and password change.
    Disable { mobile: String },
    /// Allow login, reset and password change again.
    Enable { mobile: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ihome-account: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let (disable, raw) = match &cli.command {
        Command::Disable { mobile } => (true, mobile),
        Command::Enable { mobile } => (false, mobile),
    };
    let mobile = Mobile::parse(raw).map_err(|_| "not a mobile number".to_owned())?;
    let table = cli
        .users_table
        .ok_or("--users-table (or USERS_TABLE) is required")?;
    let redis_url = cli
        .redis_url
        .ok_or("--redis-url (or REDIS_URL) is required")?;
    let redis = Redis::new(&SecretString::from(redis_url), Duration::from_secs(2))
        .map_err(|_| "REDIS_URL is not a usable Redis URL".to_owned())?;
    let client =
        ihome_import::dynamodb_client(Duration::from_secs(2), cli.endpoint_url.as_deref()).await;
    let users = DynamoUsers::new(client, table);
    let masked = mobile.masked();
    let Some((user_id, version)) = users
        .set_disabled(&mobile, disable)
        .await
        .map_err(|e| e.to_string())?
    else {
        eprintln!("ihome-account: no user has the mobile {masked}");
        return Ok(ExitCode::from(1));
    };
    if !disable {
        println!("enabled {masked}");
        return Ok(ExitCode::SUCCESS);
    }
    let keep = Duration::from_secs(cli.session_ttl_seconds + LEEWAY_SECONDS);
    RedisSessions::on(redis)
        .remember(user_id, version, keep)
        .await
        .map_err(|e| {
            format!("{masked} is disabled in DynamoDB, but Redis was not told ({e}): run it again")
        })?;
    println!("disabled {masked}: every session ended (session version {version})");
    Ok(ExitCode::SUCCESS)
}
