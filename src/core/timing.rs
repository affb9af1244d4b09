//! Where a request spends its time, by stage (hashing, Redis, DynamoDB): an account kept for the
//! request's task, which the edge turns into its metrics line. The core records its own stage
//! (the hash); the edge's timed store wrappers record the others. Knows nothing of metrics
//! formats.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Where an invocation spent its time; `None` for a stage it never reached.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Spent {
    pub hash: Option<Duration>,
    pub redis: Option<Duration>,
    pub dynamodb: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Hash,
    Redis,
    DynamoDb,
}

tokio::task_local! {
    static SPENT: Cell<Spent>;
}

/// Runs `fut` with a fresh account of the time spent in each stage, and returns both.
pub async fn measured<F: Future>(fut: F) -> (F::Output, Spent) {
    SPENT
        .scope(Cell::new(Spent::default()), async move {
            let out = fut.await;
            (out, SPENT.with(Cell::get))
        })
        .await
}

/// Adds `took` to the stage's time, when inside [`measured`] (elsewhere, e.g. in a benchmark
/// calling the hash directly, it does nothing).
pub fn record(stage: Stage, took: Duration) {
    let _ = SPENT.try_with(|cell| {
        let mut spent = cell.get();
        let slot = match stage {
            Stage::Hash => &mut spent.hash,
            Stage::Redis => &mut spent.redis,
            Stage::DynamoDb => &mut spent.dynamodb,
        };
        *slot = Some(slot.unwrap_or_default() + took);
        cell.set(spent);
    });
}

/// Awaits `fut`, recording its time against `stage`.
pub async fn timed<F: Future>(stage: Stage, fut: F) -> F::Output {
    let start = Instant::now();
    let out = fut.await;
    record(stage, start.elapsed());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn time_is_recorded_per_stage_inside_a_measured_task_only() {
        record(Stage::Hash, Duration::from_millis(5)); // outside: ignored, no panic
        let ((), spent) = measured(async {
            record(Stage::Redis, Duration::from_millis(1));
            record(Stage::Redis, Duration::from_millis(2));
            timed(Stage::DynamoDb, async {}).await;
        })
        .await;
        assert_eq!(spent.redis, Some(Duration::from_millis(3)));
        assert_eq!(spent.hash, None);
        assert!(spent.dynamodb.is_some());
    }
}
