//! Recovery time: how long from a task failure reaching the JobMaster until every task of the
//! restarted job has restored the latest checkpoint and runs again (Flink's RESTARTING →
//! RUNNING), for a keyed count whose state holds `--keys` keys.
//!
//! ```text
//! cargo bench --bench recovery -- [--keys 10000,1000000] [--parallelism 2]
//! ```
//! A sequence source feeds a keyed rolling count (`reduce`) over `--keys` keys with
//! checkpoints every 200 ms into a temp directory and a fixed-delay restart strategy with no
//! delay; a map fails once after every key was seen three times and a checkpoint holding all
//! keys has completed. Prints the recovery time, the restored checkpoint's size and the job's
//! total runtime (exactness under failures is what `tests/checkpoints.rs` checks).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn run(keys: u64, p: usize) {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    let dir = std::env::temp_dir().join(format!("eddy-bench-recovery-{}", std::process::id()));
    env.enable_checkpointing(Duration::from_millis(200));
    let d = dir.display().to_string();
    env.configure_checkpointing(move |c| c.storage = Some(d));
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 1,
        delay_ms: 0,
    });
    // Enough records after the third pass to outlast the wait for two more checkpoints.
    let records = keys * 3 + 3_000_000;
    let fail_at = keys * 3;
    let failed = Arc::new(AtomicBool::new(false));
    // Set once a checkpoint taken after the third pass over the keys completed, so the
    // restore carries every key; the map fails at its next record.
    let armed = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let (f, a, pr) = (failed.clone(), armed.clone(), progress.clone());
    env.from_sequence(0, records as i64 - 1)
        .set_parallelism(1)
        .uid("source")
        .map(move |i: i64| {
            let i = i as u64;
            if i >= fail_at && !f.load(Ordering::Relaxed) {
                pr.store(i, Ordering::Relaxed);
                if a.load(Ordering::SeqCst) && !f.swap(true, Ordering::SeqCst) {
                    panic!("injected failure at record {i}");
                }
                // Slow down until the failure, so checkpoints complete meanwhile.
                if i.is_multiple_of(100) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            (i % keys, 1u64)
        })
        .set_parallelism(1)
        .uid("fail")
        .key_by(|t: &(u64, u64)| t.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("count")
        .sink_to_discard();
    let mut client = env.execute_async("recovery benchmark").expect("job");
    while progress.load(Ordering::Relaxed) < fail_at {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = client.checkpoint_stats().counts.completed;
    while client.checkpoint_stats().counts.completed < before + 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    armed.store(true, Ordering::SeqCst);
    let result = client.wait().expect("the job recovers");
    let failures = client.failures();
    let f = failures.first().expect("the failure was recorded");
    let restored = f.restored_checkpoint.expect("a checkpoint was restored");
    let size = client
        .checkpoint_stats()
        .history
        .iter()
        .find(|c| c.id == restored)
        .map(|c| c.state_size)
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "recovery p={p}: {keys} keys, restored checkpoint {restored} ({:.1} MB): running again after {:.1} ms (job runtime {:.2} s)",
        size as f64 / 1e6,
        f.recovered_after.expect("recovered").as_secs_f64() * 1e3,
        result.net_runtime.as_secs_f64()
    );
}

fn main() {
    let (mut keys, mut ps) = (vec![10_000u64, 1_000_000], vec![2usize]);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--keys", Some(v)) => {
                keys = v.split(',').map(|x| x.parse().expect("--keys N")).collect()
            }
            ("--parallelism", Some(v)) => {
                ps = v
                    .split(',')
                    .map(|x| x.parse().expect("--parallelism N"))
                    .collect()
            }
            _ => {}
        }
    }
    for &p in &ps {
        for &k in &keys {
            run(k, p);
        }
    }
}
