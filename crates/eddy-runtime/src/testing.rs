//! Test support shared by operator unit tests: a chained consumer that records what an
//! operator emits.

use crate::environment::TaskEnv;
use crate::error::TaskError;
use crate::output::Input;
use crate::output::Output;
use eddy_core::{Data, StreamRecord, Watermark};
use parking_lot::Mutex;
use std::sync::Arc;

pub(crate) type Records<T> = Arc<Mutex<Vec<StreamRecord<T>>>>;

/// A chained consumer that keeps what it receives.
pub(crate) struct Sink<T>(pub(crate) Records<T>);

impl<T: Data> Input<T> for Sink<T> {
    fn open(&mut self, _: &TaskEnv) -> Result<(), TaskError> {
        Ok(())
    }
    fn process_batch(&mut self, b: &mut Vec<StreamRecord<T>>) -> Result<(), TaskError> {
        self.0.lock().append(b);
        Ok(())
    }
    fn process_watermark(&mut self, _: Watermark) -> Result<(), TaskError> {
        Ok(())
    }
    fn process_watermark_status(&mut self, _: eddy_core::WatermarkStatus) -> Result<(), TaskError> {
        Ok(())
    }
    fn on_processing_time(&mut self, _: i64) -> Result<(), TaskError> {
        Ok(())
    }
    fn next_processing_time(&self) -> Option<i64> {
        None
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
    fn finish(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
    fn close(&mut self) {}
}

pub(crate) fn sink<T: Data>() -> (Records<T>, Output<T>) {
    let r: Records<T> = Arc::default();
    let out = Output::new(vec![Box::new(Sink(r.clone()))], Vec::new(), Vec::new());
    (r, out)
}

/// A checkpoint (not savepoint) barrier for checkpoint `id`.
pub(crate) fn barrier(id: crate::checkpoint::CheckpointId) -> crate::checkpoint::CheckpointBarrier {
    crate::checkpoint::CheckpointBarrier {
        id,
        timestamp: 0,
        kind: crate::checkpoint::SnapshotKind::Checkpoint,
        savepoint_dir: None,
        final_checkpoint: false,
    }
}

/// What `records` received as `(value, timestamp)`, sorted, leaving it empty.
pub(crate) fn take_sorted<T: Ord>(records: &Records<T>) -> Vec<(T, i64)> {
    let mut got: Vec<(T, i64)> = records
        .lock()
        .drain(..)
        .map(|r| (r.value, r.timestamp))
        .collect();
    got.sort();
    got
}
