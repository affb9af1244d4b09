//! Init checkpoints for the cold-start profile (issue 16): with the `init-phases` feature, each
//! [`mark`] records the wall clock at the end of a phase, and [`report`] prints them on one
//! stderr line, `{"init_phases":[["main",<ns since the epoch>],...]}`, that `benches/lambda.rs`
//! turns into a table by phase (the wall clock, not `Instant`, so the harness can put the time
//! before `main` on the same axis). Without the feature both are empty and compiled away: the
//! deployed build carries none of it.

#[cfg(feature = "init-phases")]
mod on {
    use std::sync::Mutex;
    use std::time::{SystemTime, UNIX_EPOCH};

    static MARKS: Mutex<Vec<(&'static str, u128)>> = Mutex::new(Vec::new());

    pub fn mark(phase: &'static str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        MARKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((phase, now));
    }

    pub fn report() {
        let marks = std::mem::take(&mut *MARKS.lock().unwrap_or_else(|e| e.into_inner()));
        let line = serde_json::json!({ "init_phases": marks });
        eprintln!("{line}");
    }
}

#[cfg(feature = "init-phases")]
pub use on::{mark, report};

/// Records the end of the init phase `phase` (only with the `init-phases` feature).
#[cfg(not(feature = "init-phases"))]
#[inline(always)]
pub fn mark(_phase: &'static str) {}

/// Prints the recorded phases (only with the `init-phases` feature).
#[cfg(not(feature = "init-phases"))]
#[inline(always)]
pub fn report() {}
