//! Throughput of a keyed tumbling event-time window count, the windowing hot path: records/s
//! at parallelism 1 and 2 (or `--parallelism`).
//!
//! ```text
//! cargo bench --bench window_count -- [--records 20000000] [--keys 1000] [--parallelism 1,2]
//! ```
//! Each source subtask emits its share of `--records` with event time advancing 1 ms per 10
//! records (monotonous, so watermarks follow closely), keyed into `--keys` keys, counted per
//! key in 1 s tumbling windows with an `AggregateFunction` (one accumulator per key and
//! window), results discarded. The count of all window results is checked against the input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
struct Count;
impl AggregateFunction<(u64, i64), u64, u64> for Count {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _v: (u64, i64), acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

fn run(records: i64, keys: u64, p: usize, checkpoint_ms: Option<u64>) -> (Duration, u64, u64) {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    let dir = std::env::temp_dir().join(format!("eddy-bench-chk-{}", std::process::id()));
    if let Some(ms) = checkpoint_ms {
        env.enable_checkpointing(Duration::from_millis(ms));
        let d = dir.display().to_string();
        env.configure_checkpointing(move |c| c.storage = Some(d));
    }
    let per_subtask = records / p as i64;
    let total = Arc::new(AtomicU64::new(0));
    let t2 = total.clone();
    env.from_sequence(0, per_subtask * p as i64 - 1)
        .map(move |i: i64| {
            let j = i % per_subtask;
            // A cheap scramble so consecutive records hit different keys.
            (
                ((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % keys.max(1),
                j / 10,
            )
        })
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|r: &(u64, i64), _| r.1),
        )
        .key_by(|r: &(u64, i64)| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .aggregate(Count)
        .map(move |c: u64| {
            t2.fetch_add(c, Ordering::Relaxed);
            c
        })
        .sink_to_discard();
    let mut client = env
        .execute_async("window count benchmark")
        .expect("benchmark job");
    // Poll until every subtask saw the end of event time, then read the checkpoint count
    // (the final checkpoint follows). Polling does not affect the measured time, which is the
    // job's own runtime.
    while !client
        .watermarks()
        .iter()
        .all(|w| w.output_watermark == i64::MAX)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut completed = client.checkpoint_stats().counts.completed;
    if checkpoint_ms.is_some() {
        std::thread::sleep(Duration::from_millis(50));
        completed = client.checkpoint_stats().counts.completed;
    }
    let runtime = client.wait().expect("benchmark job").net_runtime;
    let _ = std::fs::remove_dir_all(&dir);
    (runtime, total.load(Ordering::Relaxed), completed)
}

fn main() {
    let (mut records, mut keys, mut ps) = (20_000_000i64, 1000u64, vec![1usize, 2]);
    let mut checkpoint_ms = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--records", Some(v)) => records = v.parse().expect("--records N"),
            ("--keys", Some(v)) => keys = v.parse().expect("--keys N"),
            ("--parallelism", Some(v)) => {
                ps = v
                    .split(',')
                    .map(|x| x.parse().expect("--parallelism 1,2"))
                    .collect()
            }
            ("--checkpoint-interval-ms", Some(v)) => {
                checkpoint_ms = Some(v.parse().expect("--checkpoint-interval-ms MS"))
            }
            ("--bench", _) => {}
            _ => {}
        }
    }
    for p in ps {
        let (d, counted, checkpoints) = run(records, keys, p, checkpoint_ms);
        let n = (records / p as i64) * p as i64;
        assert_eq!(counted, n as u64, "every record counted once");
        println!(
            "window_count p={p}: {n} records, {keys} keys, 1 s tumbling windows{}: {:.2} s, {:.2} M records/s",
            checkpoint_ms
                .map(|ms| format!(", checkpoint every {ms} ms ({checkpoints} completed)"))
                .unwrap_or_default(),
            d.as_secs_f64(),
            n as f64 / d.as_secs_f64() / 1e6
        );
    }
}
