//! The source side of a task: a pull-based [`SourceReader`] the task polls between mails, so
//! timers and (later) checkpoint barriers interleave with reading.
//!
//! A reader snapshots its progress when a checkpoint is triggered and is restored to it after a
//! failure (before `open`). Progress is kept as **splits**, as in Flink's FLIP-27 sources: each
//! split is an independent share of the input together with how far it was read. On a restore
//! at another parallelism the framework redistributes the splits of all old subtasks among the
//! new ones (contiguous chunks, Flink's round-robin list-state repartitioning), so a reader of
//! splits can be rescaled; a subtask given no split reads nothing. A simple reader that keeps a
//! single position implements [`SourceReader::snapshot_position`] instead and is restored only at
//! the parallelism it was snapshotted at.

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

/// A restore at another parallelism than the snapshot's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rescale {
    /// The source's parallelism when the snapshot was taken.
    pub old_parallelism: usize,
    /// Its parallelism now.
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

    /// The reader's position, to resume from after a failure, for a reader that does not
    /// implement [`SourceReader::snapshot_splits`].
    fn snapshot_position(&mut self) -> Result<Vec<u8>, OperatorError> {
        Err(OperatorError::Internal(format!(
            "source reader {} implements neither snapshot_splits nor snapshot_position: it \
             cannot be checkpointed",
            std::any::type_name::<Self>()
        )))
    }

    /// Resumes from a position taken by `snapshot_position` (before `open`).
    fn restore_position(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let _ = position;
        Err(OperatorError::Internal(format!(
            "source reader {} implements neither restore_splits nor restore_position: it \
             cannot be restored",
            std::any::type_name::<Self>()
        )))
    }

    /// The splits this reader still has to read, each with its progress, in the order they
    /// are read. A split finished completely may be left out. The default is the reader's one
    /// position.
    fn snapshot_splits(&mut self) -> Result<Vec<Vec<u8>>, OperatorError> {
        Ok(vec![self.snapshot_position()?])
    }

    /// Resumes from the splits the framework assigned this subtask (before `open`): a share of
    /// the splits every old subtask snapshotted, all of them when `rescale` is `None` (same
    /// parallelism), possibly none. A restored reader reads exactly its splits; one given none
    /// reads nothing. The default restores one position and refuses other parallelisms.
    fn restore_splits(
        &mut self,
        splits: Vec<Vec<u8>>,
        rescale: Option<Rescale>,
    ) -> Result<(), OperatorError> {
        if let Some(r) = rescale {
            return Err(OperatorError::Internal(format!(
                "source state was taken at parallelism {} and cannot be restored at parallelism \
                 {}: this source keeps one position per subtask, not splits; keep its \
                 parallelism when restoring",
                r.old_parallelism, r.parallelism
            )));
        }
        match splits.as_slice() {
            [] => Ok(()),
            [p] => self.restore_position(p),
            more => Err(OperatorError::Internal(format!(
                "expected one source position in the restored state, found {}",
                more.len()
            ))),
        }
    }

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
