//! Helpers shared by the integration tests: the environment every result-comparing test
//! starts from (on the MiniCluster shape `EDDY_TEST_TASKMANAGERS` names), a replayable
//! throttled source, a seeded random pick, and a failure-injecting map.
#![allow(dead_code)]

use eddy::core::StreamRecord;
use eddy::prelude::*;
use eddy::runtime::OperatorError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable naming the MiniCluster shape the result-comparing tests run on: its number
/// of TaskManagers (default 1: every channel in memory; 2: keyed and rebalanced channels
/// cross the in-process TaskManagers' network stacks). `.ci/run` runs these suites on both.
pub const SHAPE_VARIABLE: &str = "EDDY_TEST_TASKMANAGERS";

/// A fresh environment on the shape [`SHAPE_VARIABLE`] names.
pub fn environment() -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::get_execution_environment();
    if let Ok(n) = std::env::var(SHAPE_VARIABLE) {
        env.set_config(eddy::core::config::MINICLUSTER_TASKMANAGERS, &n)
            .unwrap_or_else(|e| panic!("{SHAPE_VARIABLE}={n}: {e}"));
    }
    env
}

/// A replayable, throttled source of `0..n`: `per_poll` records, then a `pause`, so a run
/// lasts long enough for checkpoints; its position is the next value.
#[derive(Clone)]
pub struct SlowSequence {
    n: u64,
    next: u64,
    per_poll: u64,
    pause: Duration,
}

impl SlowSequence {
    pub fn new(n: u64, per_poll: u64, pause_ms: u64) -> Self {
        SlowSequence {
            n,
            next: 0,
            per_poll,
            pause: Duration::from_millis(pause_ms),
        }
    }
}

impl SourceReader for SlowSequence {
    type Out = u64;
    fn open(&mut self, _ctx: &SourceContext) -> Result<(), OperatorError> {
        Ok(())
    }
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<u64>>,
        _max: usize,
    ) -> Result<InputStatus, OperatorError> {
        if self.next >= self.n {
            return Ok(InputStatus::EndOfInput);
        }
        let end = (self.next + self.per_poll).min(self.n);
        out.extend((self.next..end).map(StreamRecord::new));
        self.next = end;
        std::thread::sleep(self.pause);
        Ok(InputStatus::MoreAvailable)
    }
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Ok(self.next.to_le_bytes().to_vec())
    }
    fn restore_position(&mut self, p: &[u8]) -> Result<(), OperatorError> {
        let b: [u8; 8] = p
            .try_into()
            .map_err(|_| OperatorError::Internal("bad position".into()))?;
        self.next = u64::from_le_bytes(b);
        Ok(())
    }
}

pub fn seed() -> u64 {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    eprintln!("seed {s}");
    s
}

pub fn pick(seed: &mut u64, lo: u64, hi: u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    lo + *seed % (hi - lo)
}

/// [`fail_once`], but record `at` waits (up to 30 s) until `ready` is set before it fails.
pub fn fail_once_when(
    at: u64,
    failed: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
) -> impl FnMut(u64) -> u64 + Clone + Send {
    move |v| {
        if v == at && !failed.load(Ordering::SeqCst) {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !ready.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if !failed.swap(true, Ordering::SeqCst) {
                panic!("injected failure at record {at}");
            }
        }
        v
    }
}

/// Fails once, the first time it sees `at` (shared across restarts through the flag).
pub fn fail_once(at: u64, failed: Arc<AtomicBool>) -> impl FnMut(u64) -> u64 + Clone + Send {
    move |v| {
        if v == at && !failed.swap(true, Ordering::SeqCst) {
            panic!("injected failure at record {at}");
        }
        v
    }
}
