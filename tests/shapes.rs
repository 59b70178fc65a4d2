//! The same jobs on each shape of the embedded MiniCluster — one TaskManager (every channel in
//! memory) and two (`minicluster.number-of-taskmanagers: 2`: keyed and rebalanced channels
//! cross the in-process TaskManagers' network stacks) — with the same output, checked against
//! an oracle. The shape with jobmanager and taskmanager processes is in
//! `crates/eddy-cli/tests/cluster.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{fail_once, SlowSequence};

/// MiniCluster shapes: TaskManagers.
const SHAPES: [usize; 2] = [1, 2];

fn env_on(taskmanagers: usize, p: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(p);
    env.set_config(
        eddy::core::config::MINICLUSTER_TASKMANAGERS,
        &taskmanagers.to_string(),
    )
    .unwrap();
    env
}

/// Runs the job declared on `env`, returns what `out` collected, and checks that data crossed
/// TaskManagers exactly when there are several.
fn run<T: Data>(env: &StreamExecutionEnvironment, out: CollectHandle<T>, shape: usize) -> Vec<T> {
    let mut client = env.execute_async("shape").unwrap();
    client.wait().unwrap();
    // After the end, every subtask's final watermark: the end of event time.
    let wms = client.watermarks();
    assert!(!wms.is_empty());
    assert!(
        wms.iter().all(|w| w.output_watermark == i64::MAX),
        "{wms:?}"
    );
    let tms = client.taskmanagers();
    assert_eq!(tms.len(), shape);
    let sent: u64 = tms.iter().map(|t| t.network_bytes.1).sum();
    if shape == 1 {
        assert_eq!(sent, 0, "one TaskManager moves no data over the network");
    } else {
        assert!(
            sent > 0,
            "{shape} TaskManagers: nothing crossed the network"
        );
    }
    out.take()
}

#[test]
fn keyed_counts_are_the_same_on_every_shape() {
    let words: Vec<String> = (0..20_000u64)
        .map(|i| format!("w{}", (i * 7919) % 101))
        .collect();
    let mut oracle: BTreeMap<String, u64> = BTreeMap::new();
    for w in &words {
        *oracle.entry(w.clone()).or_default() += 1;
    }
    for shape in SHAPES {
        let env = env_on(shape, 4);
        let out = env
            .from_collection(words.clone())
            .rebalance()
            .map(|w: String| (w, 1u64))
            .key_by(|t: &(String, u64)| t.0.clone())
            .reduce(|a: (String, u64), b: (String, u64)| (a.0, a.1 + b.1))
            .collect();
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for (w, c) in run(&env, out, shape) {
            let e = last.entry(w).or_default();
            *e = (*e).max(c);
        }
        assert_eq!(last, oracle, "{shape} taskmanager(s)");
    }
}

#[test]
fn event_time_windows_are_the_same_on_every_shape() {
    // Out of order by at most 30 ms, watermarks lag 30 ms: no element is late, so each
    // window's count is exact however watermarks travel between TaskManagers.
    let evs: Vec<(u32, i64)> = (0..6_000i64)
        .map(|i| ((i % 13) as u32, 1_000 + i * 3 - (i * 37) % 30))
        .collect();
    let mut oracle: BTreeMap<(u32, i64), u64> = BTreeMap::new();
    for (k, ts) in &evs {
        *oracle
            .entry((*k, ts.div_euclid(100) * 100 + 100))
            .or_default() += 1;
    }
    for shape in SHAPES {
        let env = env_on(shape, 3);
        let out = env
            .from_collection(evs.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(30))
                    .with_timestamp_assigner(|e: &(u32, i64), _| e.1)
                    .with_auto_watermark_interval(Duration::from_millis(1)),
            )
            .set_parallelism(1)
            .map(|e: (u32, i64)| (e.0, e.1, 1u64))
            .key_by(|t: &(u32, i64, u64)| t.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
            .reduce(|a: (u32, i64, u64), b: (u32, i64, u64)| (a.0, a.1.max(b.1), a.2 + b.2))
            .map(|t: (u32, i64, u64)| (t.0, t.1.div_euclid(100) * 100 + 100, t.2))
            .collect();
        let got: BTreeMap<(u32, i64), u64> = run(&env, out, shape)
            .into_iter()
            .map(|(k, end, c)| ((k, end), c))
            .collect();
        assert_eq!(got, oracle, "{shape} taskmanager(s)");
    }
}

#[test]
fn failover_is_exactly_once_on_every_shape() {
    const KEYS: u64 = 17;
    let n = 3_000u64;
    let mut oracle: BTreeMap<u64, u64> = BTreeMap::new();
    for v in 0..n {
        *oracle.entry(v % KEYS).or_default() += 1;
    }
    for shape in SHAPES {
        let dir = tempfile::tempdir().unwrap();
        let env = env_on(shape, 2);
        env.enable_checkpointing(Duration::from_millis(15));
        env.configure_checkpointing(|c| c.storage = Some(dir.path().display().to_string()));
        env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
            attempts: 3,
            delay_ms: 0,
        });
        let failed = Arc::new(AtomicBool::new(false));
        let out = env
            .add_source("Slow Sequence", move || SlowSequence::new(n, 50, 1))
            .set_parallelism(1)
            .map(fail_once(n / 2, failed.clone()))
            .map(|v: u64| (v % KEYS, 1u64))
            .key_by(|t: &(u64, u64)| t.0)
            .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
            .collect();
        let mut client = env.execute_async("shape failover").unwrap();
        client.wait().unwrap();
        assert!(failed.load(std::sync::atomic::Ordering::SeqCst));
        let failures = client.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].restarted);
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        for (k, c) in out.take() {
            let e = last.entry(k).or_default();
            *e = (*e).max(c);
        }
        assert_eq!(last, oracle, "{shape} taskmanager(s)");
    }
}

#[test]
fn an_interval_join_is_the_same_on_every_shape() {
    // Two keyed inputs into one two-input operator: both inputs' channels cross TaskManagers.
    let left: Vec<(u32, i64)> = (0..600i64).map(|i| ((i % 7) as u32, i * 2)).collect();
    let right: Vec<(u32, i64)> = (0..600i64).map(|i| ((i % 7) as u32, i * 2 + 1)).collect();
    let mut oracle = Vec::new();
    for l in &left {
        for r in &right {
            if l.0 == r.0 && (-15..=15).contains(&(r.1 - l.1)) {
                oracle.push((l.0, l.1, r.1));
            }
        }
    }
    oracle.sort();
    assert!(oracle.len() > 100, "{}", oracle.len());
    let strategy = || {
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(1))
            .with_timestamp_assigner(|e: &(u32, i64), _| e.1)
            .with_auto_watermark_interval(Duration::from_millis(1))
    };
    for shape in SHAPES {
        let env = env_on(shape, 3);
        let l = env
            .from_collection(left.clone())
            .assign_timestamps_and_watermarks(strategy())
            .set_parallelism(1)
            .key_by(|e: &(u32, i64)| e.0);
        let r = env
            .from_collection(right.clone())
            .assign_timestamps_and_watermarks(strategy())
            .set_parallelism(1)
            .key_by(|e: &(u32, i64)| e.0);
        let out = l
            .interval_join(&r)
            .between(-15, 15)
            .process_fn(
                |l: (u32, i64), r: (u32, i64), _ctx, out: &mut Collector<'_, (u32, i64, i64)>| {
                    out.collect((l.0, l.1, r.1));
                    Ok(())
                },
            )
            .collect();
        let mut got = run(&env, out, shape);
        got.sort();
        assert_eq!(got, oracle, "{shape} taskmanager(s)");
    }
}

/// The result-comparing suites start from `common::environment()`, which puts them on the
/// shape `EDDY_TEST_TASKMANAGERS` names (`.ci/run` runs them on 1 and on 2 TaskManagers):
/// the job runs on that many TaskManagers.
#[test]
fn the_shape_variable_decides_the_taskmanagers_of_the_suites() {
    let want: usize = std::env::var(common::SHAPE_VARIABLE)
        .map(|v| v.parse().unwrap())
        .unwrap_or(1);
    let env = common::environment();
    env.set_parallelism(2);
    env.from_sequence(1, 1000)
        .key_by(|v: &i64| v % 7)
        .sum(|v: &mut i64| v)
        .sink_to_discard();
    let mut client = env.execute_async("shape").unwrap();
    assert_eq!(client.taskmanagers().len(), want);
    client.wait().unwrap();
}
