//! Checkpoints, failover and savepoints end to end on the MiniCluster: failures injected at
//! random records, restores checked against exact oracles.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::chain::{OneInputOperator, OperatorContext};
use eddy::runtime::checkpoint::{CheckpointBarrier, OperatorSubtaskState};
use eddy::runtime::factory::OneInputFactory;
use eddy::runtime::output::Output;
use eddy::runtime::OperatorError;
use eddy_testing::finished_lines;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{fail_once, fail_once_when, pick, seed, SlowSequence};

const KEYS: u64 = 17;

fn expected_counts(n: u64) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    for v in 0..n {
        *m.entry(v % KEYS).or_default() += 1;
    }
    m
}

/// The last (highest) running count per key.
fn final_counts(out: &[(u64, u64)]) -> BTreeMap<u64, u64> {
    let mut m: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, c) in out {
        let e = m.entry(*k).or_default();
        *e = (*e).max(*c);
    }
    m
}

/// An environment checkpointing every 15 ms into `dir` and restarting up to three times at
/// once: the setting of the injected-failure tests.
fn recovering_env(dir: &Path) -> StreamExecutionEnvironment {
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(15));
    env.configure_checkpointing(|c| c.storage = Some(dir.display().to_string()));
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 3,
        delay_ms: 0,
    });
    env
}

fn counting_job(
    env: &StreamExecutionEnvironment,
    n: u64,
    fail_at: Option<(u64, Arc<AtomicBool>)>,
    p: usize,
) -> CollectHandle<(u64, u64)> {
    counting_job_with(env, n, fail_at, p, false)
}

/// [`counting_job`], with the count as `reduce_two_phase` if `two_phase`.
fn counting_job_with(
    env: &StreamExecutionEnvironment,
    n: u64,
    fail_at: Option<(u64, Arc<AtomicBool>)>,
    p: usize,
    two_phase: bool,
) -> CollectHandle<(u64, u64)> {
    match fail_at {
        Some((at, flag)) => counting_job_through(env, n, fail_once(at, flag), p, two_phase),
        None => counting_job_through(env, n, |v: u64| v, p, two_phase),
    }
}

/// The counting job with `fail` as its "Fail Once" map.
fn counting_job_through(
    env: &StreamExecutionEnvironment,
    n: u64,
    fail: impl FnMut(u64) -> u64 + Clone + Send + 'static,
    p: usize,
    two_phase: bool,
) -> CollectHandle<(u64, u64)> {
    let keyed = env
        .add_source("Slow Sequence", move || SlowSequence::new(n, 50, 1))
        .set_parallelism(1)
        .uid("source")
        .map(fail)
        .name("Fail Once")
        .uid("fail")
        .set_parallelism(p)
        .map(|v: u64| (v % KEYS, 1u64))
        .set_parallelism(p)
        .key_by(|t: &(u64, u64)| t.0);
    let add = |a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1);
    let counts = if two_phase {
        keyed.reduce_two_phase(add)
    } else {
        keyed.reduce(add)
    };
    counts.uid("count").set_parallelism(p).collect()
}

#[test]
fn keyed_state_is_exactly_once_across_injected_failures() {
    let mut s = seed();
    let n = 4000;
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let env = recovering_env(dir.path());
        let at = pick(&mut s, n / 4, n - 100);
        let flag = Arc::new(AtomicBool::new(false));
        // Odd rounds count in two phases: the local phase's buffer is handed on before each
        // barrier, or what it held at a checkpoint would be lost by a restore from it.
        let out = counting_job_with(&env, n, Some((at, flag.clone())), 2, round % 2 == 1);
        let mut client = env.execute_async("exactly once counts").unwrap();
        client.wait().expect("the job recovers");
        assert!(
            flag.load(Ordering::SeqCst),
            "round {round}: the failure was injected"
        );
        assert_eq!(
            final_counts(&out.take()),
            expected_counts(n),
            "round {round}: failure at record {at}"
        );
    }
}

#[test]
fn failover_restores_the_latest_checkpoint_and_records_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.configure_checkpointing(|c| c.storage = Some(dir.path().display().to_string()));
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 1,
        delay_ms: 10,
    });
    let n = 4000;
    let flag = Arc::new(AtomicBool::new(false));
    // Record n/2 fails only once a checkpoint completed: how long the first one takes depends on
    // the disk (its files are fsynced), not on how far the source got.
    let checkpointed = Arc::new(AtomicBool::new(false));
    let out = counting_job_through(
        &env,
        n,
        fail_once_when(n / 2, flag, checkpointed.clone()),
        2,
        false,
    );
    let mut client = env.execute_async("failover").unwrap();
    let mut seen;
    let res = loop {
        if client.checkpoint_stats().counts.completed > 0 {
            checkpointed.store(true, Ordering::SeqCst);
        }
        seen = client.failures();
        if !seen.is_empty() || client.checkpoint_stats().counts.completed > 1000 {
            break client.wait();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    res.unwrap();
    assert_eq!(final_counts(&out.take()), expected_counts(n));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].cause.contains("injected failure"), "{seen:?}");
    assert!(seen[0].restarted);
    assert!(
        seen[0].restored_checkpoint.is_some(),
        "a checkpoint completed before record {}: {seen:?}",
        n / 2
    );
    // Recovery (failure → every task restored and running) includes the 10 ms restart delay.
    let recovered = client.failures()[0].recovered_after;
    assert!(
        recovered.is_some_and(|d| d >= Duration::from_millis(10)),
        "{recovered:?}"
    );
    // The job finished: its checkpoints are discarded, its result recorded (clean).
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, vec!["job-result-store".to_string()]);
    let result = dir
        .path()
        .join("job-result-store")
        .join(format!("{}.json", client.job_id()));
    let text = std::fs::read_to_string(&result).unwrap();
    assert!(
        text.contains("\"FINISHED\"") && text.contains("\"failover\""),
        "{text}"
    );
}

#[test]
fn restarts_exhausted_fail_the_job_naming_the_strategy() {
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 2,
        delay_ms: 1,
    });
    env.add_source("Slow Sequence", || SlowSequence::new(1000, 50, 1))
        .set_parallelism(1)
        .map(|v: u64| {
            if v == 500 {
                panic!("always fails at 500");
            }
            v
        })
        .sink_to_discard();
    let err = env.execute("always failing").unwrap_err().to_string();
    assert!(
        err.contains("fixed-delay") && err.contains("always fails at 500"),
        "{err}"
    );
}

#[test]
fn at_least_once_mode_loses_nothing() {
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.configure_checkpointing(|c| c.mode = CheckpointingMode::AtLeastOnce);
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 3,
        delay_ms: 0,
    });
    let n = 3000;
    let flag = Arc::new(AtomicBool::new(false));
    // Two source subtasks feed each counter over two channels: barriers are not aligned.
    let f = fail_once(n / 2, flag.clone());
    let out = env
        .add_source("Slow Sequence", move || SlowSequence::new(n, 40, 1))
        .set_parallelism(1)
        .rebalance()
        .map(f)
        .set_parallelism(2)
        .key_by(|v: &u64| v % KEYS)
        .process_fn(|v: u64, ctx, out: &mut Collector<'_, (u64, u64)>| {
            let _ = ctx;
            out.collect((v % KEYS, v));
            Ok(())
        })
        .set_parallelism(2)
        .collect();
    env.execute("at least once").unwrap();
    assert!(flag.load(Ordering::SeqCst));
    let got: std::collections::BTreeSet<u64> = out.take().into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        got.len() as u64,
        n,
        "every record reached the end at least once"
    );
}

#[test]
fn a_source_that_finishes_early_stays_until_the_final_checkpoint() {
    // The early source finishes at once; checkpoints keep coming while the late one runs. A
    // finished source must take part in every one of them and end only with the final
    // checkpoint: it once ended after the first checkpoint it took, and every later
    // checkpoint waited for it until the (here: two-minute) timeout.
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.configure_checkpointing(|c| c.timeout_ms = 120_000);
    let early = env
        .add_source("Early", || SlowSequence::new(5, 5, 0))
        .set_parallelism(1);
    let late = env
        .add_source("Late", || SlowSequence::new(400, 2, 2))
        .set_parallelism(1)
        .map(|v: u64| v + 1_000);
    let out = early.union(&[&late]).map(|v: u64| v).collect();
    let mut client = env.execute_async("early and late sources").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.wait());
    });
    let result = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the job ends without waiting for a checkpoint timeout");
    result.unwrap();
    let mut got = out.take();
    got.sort_unstable();
    let want: Vec<u64> = (0..5).chain(1_000..1_400).collect();
    assert_eq!(got, want);
}

#[test]
fn stop_with_savepoint_ends_a_job_whose_other_source_already_finished() {
    // The finished source must end with the stopping savepoint, not wait for a final
    // checkpoint that a stopping job never triggers.
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    let early = env
        .add_source("Early", || SlowSequence::new(5, 5, 0))
        .set_parallelism(1);
    let late = env
        .add_source("Late", || SlowSequence::new(1_000_000, 1, 1))
        .set_parallelism(1);
    early.union(&[&late]).sink_to_discard();
    let mut client = env.execute_async("stop with a finished source").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    client.stop_with_savepoint(Some(dir.path()), false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.wait());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the job ends with its savepoint")
        .unwrap();
}

/// Sleeps in its first snapshot (so that checkpoint times out), counts snapshots.
#[derive(Clone)]
struct SlowSnapshot {
    first_sleep: Duration,
    every_sleep: Duration,
    calls: Arc<AtomicUsize>,
}

impl OneInputOperator for SlowSnapshot {
    type In = u64;
    type Out = u64;
    fn open(&mut self, _ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        Ok(())
    }
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<u64>>,
        out: &mut Output<u64>,
    ) -> Result<(), OperatorError> {
        out.push_batch(batch);
        Ok(())
    }
    fn snapshot_state(
        &mut self,
        _b: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::thread::sleep(self.first_sleep);
        }
        std::thread::sleep(self.every_sleep);
        Ok(OperatorSubtaskState::default())
    }
}

fn slow_snapshot_job(
    first: u64,
    every: u64,
    configure: impl FnOnce(&mut CheckpointConfig),
) -> CheckpointStatsSnapshot {
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.configure_checkpointing(configure);
    let op = SlowSnapshot {
        first_sleep: Duration::from_millis(first),
        every_sleep: Duration::from_millis(every),
        calls: Arc::default(),
    };
    env.add_source("Slow Sequence", || SlowSequence::new(30_000, 30, 1))
        .set_parallelism(1)
        .transform::<u64>(
            "Slow Snapshot",
            Arc::new(OneInputFactory::from_prototype(op)),
            false,
        )
        .sink_to_discard();
    let mut client = env.execute_async("slow snapshots").unwrap();
    let mut stats;
    let mut max_in_progress = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = client.checkpoint_stats();
        max_in_progress = max_in_progress.max(s.counts.in_progress);
        if s.counts.completed >= 3 || std::time::Instant::now() > deadline {
            stats = s;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    client.cancel();
    let _ = client.wait();
    stats.counts.in_progress = max_in_progress;
    stats
}

#[test]
fn a_timed_out_checkpoint_is_discarded_and_the_next_succeeds() {
    let stats = slow_snapshot_job(300, 0, |c| {
        c.timeout_ms = 100;
        c.tolerable_failed = 5;
    });
    let failed = stats.latest_failed.expect("the first checkpoint failed");
    assert!(
        failed
            .failure_reason
            .as_deref()
            .unwrap_or("")
            .contains("expired"),
        "{failed:?}"
    );
    assert!(stats.counts.completed >= 3);
    let done = stats.latest_completed.unwrap();
    assert!(done.id > failed.id);
}

#[test]
fn several_checkpoints_are_in_flight_at_once() {
    let stats = slow_snapshot_job(0, 25, |c| c.max_concurrent = 3);
    assert!(stats.counts.in_progress >= 2, "{:?}", stats.counts);
    assert_eq!(stats.counts.failed, 0, "{stats:?}");
}

#[test]
fn too_many_checkpoint_failures_fail_the_job() {
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.configure_checkpointing(|c| {
        c.timeout_ms = 20;
        c.tolerable_failed = 0;
    });
    env.set_restart_strategy(RestartStrategyConfig::None);
    let op = SlowSnapshot {
        first_sleep: Duration::from_millis(0),
        every_sleep: Duration::from_millis(60),
        calls: Arc::default(),
    };
    env.add_source("Slow Sequence", || SlowSequence::new(100_000, 30, 1))
        .set_parallelism(1)
        .transform::<u64>(
            "Slow Snapshot",
            Arc::new(OneInputFactory::from_prototype(op)),
            false,
        )
        .sink_to_discard();
    let err = env.execute("failing checkpoints").unwrap_err().to_string();
    assert!(err.contains("tolerable failure threshold"), "{err}");
}

/// Completed checkpoints (with `_metadata`) of every job under `dir`.
fn completed_chks(dir: &Path) -> usize {
    let Ok(jobs) = std::fs::read_dir(dir) else {
        return 0;
    };
    jobs.flatten()
        .filter_map(|job| std::fs::read_dir(job.path()).ok())
        .flat_map(|chks| chks.flatten())
        .filter(|c| c.file_name().to_string_lossy().starts_with("chk-"))
        .filter(|c| c.path().join("_metadata").exists())
        .count()
}

fn latest_chk(dir: &Path) -> Option<std::path::PathBuf> {
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    for job in std::fs::read_dir(dir).ok()?.flatten() {
        for chk in std::fs::read_dir(job.path()).ok()?.flatten() {
            let name = chk.file_name().to_string_lossy().to_string();
            if let Some(n) = name
                .strip_prefix("chk-")
                .and_then(|n| n.parse::<u64>().ok())
            {
                if chk.path().join("_metadata").exists() && best.as_ref().is_none_or(|b| n > b.0) {
                    best = Some((n, chk.path()));
                }
            }
        }
    }
    best.map(|b| b.1)
}

#[test]
fn a_corrupt_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    let root = dir.path().to_path_buf();
    env.configure_checkpointing(|c| {
        c.storage = Some(root.display().to_string());
        c.num_retained = 3;
    });
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 1,
        delay_ms: 0,
    });
    let n = 8000;
    let failed = Arc::new(AtomicBool::new(false));
    let f2 = failed.clone();
    let r2 = root.clone();
    let corrupted = Arc::new(std::sync::Mutex::new(None::<u64>));
    let c2 = corrupted.clone();
    let out = env
        .add_source("Slow Sequence", move || SlowSequence::new(n, 50, 1))
        .set_parallelism(1)
        .map(move |v: u64| {
            // Once there is an older checkpoint to fall back to. On a loaded machine the
            // second completes later than usual: until then records trickle (a millisecond
            // each, between which barriers pass), so the input cannot end before it.
            if v < n / 4 || f2.load(Ordering::SeqCst) {
                return v;
            }
            if completed_chks(&r2) < 2 {
                std::thread::sleep(Duration::from_millis(1));
            } else if !f2.swap(true, Ordering::SeqCst) {
                // While this thread holds the source, no new barrier goes out, but a
                // checkpoint whose barrier already passed may still complete: wait until none
                // completes for 200 ms, so the one corrupted below stays the newest (once a
                // newer one completed after the corruption, and the restart rightly took it).
                let mut seen = latest_chk(&r2);
                let mut stable_since = std::time::Instant::now();
                let deadline = stable_since + Duration::from_secs(10);
                while stable_since.elapsed() < Duration::from_millis(200)
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                    let now = latest_chk(&r2);
                    if now != seen {
                        seen = now;
                        stable_since = std::time::Instant::now();
                    }
                }
                // Corrupt every state file of the newest checkpoint, then fail.
                let chk = latest_chk(&r2).expect("a checkpoint completed");
                let id = chk.file_name().unwrap().to_string_lossy()["chk-".len()..].parse();
                *c2.lock().unwrap() = Some(id.unwrap());
                for e in std::fs::read_dir(&chk).unwrap().flatten() {
                    if e.file_name() != "_metadata" {
                        std::fs::write(e.path(), b"garbage").unwrap();
                    }
                }
                panic!("injected failure after corrupting {}", chk.display());
            }
            v
        })
        .uid("fail")
        // Chained to the source: holding records here holds the source, and no buffered
        // records stand between a barrier and this map.
        .set_parallelism(1)
        .map(|v: u64| (v % KEYS, 1u64))
        .key_by(|t: &(u64, u64)| t.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("count")
        .collect();
    let mut client = env.execute_async("corrupt").unwrap();
    client.wait().unwrap();
    assert_eq!(final_counts(&out.take()), expected_counts(n));
    let failures = client.failures();
    let corrupted = corrupted.lock().unwrap().expect("the failure was injected");
    // One failure, and the restart restored a checkpoint older than the corrupted one.
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].restarted, "{failures:?}");
    let restored = failures[0]
        .restored_checkpoint
        .expect("a checkpoint was restored");
    assert!(
        restored < corrupted,
        "restored {restored}, the corrupted one is {corrupted}"
    );
}

/// Every retained checkpoint unreadable: the restart fails, naming each checkpoint it tried
/// and why, instead of starting the job over from empty state (which would write every result
/// a second time). Retried by the restart strategy, then the job fails for good.
#[test]
fn unreadable_checkpoints_fail_the_restart_instead_of_starting_over() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    let root = dir.path().to_path_buf();
    env.configure_checkpointing(|c| {
        c.storage = Some(root.display().to_string());
        c.num_retained = 2;
    });
    env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
        attempts: 2,
        delay_ms: 0,
    });
    let n = 4000;
    // The map blocks at n/2 (no checkpoint can pass it), the test corrupts every retained
    // checkpoint, then the map fails.
    let blocked = Arc::new(AtomicBool::new(false));
    let corrupted = Arc::new(AtomicBool::new(false));
    let (b2, c2, r2) = (blocked.clone(), corrupted.clone(), root.clone());
    let out = env
        .add_source("Slow Sequence", move || SlowSequence::new(n, 50, 1))
        .set_parallelism(1)
        .uid("source")
        .map(move |v: u64| {
            if v < n / 2 || b2.load(Ordering::SeqCst) {
                return v;
            }
            // Two checkpoints must have completed first. On a loaded machine they come later
            // than usual: until then records trickle (a millisecond each, between which
            // barriers pass).
            if completed_chks(&r2) < 2 {
                std::thread::sleep(Duration::from_millis(1));
            } else if !b2.swap(true, Ordering::SeqCst) {
                while !c2.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                panic!("injected failure after the checkpoints were corrupted");
            }
            v
        })
        .uid("fail")
        // Chained to the source: holding records here holds the source, and no buffered
        // records stand between a barrier and this map.
        .set_parallelism(1)
        .map(|v: u64| (v % KEYS, 1u64))
        .key_by(|t: &(u64, u64)| t.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("count")
        .collect();
    let mut client = env.execute_async("unreadable").unwrap();
    while !blocked.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Checkpoints whose barriers passed the map before it blocked complete meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    let mut chks = Vec::new();
    for job in std::fs::read_dir(&root).unwrap().flatten() {
        for chk in std::fs::read_dir(job.path()).unwrap().flatten() {
            if chk.path().join("_metadata").exists() {
                for e in std::fs::read_dir(chk.path()).unwrap().flatten() {
                    if e.file_name() != "_metadata" {
                        // Truncated, as a crash mid-write leaves it.
                        std::fs::write(e.path(), b"").unwrap();
                    }
                }
                chks.push(chk.file_name().to_string_lossy().to_string());
            }
        }
    }
    assert_eq!(chks.len(), 2, "{chks:?}");
    corrupted.store(true, Ordering::SeqCst);
    let err = client.wait().unwrap_err().to_string();
    assert!(err.contains("never starts over from empty state"), "{err}");
    for chk in &chks {
        assert!(err.contains(chk.as_str()), "{chk} not named: {err}");
    }
    assert!(err.contains("truncated"), "{err}");
    // No key's running count started over (a restart from empty state counts from 1 again).
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, c) in out.take() {
        let prev = last.insert(k, c).unwrap_or(0);
        assert!(
            c > prev,
            "key {k} counted from {c} after {prev}: started over"
        );
    }
    assert!(last.values().sum::<u64>() < n, "{last:?}");
    let failures = client.failures();
    assert!(
        failures.iter().all(|f| f.restored_checkpoint.is_none()),
        "{failures:?}"
    );
}

#[test]
fn rescale_through_a_savepoint_gives_the_uninterrupted_result() {
    // Long enough (~400 ms) that the savepoint 40 ms in falls mid-run on a loaded machine.
    let n = 20_000;
    for new_p in [3usize, 1] {
        let dir = tempfile::tempdir().unwrap();
        let env = common::environment();
        let first = counting_job(&env, n, None, 2);
        let mut client = env.execute_async("rescale").unwrap();
        std::thread::sleep(Duration::from_millis(40));
        let sp = client
            .stop_with_savepoint(Some(dir.path()), false)
            .expect("savepoint");
        client.wait().unwrap();
        let before = first.take();
        assert!(
            final_counts(&before).values().sum::<u64>() < n,
            "stopped before the end"
        );
        assert!(Path::new(&sp).join("_metadata").is_file());
        let env = common::environment();
        env.restore_from(sp.clone(), false);
        let second = counting_job(&env, n, None, new_p);
        env.execute("rescale").unwrap();
        let mut all = before;
        all.extend(second.take());
        assert_eq!(final_counts(&all), expected_counts(n), "p=2 -> p={new_p}");
    }
}

#[test]
fn state_is_matched_by_uid() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    // ~400 ms of input: the savepoint 30 ms in falls mid-run even on a loaded machine.
    let _ = counting_job(&env, 20_000, None, 2);
    let mut client = env.execute_async("uids").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let sp = client.stop_with_savepoint(Some(dir.path()), false).unwrap();
    client.wait().unwrap();
    // A job without the counter's uid cannot take its state...
    let build = |allow: bool| {
        let env = common::environment();
        env.restore_from(sp.clone(), allow);
        env.add_source("Slow Sequence", || SlowSequence::new(3000, 500, 0))
            .set_parallelism(1)
            .uid("source")
            .map(|v: u64| v)
            .uid("fail")
            .map(|v: u64| (v % KEYS, 1u64))
            .key_by(|t: &(u64, u64)| t.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .uid("renamed-count")
            .sink_to_discard();
        env.execute("uids")
    };
    let err = build(false).unwrap_err().to_string();
    assert!(err.contains("'count'") || err.contains("(count)"), "{err}");
    assert!(err.contains("allow non-restored state"), "{err}");
    // ...unless non-restored state is allowed.
    build(true).unwrap();
}

#[test]
fn missing_savepoint_is_a_clear_error() {
    let env = common::environment();
    env.restore_from("/nonexistent/savepoint-abc", false);
    env.from_elements(&[1u64]).sink_to_discard();
    let err = env.execute("missing").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/savepoint-abc"), "{err}");
}

#[test]
fn checkpoints_are_retained_on_cancellation_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    env.configure_checkpointing(|c| {
        c.storage = Some(format!("file://{}", dir.path().display()));
        c.retention = ExternalizedCheckpointRetention::RetainOnCancellation;
    });
    let _ = counting_job(&env, 100_000, None, 1);
    let mut client = env.execute_async("retained").unwrap();
    while client.checkpoint_stats().counts.completed < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = client.checkpoint_stats();
    let c = stats.latest_completed.clone().unwrap();
    assert!(
        c.end_to_end_duration_ms.is_some() && !c.subtasks.is_empty(),
        "{c:?}"
    );
    client.cancel();
    assert!(client.wait().is_err());
    let chk = latest_chk(dir.path()).expect("a retained checkpoint");
    let meta = std::fs::read_to_string(chk.join("_metadata")).unwrap();
    assert!(
        meta.contains("\"version\": 1") && meta.contains("\"job_name\": \"retained\""),
        "{meta}"
    );
}

/// `NO_CLAIM` (the default) never deletes the snapshot a job started from; `CLAIM` makes it
/// the job's own checkpoint, deleted once subsumed (here: when the finished job cleans up).
#[test]
fn claim_mode_decides_who_deletes_the_restored_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let retained = dir.path().join("retained");
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(10));
    let r = retained.clone();
    env.configure_checkpointing(|c| {
        c.storage = Some(r.display().to_string());
        c.retention = ExternalizedCheckpointRetention::RetainOnCancellation;
    });
    let _ = counting_job(&env, 100_000, None, 1);
    let mut client = env.execute_async("claimed").unwrap();
    while client.checkpoint_stats().counts.completed < 2 {
        std::thread::sleep(Duration::from_millis(5));
    }
    client.cancel();
    assert!(client.wait().is_err());
    let chk = latest_chk(&retained).expect("a retained checkpoint");
    for (mode, kept) in [
        (RecoveryClaimMode::NoClaim, true),
        (RecoveryClaimMode::Claim, false),
    ] {
        let env = common::environment();
        env.enable_checkpointing(Duration::from_millis(10));
        let own = dir.path().join(format!("own-{mode}"));
        env.configure_checkpointing(|c| c.storage = Some(own.display().to_string()));
        env.restore_from(chk.display().to_string(), false);
        env.set_claim_mode(mode);
        // Far past where the first run can have been when it was cancelled (it emits at most
        // 50 records a millisecond and stopped two checkpoints in), so this run has input left
        // even when a loaded machine made those checkpoints slow (with 3000 it once had none).
        let out = counting_job(&env, 30_000, None, 1);
        env.execute("claimed").unwrap();
        assert!(!out.take().is_empty());
        assert_eq!(chk.join("_metadata").is_file(), kept, "{mode}");
        assert_eq!(
            chk.parent().unwrap().exists(),
            kept,
            "{mode}: the job directory"
        );
    }
}

/// Keyed running counts and 100-record tumbling event-time windows, both written through the
/// exactly-once file sink.
fn file_job(
    env: &StreamExecutionEnvironment,
    n: u64,
    out: &Path,
    fail_at: Option<(u64, Arc<AtomicBool>)>,
) {
    let src = env
        .add_source("Slow Sequence", move || SlowSequence::new(n, 50, 1))
        .set_parallelism(1)
        .uid("source");
    let mapped = match fail_at {
        Some((at, flag)) => src.map(fail_once(at, flag)).uid("fail"),
        None => src.map(|v: u64| v).uid("fail"),
    };
    mapped
        .map(|v: u64| (v % KEYS, 1u64))
        .key_by(|t: &(u64, u64)| t.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .uid("count")
        .map(|(k, c): (u64, u64)| format!("count,{k},{c}"))
        .sink_to_file(out.join("counts"))
        .uid("count-sink");
    mapped
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|v: &u64, _| *v as i64),
        )
        .uid("timestamps")
        .key_by(|v: &u64| v % 3)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .reduce(|a, b| a + b)
        .uid("window")
        .map(|s: u64| format!("window,{s}"))
        .sink_to_file(out.join("windows"))
        .uid("window-sink");
}

#[test]
fn exactly_once_file_output_equals_the_failure_free_run() {
    let n = 3000;
    let clean = tempfile::tempdir().unwrap();
    let env = common::environment();
    env.enable_checkpointing(Duration::from_millis(15));
    file_job(&env, n, clean.path(), None);
    env.execute("file job").unwrap();
    let want_counts = finished_lines(&clean.path().join("counts"));
    let want_windows = finished_lines(&clean.path().join("windows"));
    assert_eq!(want_counts.len() as u64, n);
    assert!(!want_windows.is_empty());
    let mut s = seed();
    for round in 0..3 {
        let out = tempfile::tempdir().unwrap();
        let env = common::environment();
        env.enable_checkpointing(Duration::from_millis(15));
        env.set_restart_strategy(RestartStrategyConfig::FixedDelay {
            attempts: 2,
            delay_ms: 0,
        });
        let at = pick(&mut s, 1, n - 1);
        let flag = Arc::new(AtomicBool::new(false));
        file_job(&env, n, out.path(), Some((at, flag.clone())));
        env.execute("file job").unwrap();
        assert!(flag.load(Ordering::SeqCst));
        assert_eq!(
            finished_lines(&out.path().join("counts")),
            want_counts,
            "round {round}, failure at {at}"
        );
        assert_eq!(
            finished_lines(&out.path().join("windows")),
            want_windows,
            "round {round}, failure at {at}"
        );
    }
}

/// A two-phase window aggregation across injected failures: its local phase holds partial
/// counts across many checkpoints (the windows are long), and hands them on before each
/// barrier, so nothing counted before a checkpoint is lost or counted twice after a restore.
#[test]
fn two_phase_window_aggregation_is_exactly_once_across_failures() {
    const WINDOW: u64 = 1000;
    let n = 4000;
    let mut expected: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for v in 0..n {
        *expected.entry((v % KEYS, v / WINDOW * WINDOW)).or_default() += 1;
    }
    let mut s = seed();
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let env = recovering_env(dir.path());
        let at = pick(&mut s, n / 4, n - 100);
        let flag = Arc::new(AtomicBool::new(false));
        let out = env
            .add_source("Slow Sequence", move || SlowSequence::new(n, 50, 1))
            .set_parallelism(1)
            .uid("source")
            .map(fail_once(at, flag.clone()))
            .uid("fail")
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_monotonous_timestamps()
                    .with_timestamp_assigner(|v: &u64, _| *v as i64),
            )
            .key_by(|v: &u64| v % KEYS)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW)))
            .aggregate_two_phase_with(
                CountAll,
                eddy::runtime::windowing::FnProcessWindow(
                    |k: &u64,
                     ctx: &mut WindowContext<'_, u64, TimeWindow>,
                     counts: Vec<u64>,
                     out: &mut Collector<'_, ((u64, u64), u64)>| {
                        for c in counts {
                            out.collect(((*k, ctx.window().start as u64), c));
                        }
                        Ok(())
                    },
                ),
            )
            .uid("window")
            .set_parallelism(2)
            .collect();
        let mut client = env.execute_async("two-phase windows").unwrap();
        client.wait().expect("the job recovers");
        assert!(flag.load(Ordering::SeqCst), "round {round}: no failure");
        let completed = client.checkpoint_stats().counts.completed;
        let mut got: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (window, c) in out.take() {
            // A window fired before the failure may fire again after the restore (the collect
            // sink is not transactional), with the same count.
            if let Some(before) = got.insert(window, c) {
                assert_eq!(before, c, "round {round}: window {window:?} fired twice");
            }
        }
        assert_eq!(
            got, expected,
            "round {round}: failure at record {at}, {completed} checkpoints"
        );
    }
}

/// Counts elements.
#[derive(Clone)]
struct CountAll;
impl AggregateFunction<u64, u64, u64> for CountAll {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _: u64, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Runs `build(env, p)` at p=2 until a savepoint, resumes it at p=3, and returns the lines of
/// both runs together.
fn savepoint_at_2_resume_at_3(
    build: impl Fn(&StreamExecutionEnvironment, usize) -> CollectHandle<String>,
    n: usize,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let env = common::environment();
    let first = build(&env, 2);
    let mut client = env.execute_async("rescale source").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let sp = client
        .stop_with_savepoint(Some(dir.path()), false)
        .expect("savepoint");
    client.wait().unwrap();
    let mut all = first.take();
    assert!(
        !all.is_empty() && all.len() < n,
        "stopped mid-run: {}",
        all.len()
    );
    let env = common::environment();
    env.restore_from(sp, false);
    let second = build(&env, 3);
    env.execute("rescale source").unwrap();
    all.extend(second.take());
    all.sort();
    all
}

/// Slows a source down (chained to it) so a savepoint falls mid-run.
fn throttled<T: Data>(s: SingleOutputStreamOperator<T>, p: usize) -> SingleOutputStreamOperator<T> {
    let seen = Arc::new(AtomicUsize::new(0));
    s.set_parallelism(p)
        .uid("source")
        .map(move |v: T| {
            if seen.fetch_add(1, Ordering::Relaxed).is_multiple_of(40) {
                std::thread::sleep(Duration::from_millis(1));
            }
            v
        })
        .set_parallelism(p)
        .uid("throttle")
}

#[test]
fn every_parallel_built_in_source_resumes_a_savepoint_at_another_parallelism() {
    let n = 40_000usize;
    let numbers: Vec<String> = {
        let mut v: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        v.sort();
        v
    };
    let got = savepoint_at_2_resume_at_3(
        |env, p| {
            throttled(env.from_sequence(0, n as i64 - 1), p)
                .map(|v: i64| v.to_string())
                .collect()
        },
        n,
    );
    assert_eq!(got, numbers, "from_sequence");
    let got = savepoint_at_2_resume_at_3(
        |env, p| {
            let n = n as u64;
            let gen = env.add_source("Generator", move || {
                eddy::connectors::datagen::DataGeneratorSource::new(n, Arc::new(|i| i))
            });
            throttled(gen, p).map(|v: u64| v.to_string()).collect()
        },
        n,
    );
    assert_eq!(got, numbers, "DataGeneratorSource");
    let files = tempfile::tempdir().unwrap();
    for f in 0..4 {
        let text: String = (f * n / 4..(f + 1) * n / 4)
            .map(|i| format!("{i}\n"))
            .collect();
        std::fs::write(files.path().join(format!("part-{f}.txt")), text).unwrap();
    }
    let path = files.path().to_path_buf();
    let got = savepoint_at_2_resume_at_3(
        |env, p| throttled(env.read_text_file(path.clone()), p).collect(),
        n,
    );
    assert_eq!(got, numbers, "read_text_file");
}
