//! The function's log output in an in-process test binary, captured through the subscriber the
//! function itself installs (`lambda_http::tracing`, writer swapped for a buffer), so every
//! test's successes and failures can be checked for secrets.

use std::io::Write;
use std::sync::{Mutex, Once};

static INSTALL: Once = Once::new();
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FORBIDDEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A line written by the function outside tracing (its metrics), kept with the logs.
pub fn write_line(line: &str) {
    let mut logs = LOGS.lock().unwrap();
    logs.extend_from_slice(line.as_bytes());
    logs.push(b'\n');
}

/// Installs the capturing subscriber once per test binary.
pub fn capture() {
    INSTALL.call_once(|| lambda_http::tracing::init_default_subscriber_with_writer(|| Capture));
}

/// Adds strings that must never appear in the logs (a password, a code, a secret, a mobile as
/// typed).
pub fn forbid<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) {
    let mut forbidden = FORBIDDEN.lock().unwrap();
    forbidden.extend(secrets.into_iter().map(|s| s.as_ref().to_owned()));
}

/// Every line logged so far, by every test of this binary.
pub fn lines() -> Vec<String> {
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    logs.lines().map(str::to_owned).collect()
}

/// Fails if the logs so far hold anything forbidden so far, or a token or hash of any kind.
pub fn assert_clean() {
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    let forbidden = FORBIDDEN.lock().unwrap().clone();
    for secret in forbidden
        .iter()
        .map(String::as_str)
        .chain(["eyJ", "$argon2"])
    {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{logs}"
        );
    }
}
