//! One import: read every row, judge each, find the mobiles two rows share, then put the rest
//! with bounded concurrency, writing the report and the progress as it goes.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use time::UtcOffset;

use crate::legacy::{self, Columns, Source};
use crate::rows::{self, Candidate, Reason, Rejected};
use crate::store::{Outcome, Wait, Writer};

/// After this many puts in a row fail (none landing or meeting the condition in between), the
/// store is what fails, not the rows: the run stops, and a rerun does the rest.
pub const FAILURE_STREAK_LIMIT: u64 = 50;

pub struct Options {
    pub source: Source,
    pub columns: Columns,
    /// The zone of the site's naive `create_time` values.
    pub offset: UtcOffset,
    pub concurrency: usize,
    /// `None`: a dry run (read, judge, report; nothing written, DynamoDB not asked).
    pub writer: Option<Writer>,
    pub report: PathBuf,
    /// Plain progress lines (when stderr is not a terminal) at this interval.
    pub progress_every: Duration,
}

/// The counts at the end. Every row read is in exactly one of imported, already_there,
/// rejected, conflicts, failed and not_attempted (a dry run: would_import instead of the
/// writes' counts).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub read: u64,
    pub imported: u64,
    pub already_there: u64,
    /// Of already_there: an earlier import wrote the user (its item has a `legacy_id`).
    pub already_imported: u64,
    /// Of already_there: the user registered through the function.
    pub registered_through_function: u64,
    pub rejected: u64,
    /// Rows in conflict, and how many mobiles they share.
    pub conflicts: u64,
    pub conflicting_mobiles: u64,
    pub failed: u64,
    /// Left when the run stopped on a failing store.
    pub not_attempted: u64,
    pub dry_run: bool,
    pub would_import: u64,
    /// Times a put waited out throttling beyond the SDK's retries.
    pub throttled_waits: u64,
    /// Times a put waited after its attempts all timed out (or met a 500/503).
    pub slow_waits: u64,
    pub seconds: f64,
}

impl Summary {
    /// Nothing for the operator to look at: exit status 0.
    pub fn clean(&self) -> bool {
        self.rejected == 0 && self.conflicts == 0 && self.failed == 0 && self.not_attempted == 0
    }

    pub fn line(&self) -> String {
        let mut s = format!("read {}, ", self.read);
        if self.dry_run {
            s += &format!(
                "would import {} (dry run: nothing written)",
                self.would_import
            );
        } else {
            s += &format!(
                "imported {}, already there {} ({} imported before, {} registered through the function)",
                self.imported,
                self.already_there,
                self.already_imported,
                self.registered_through_function
            );
        }
        s += &format!(
            ", rejected {}, conflicts {} ({} mobile{})",
            self.rejected,
            self.conflicts,
            self.conflicting_mobiles,
            if self.conflicting_mobiles == 1 {
                ""
            } else {
                "s"
            }
        );
        if !self.dry_run {
            s += &format!(", failed {}", self.failed);
        }
        if self.not_attempted > 0 {
            s += &format!(
                ", not attempted {} (stopped: the store kept failing)",
                self.not_attempted
            );
        }
        s
    }
}

/// One line of the report. No password hash, password, name or whole mobile ever goes here.
#[derive(Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Entry<'a> {
    Rejected {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u64>,
        mobile: Option<&'a str>,
        reasons: &'a [Reason],
    },
    Conflict {
        id: i64,
        mobile: String,
        ids: &'a [i64],
    },
    AlreadyThere {
        by: &'static str,
        id: i64,
        mobile: String,
        user_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        existing_legacy_id: Option<i64>,
    },
    Imported {
        id: i64,
        mobile: String,
        user_id: &'a str,
        created_at: &'a str,
        note: &'static str,
    },
    Failed {
        id: i64,
        mobile: String,
        error: &'a str,
    },
    Summary(&'a Summary),
}

struct Report(BufWriter<File>);

impl Report {
    /// Each line is flushed as written: after a `kill -9` the report holds every line so far.
    fn write(&mut self, entry: &Entry) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.0, entry)?;
        self.0.write_all(b"\n")?;
        self.0.flush()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Read(#[from] legacy::ReadError),
    #[error("writing the report {path} failed: {error}")]
    Report { path: String, error: std::io::Error },
}

/// Progress on stderr: indicatif's bar (rate, ETA) on a terminal, a plain line at an interval
/// otherwise. Counts only, never a row's values.
struct Progress {
    bar: Option<ProgressBar>,
    every: Duration,
    last: Instant,
    started: Instant,
}

impl Progress {
    fn new(every: Duration) -> Self {
        Self {
            bar: None,
            every,
            last: Instant::now(),
            started: Instant::now(),
        }
    }

    fn phase(&mut self, total: Option<u64>, what: &'static str) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
        self.started = Instant::now();
        self.last = self.started;
        if !std::io::stderr().is_terminal() {
            return;
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} {rate} ETA {eta} {prefix}",
                )
                .expect("the template parses")
                .with_key("rate", rate)
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg} {pos} rows {rate}")
                    .expect("the template parses")
                    .with_key("rate", rate),
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn tick(&mut self, done: u64, total: Option<u64>, what: &str, extra: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            if !extra.is_empty() {
                bar.set_prefix(extra.to_owned());
            }
            return;
        }
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        eprintln!("{}", self.plain(done, total, what, extra));
    }

    fn plain(&self, done: u64, total: Option<u64>, what: &str, extra: &str) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let mut line = format!("progress: {what} {done}");
        if let Some(total) = total {
            let eta = if rate > 0.0 {
                format!("{:.0}s", (total.saturating_sub(done)) as f64 / rate)
            } else {
                "?".to_owned()
            };
            line += &format!("/{total}, {rate:.0}/s, ETA {eta}");
        } else {
            line += &format!(", {rate:.0}/s");
        }
        if !extra.is_empty() {
            line += &format!(", {extra}");
        }
        line
    }

    /// The bar gives way to a plain line, so what follows starts on a line of its own.
    fn finish(&mut self, done: u64, total: Option<u64>, what: &str, extra: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{}", self.plain(done, total, what, extra));
    }
}

/// The bar's rate as a whole number (indicatif's own `per_sec` prints every decimal).
fn rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}

/// Runs the import; the summary is also the report's last line.
pub async fn run(opts: Options) -> Result<Summary, RunError> {
    let started = Instant::now();
    let run_started_at = SystemTime::now();
    let report_err = |error| RunError::Report {
        path: opts.report.display().to_string(),
        error,
    };
    let mut report = Report(BufWriter::new(
        File::create(&opts.report).map_err(report_err)?,
    ));
    let mut summary = Summary {
        dry_run: opts.writer.is_none(),
        ..Summary::default()
    };
    let mut progress = Progress::new(opts.progress_every);

    // 1. Read and judge every row. The candidates stay in memory: conflicts need the whole set.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut rejected: Vec<Rejected> = Vec::new();
    progress.phase(None, "reading");
    legacy::read(&opts.source, &opts.columns, |row| {
        summary.read += 1;
        match rows::judge(&row, opts.offset) {
            Ok(c) => candidates.push(c),
            Err(r) => rejected.push(r),
        }
        progress.tick(summary.read, None, "read", "");
    })
    .await?;
    progress.finish(summary.read, None, "read", "");
    for r in &rejected {
        summary.rejected += 1;
        report
            .write(&Entry::Rejected {
                id: r.id,
                line: r.line,
                mobile: r.mobile.as_deref(),
                reasons: &r.reasons,
            })
            .map_err(report_err)?;
    }

    // 2. Rows sharing a mobile: every candidate among them reported, none imported (a rejected
    //    one among them keeps its rejection line).
    let conflicts = rows::conflicts(&candidates, &rejected);
    summary.conflicting_mobiles = conflicts.len() as u64;
    let (todo, clashing): (Vec<Candidate>, Vec<Candidate>) = candidates
        .into_iter()
        .partition(|c| !conflicts.contains_key(c.mobile.as_str()));
    for c in &clashing {
        summary.conflicts += 1;
        report
            .write(&Entry::Conflict {
                id: c.legacy_id,
                mobile: c.mobile.masked(),
                ids: &conflicts[c.mobile.as_str()],
            })
            .map_err(report_err)?;
    }

    // 3. Write, at most `concurrency` puts at once.
    let total = todo.len() as u64;
    match &opts.writer {
        None => summary.would_import = total,
        Some(writer) => {
            let (throttled, slow) = (AtomicU64::new(0), AtomicU64::new(0));
            let mut stream = futures_util::stream::iter(todo)
                .map(|c| {
                    let (throttled, slow) = (&throttled, &slow);
                    async move {
                        let when = c.created_at.unwrap_or(run_started_at);
                        let outcome = writer
                            .put(&c, when, |wait| {
                                match wait {
                                    Wait::Throttled => throttled,
                                    Wait::Slow => slow,
                                }
                                .fetch_add(1, Ordering::Relaxed);
                            })
                            .await;
                        (c, when, outcome)
                    }
                })
                .buffer_unordered(opts.concurrency.max(1));
            progress.phase(Some(total), "importing");
            let (mut done, mut streak) = (0u64, 0u64);
            while let Some((c, when, outcome)) = stream.next().await {
                done += 1;
                streak = if matches!(outcome, Outcome::Failed { .. }) {
                    streak + 1
                } else {
                    0
                };
                record(&mut summary, &mut report, &c, when, &outcome).map_err(report_err)?;
                let waits = [
                    ("throttled", throttled.load(Ordering::Relaxed)),
                    ("slow", slow.load(Ordering::Relaxed)),
                ];
                let extra = waits
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(what, n)| format!("{what} waits {n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                progress.tick(done, Some(total), "written", &extra);
                if streak >= FAILURE_STREAK_LIMIT {
                    // Puts still in flight are dropped: each landed or not, and a rerun sees which.
                    summary.not_attempted = total - done;
                    break;
                }
            }
            summary.throttled_waits = throttled.load(Ordering::Relaxed);
            summary.slow_waits = slow.load(Ordering::Relaxed);
            progress.finish(done, Some(total), "written", "");
        }
    }
    summary.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    report
        .write(&Entry::Summary(&summary))
        .map_err(report_err)?;
    Ok(summary)
}

fn record(
    summary: &mut Summary,
    report: &mut Report,
    c: &Candidate,
    when: SystemTime,
    outcome: &Outcome,
) -> std::io::Result<()> {
    let (id, mobile) = (c.legacy_id, c.mobile.masked());
    match outcome {
        Outcome::Imported { user_id } => {
            summary.imported += 1;
            if let Some(note) = c.time_note {
                let created_at = crate::store::created_at_text(when);
                report.write(&Entry::Imported {
                    id,
                    mobile,
                    user_id,
                    created_at: &created_at,
                    note,
                })?;
            }
        }
        Outcome::AlreadyImported { user_id, .. }
        | Outcome::RegisteredThroughFunction { user_id } => {
            let (by, existing) = match outcome {
                Outcome::AlreadyImported { legacy_id, .. } => {
                    summary.already_imported += 1;
                    ("import", legacy_id.filter(|l| *l != id))
                }
                _ => {
                    summary.registered_through_function += 1;
                    ("function", None)
                }
            };
            summary.already_there += 1;
            report.write(&Entry::AlreadyThere {
                by,
                id,
                mobile,
                user_id,
                existing_legacy_id: existing,
            })?;
        }
        Outcome::Failed { error } => {
            summary.failed += 1;
            report.write(&Entry::Failed { id, mobile, error })?;
        }
    }
    Ok(())
}
