//! The source side of a task: a pull-based [`SourceReader`] the task polls between mails, so
//! timers and (later) checkpoint barriers interleave with reading.
//!
//! A reader snapshots its position when a checkpoint is triggered and is restored to it after a
//! failure (before `open`). A source restored at another parallelism is refused: positions
//! belong to one subtask's share of the input until sources move onto Flink's split-based
//! Source API (a later issue).

use crate::error::OperatorError;
use eddy_core::{Data, StreamRecord};

/// What a poll found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputStatus {
    /// Records were produced and more may follow right away.
    MoreAvailable,
    /// Nothing now; poll again later.
    NothingAvailable,
    /// The input is exhausted (bounded sources).
    EndOfInput,
}

/// What a reader learns when it opens.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// 0-based subtask index.
    pub subtask: usize,
    /// Number of parallel source subtasks.
    pub parallelism: usize,
}

/// Reads records for one source subtask.
pub trait SourceReader: Send + 'static {
    /// The records it produces.
    type Out: Data;

    /// Called once on the task thread: connect, open files, pick this subtask's share.
    fn open(&mut self, ctx: &SourceContext) -> Result<(), OperatorError>;

    /// Appends at most `max` records to `out`.
    fn poll_next(
        &mut self,
        out: &mut Vec<StreamRecord<Self::Out>>,
        max: usize,
    ) -> Result<InputStatus, OperatorError>;

    /// The reader's position, to resume from after a failure.
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError>;

    /// Resumes from a position taken by `snapshot_position` (before `open`).
    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError>;

    /// Releases resources.
    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Checkpoint `id` completed (e.g. commit offsets to an external system).
    fn notify_checkpoint_complete(&mut self, _id: u64) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// The operator-state name a source's position is stored under.
pub const SOURCE_POSITION_STATE: &str = "source-position";
