//! Exactly-once sinks through two-phase commit tied to checkpoints (DESIGN §6, §7): Flink's
//! `TwoPhaseCommitSinkFunction` as the trait [`TwoPhaseCommitSink`] plus the generic operator
//! [`TwoPhaseCommitSinkOperator`] that drives it.
//!
//! Owns the transaction life cycle and its bookkeeping in operator state; the external system
//! (files, a database, Kafka) is the sink implementation's business. The cycle per subtask:
//!
//! 1. A *current* transaction takes every record ([`TwoPhaseCommitSink::invoke`]).
//! 2. On checkpoint `n` the current transaction is pre-committed (flushed so that a commit can
//!    no longer fail for lack of data), filed as *pending for `n`*, and a new one begins. The
//!    pending transactions and the new current one go into the snapshot.
//! 3. When checkpoint `n` completed everywhere, every pending transaction of a checkpoint `≤ n`
//!    is committed, oldest first.
//! 4. After a failure the job restarts from the last completed checkpoint `c`: its pending
//!    transactions belong to checkpoints `≤ c`, which completed, so they are committed (the
//!    notification may have been lost — hence commits must be idempotent); its current
//!    transaction holds records after barrier `c`, which the sources replay, so it is aborted.
//!
//! Without checkpointing there is nothing to tie commits to: the current transaction is
//! committed at the end of input. With checkpointing, the end of input only stops taking
//! records; the runtime takes a final checkpoint and its completion commits the rest (FLIP-147).

use crate::chain::{OneInputOperator, OperatorContext};
use crate::checkpoint::{
    CheckpointBarrier, CheckpointId, ListStateSnapshot, OperatorStateMode, OperatorSubtaskState,
};
use crate::error::{FunctionError, OperatorError};
use crate::output::Output;
use eddy_core::{Data, StreamRecord};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// Name of the operator list state holding a subtask's transactions.
pub const TWO_PHASE_COMMIT_STATE: &str = "two-phase-commit-state";

/// What a [`TwoPhaseCommitSink`] learns about its subtask when it opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkContext {
    /// The job's name.
    pub job_name: String,
    /// The sink operator's name.
    pub operator_name: String,
    /// 0-based subtask index.
    pub subtask: usize,
    /// The sink's parallelism.
    pub parallelism: usize,
    /// Whether the job restarted from a checkpoint or savepoint; the operator calls
    /// [`TwoPhaseCommitSink::recover_and_commit`] / [`TwoPhaseCommitSink::recover_and_abort`]
    /// for this subtask's share of the restored transactions right after `open`.
    pub restored: bool,
    /// Whether the job checkpoints (commits follow completed checkpoints), or not (the only
    /// commit happens at the end of input).
    pub checkpointing: bool,
}

/// A sink writing into an external system in transactions that commit when a checkpoint
/// completes (Flink's `TwoPhaseCommitSinkFunction`). Wrap it in a
/// [`TwoPhaseCommitSinkOperator`].
///
/// A transaction handle (`Txn`) is stored in checkpoints, so it must describe the transaction
/// completely for a *different process* to commit or abort it after a failure (a transaction
/// id, file names), and must not hold resources such as open files: keep those in the sink,
/// keyed by the handle.
pub trait TwoPhaseCommitSink<T>: Send + 'static {
    /// The transaction handle.
    type Txn: Serialize + DeserializeOwned + Clone + Send + fmt::Debug + 'static;

    /// Called once on the task thread before any transaction; `ctx.restored` tells whether
    /// recovery calls follow.
    fn open(&mut self, ctx: &SinkContext) -> Result<(), OperatorError>;
    /// Starts a transaction. Called eagerly (at open and after every checkpoint), so it should
    /// be cheap and create nothing visible until the first record.
    fn begin_transaction(&mut self) -> Result<Self::Txn, OperatorError>;
    /// Writes one record into `txn`.
    fn invoke(
        &mut self,
        txn: &mut Self::Txn,
        value: &T,
        timestamp: Option<i64>,
    ) -> Result<(), OperatorError>;
    /// Makes `txn` durable (flush, sync) so that [`TwoPhaseCommitSink::commit`] cannot fail
    /// for lack of data. No record is added to `txn` afterwards.
    fn pre_commit(&mut self, txn: &mut Self::Txn) -> Result<(), OperatorError>;
    /// Makes a pre-committed `txn` visible. Must be idempotent: after a failure it may be
    /// called again for a transaction that was already committed.
    fn commit(&mut self, txn: Self::Txn) -> Result<(), OperatorError>;
    /// Throws `txn` away.
    fn abort(&mut self, txn: Self::Txn) -> Result<(), OperatorError>;
    /// Commits a pre-committed transaction restored from a completed checkpoint, possibly
    /// written by another subtask or another run.
    fn recover_and_commit(&mut self, txn: Self::Txn) -> Result<(), OperatorError> {
        self.commit(txn)
    }
    /// Aborts the transaction that was current when the restored checkpoint was taken (and,
    /// where the sink can tell, what that subtask wrote after it).
    fn recover_and_abort(&mut self, txn: Self::Txn) -> Result<(), OperatorError> {
        self.abort(txn)
    }
    /// Releases resources. Pending transactions stay as they are: a later run commits them.
    fn close(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// What one subtask stores per checkpoint: one item of the split list state
/// [`TWO_PHASE_COMMIT_STATE`], so that after rescaling every item, with all its transactions,
/// goes to exactly one new subtask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TwoPhaseState<X> {
    /// Pre-committed transactions by the checkpoint they were pre-committed for, oldest first.
    pending: Vec<(CheckpointId, X)>,
    /// The transaction begun right after the snapshot.
    current: X,
}

/// Runs a [`TwoPhaseCommitSink`] as the last operator of a chain (Flink's
/// `TwoPhaseCommitSinkFunction` inside a `StreamSink`).
pub struct TwoPhaseCommitSinkOperator<T, S: TwoPhaseCommitSink<T>> {
    sink: S,
    /// The transaction taking records; `None` before open and after a commit at the end of
    /// input without checkpointing.
    current: Option<S::Txn>,
    /// Pre-committed transactions waiting for their checkpoint to complete.
    pending: BTreeMap<CheckpointId, S::Txn>,
    checkpointing: bool,
    /// `name (i/p)`, for logs and errors.
    who: String,
    _t: PhantomData<fn(T)>,
}

impl<T, S: TwoPhaseCommitSink<T>> TwoPhaseCommitSinkOperator<T, S> {
    /// An operator driving `sink`.
    pub fn new(sink: S) -> Self {
        TwoPhaseCommitSinkOperator {
            sink,
            current: None,
            pending: BTreeMap::new(),
            checkpointing: false,
            who: String::new(),
            _t: PhantomData,
        }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The transaction taking records now.
    pub fn current_transaction(&self) -> Option<&S::Txn> {
        self.current.as_ref()
    }

    /// Pre-committed transactions waiting for their checkpoint, oldest first.
    pub fn pending_transactions(&self) -> impl Iterator<Item = (CheckpointId, &S::Txn)> {
        self.pending.iter().map(|(id, t)| (*id, t))
    }

    /// Decodes this subtask's share of the restored state (all items before acting on any, so
    /// a corrupt item fails the restore before anything was committed).
    fn restored_states(
        &self,
        ctx: &OperatorContext<'_>,
    ) -> Result<Vec<TwoPhaseState<S::Txn>>, OperatorError> {
        let Some((_, items)) = ctx
            .restored()
            .and_then(|r| r.operator.get(TWO_PHASE_COMMIT_STATE))
        else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                postcard::from_bytes(bytes).map_err(|e| {
                    OperatorError::BadInput(format!(
                        "restored state '{TWO_PHASE_COMMIT_STATE}' of {} (item {i}) cannot be \
                         decoded: {e}",
                        self.who
                    ))
                })
            })
            .collect()
    }
}

impl<T: Data, S: TwoPhaseCommitSink<T>> OneInputOperator for TwoPhaseCommitSinkOperator<T, S> {
    type In = T;
    type Out = ();

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        self.checkpointing = ctx.checkpointing();
        self.who = format!(
            "{} ({}/{})",
            ctx.label.name,
            ctx.env.subtask + 1,
            ctx.env.parallelism
        );
        let restored = self.restored_states(ctx)?;
        self.sink.open(&SinkContext {
            job_name: ctx.env.job_name.clone(),
            operator_name: ctx.label.name.clone(),
            subtask: ctx.env.subtask,
            parallelism: ctx.env.parallelism,
            restored: ctx.restored().is_some(),
            checkpointing: self.checkpointing,
        })?;
        // Several items after rescaling (or none): each is one old subtask's transactions.
        for state in restored {
            for (id, txn) in state.pending {
                // Its checkpoint completed (we restore from it or a later one), but the
                // notification may not have arrived: commit, idempotently.
                tracing::info!(
                    "{}: committing recovered transaction of checkpoint {id}",
                    self.who
                );
                self.sink.recover_and_commit(txn).map_err(|e| {
                    in_context(
                        e,
                        format!("checkpoint {id}: committing recovered transaction"),
                    )
                })?;
            }
            // Its records came after the restored checkpoint's barrier; the sources replay
            // them.
            tracing::info!("{}: aborting recovered current transaction", self.who);
            self.sink
                .recover_and_abort(state.current)
                .map_err(|e| in_context(e, "aborting recovered transaction".into()))?;
        }
        self.current = Some(self.sink.begin_transaction()?);
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        _out: &mut Output<()>,
    ) -> Result<(), OperatorError> {
        let Some(txn) = self.current.as_mut() else {
            return Err(OperatorError::Internal(format!(
                "{}: record without an open transaction (after end of input?)",
                self.who
            )));
        };
        for r in batch.drain(..) {
            let ts = (r.timestamp != StreamRecord::<T>::NO_TIMESTAMP).then_some(r.timestamp);
            self.sink.invoke(txn, &r.value, ts)?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Output<()>) -> Result<(), OperatorError> {
        // With checkpointing the final checkpoint pre-commits the current transaction and its
        // completion commits it; committing here would publish records that a restore from an
        // earlier checkpoint replays (duplicates).
        if self.checkpointing {
            return Ok(());
        }
        if let Some(mut txn) = self.current.take() {
            self.sink.pre_commit(&mut txn)?;
            self.sink.commit(txn)?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        // The current transaction was never pre-committed, so no checkpoint refers to it and
        // nobody will ever commit it. Pending ones stay: their checkpoint may have completed
        // (or will), and the next run commits them from the restored state.
        let aborted = match self.current.take() {
            Some(txn) => self.sink.abort(txn),
            None => Ok(()),
        };
        if !self.pending.is_empty() {
            tracing::info!(
                "{}: {} pre-committed transaction(s) left for recovery to commit",
                self.who,
                self.pending.len()
            );
        }
        let closed = self.sink.close();
        aborted.and(closed)
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
    ) -> Result<OperatorSubtaskState, OperatorError> {
        if self.pending.contains_key(&barrier.id) {
            return Err(OperatorError::Internal(format!(
                "{}: checkpoint {} snapshotted twice",
                self.who, barrier.id
            )));
        }
        let mut txn = match self.current.take() {
            Some(t) => t,
            // Only after a commit at the end of input; snapshot an empty transaction.
            None => self.sink.begin_transaction()?,
        };
        if let Err(e) = self.sink.pre_commit(&mut txn) {
            // Keep it current so that close aborts it.
            self.current = Some(txn);
            return Err(in_context(
                e,
                format!("checkpoint {}: pre-committing", barrier.id),
            ));
        }
        self.pending.insert(barrier.id, txn);
        let current = self.sink.begin_transaction()?;
        let state = TwoPhaseState {
            pending: self
                .pending
                .iter()
                .map(|(id, t)| (*id, t.clone()))
                .collect(),
            current: current.clone(),
        };
        self.current = Some(current);
        let item = postcard::to_stdvec(&state).map_err(|e| {
            OperatorError::Internal(format!(
                "{}: encoding state '{TWO_PHASE_COMMIT_STATE}' of checkpoint {}: {e}",
                self.who, barrier.id
            ))
        })?;
        Ok(OperatorSubtaskState {
            operator: vec![ListStateSnapshot {
                name: TWO_PHASE_COMMIT_STATE.into(),
                mode: OperatorStateMode::Split,
                items: vec![item],
            }],
            ..Default::default()
        })
    }

    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        // A completed checkpoint implies every earlier one is subsumed: commit all up to `id`.
        let later = match id.checked_add(1) {
            Some(next) => self.pending.split_off(&next),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut self.pending, later);
        // As Flink: try every transaction and report the first failure. A failed one is not
        // kept: the job fails over and commits it again from the restored state.
        let mut first_err = None;
        for (cp, txn) in due {
            if let Err(e) = self.sink.commit(txn) {
                tracing::warn!(
                    "{}: committing transaction of checkpoint {cp} failed: {e}",
                    self.who
                );
                first_err.get_or_insert(in_context(e, format!("checkpoint {cp}: committing")));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Nothing to do, as in Flink: the transaction pre-committed for an aborted checkpoint
    /// stays pending and is committed with the next checkpoint that completes (which covers
    /// every id below it). Aborting it would lose its records: once a later checkpoint
    /// completes, the sources never replay records from before that checkpoint.
    fn notify_checkpoint_aborted(&mut self, _id: CheckpointId) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// A function error with what was being done in front.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {cause}")]
struct ContextError {
    context: String,
    cause: FunctionError,
}

/// Puts `context` (e.g. which checkpoint's commit) in front of an error's message.
fn in_context(e: OperatorError, context: String) -> OperatorError {
    match e {
        OperatorError::Io { context: c, source } => OperatorError::Io {
            context: format!("{context}: {c}"),
            source,
        },
        OperatorError::BadInput(m) => OperatorError::BadInput(format!("{context}: {m}")),
        OperatorError::Internal(m) => OperatorError::Internal(format!("{context}: {m}")),
        OperatorError::User(cause) => {
            OperatorError::User(Box::new(ContextError { context, cause }))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::state::RestoredOperatorState;
    use crate::checkpoint::storage::MemoryCheckpointStorage;
    use crate::checkpoint::{
        CheckpointResponder, SubtaskKey, TaskAcknowledgement, TaskCheckpointing, TaskMailbox,
        TaskRestore, Uploader,
    };
    use crate::environment::TaskEnv;
    use crate::error::OperatorLabel;
    use crate::testing::barrier;
    use crate::waker::TaskWaker;
    use eddy_core::keygroup::KeyGroupRange;
    use parking_lot::Mutex;
    use std::sync::Arc;

    /// A transaction of the test sink: its records.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Txn {
        id: u64,
        records: Vec<String>,
    }

    /// What the test sink did, in order.
    type Log = Arc<Mutex<Vec<String>>>;

    struct TestSink {
        log: Log,
        next_id: u64,
        /// The transaction whose commit fails.
        fail_commit: Option<u64>,
    }

    impl TwoPhaseCommitSink<String> for TestSink {
        type Txn = Txn;
        fn open(&mut self, ctx: &SinkContext) -> Result<(), OperatorError> {
            self.log
                .lock()
                .push(format!("open restored={}", ctx.restored));
            Ok(())
        }
        fn begin_transaction(&mut self) -> Result<Txn, OperatorError> {
            self.next_id += 1;
            self.log.lock().push(format!("begin {}", self.next_id));
            Ok(Txn {
                id: self.next_id,
                records: Vec::new(),
            })
        }
        fn invoke(
            &mut self,
            txn: &mut Txn,
            value: &String,
            _ts: Option<i64>,
        ) -> Result<(), OperatorError> {
            txn.records.push(value.clone());
            Ok(())
        }
        fn pre_commit(&mut self, txn: &mut Txn) -> Result<(), OperatorError> {
            self.log.lock().push(format!("pre_commit {}", txn.id));
            Ok(())
        }
        fn commit(&mut self, txn: Txn) -> Result<(), OperatorError> {
            if self.fail_commit == Some(txn.id) {
                return Err(OperatorError::BadInput(format!(
                    "commit {} refused",
                    txn.id
                )));
            }
            self.log
                .lock()
                .push(format!("commit {} {:?}", txn.id, txn.records));
            Ok(())
        }
        fn abort(&mut self, txn: Txn) -> Result<(), OperatorError> {
            self.log
                .lock()
                .push(format!("abort {} {:?}", txn.id, txn.records));
            Ok(())
        }
        fn recover_and_commit(&mut self, txn: Txn) -> Result<(), OperatorError> {
            self.log.lock().push(format!("recover_commit {}", txn.id));
            self.commit(txn)
        }
        fn recover_and_abort(&mut self, txn: Txn) -> Result<(), OperatorError> {
            self.log.lock().push(format!("recover_abort {}", txn.id));
            self.abort(txn)
        }
    }

    struct NoResponder;
    impl CheckpointResponder for NoResponder {
        fn acknowledge(&self, _ack: TaskAcknowledgement) {}
        fn decline(&self, _id: CheckpointId, _task: SubtaskKey, _reason: String) {}
        fn source_finished(&self, _task: SubtaskKey) {}
    }

    fn env(checkpointing: bool, restore: Option<TaskRestore>) -> TaskEnv {
        let mut env = TaskEnv::standalone("job", "Sink", 0, 1);
        if checkpointing {
            env.checkpointing = Some(Arc::new(TaskCheckpointing {
                mode: eddy_core::CheckpointingMode::ExactlyOnce,
                task: SubtaskKey {
                    vertex: 0,
                    subtask: 0,
                },
                job_id: eddy_core::JobId(1),
                responder: Arc::new(NoResponder),
                storage: Arc::new(MemoryCheckpointStorage::default()),
                uploader: Uploader::new(1),
                mailbox: Arc::new(TaskMailbox::new(TaskWaker::new())),
                operator_files: BTreeMap::new(),
                periodic: true,
            }));
        }
        env.restore = restore.map(Arc::new);
        env
    }

    type Op = TwoPhaseCommitSinkOperator<String, TestSink>;

    fn open(env: &TaskEnv, log: &Log, first_id: u64) -> Result<Op, OperatorError> {
        let mut op = TwoPhaseCommitSinkOperator::new(TestSink {
            log: log.clone(),
            next_id: first_id,
            fail_commit: None,
        });
        let label = OperatorLabel {
            name: "Sink".into(),
            subtask: 0,
            parallelism: 1,
        };
        op.open(&mut OperatorContext {
            env,
            label: &label,
            max_parallelism: 128,
            key_group_range: KeyGroupRange::all(128),
            id: 7,
        })?;
        Ok(op)
    }

    fn records(op: &mut Op, values: &[&str]) -> Result<(), OperatorError> {
        let mut b: Vec<_> = values
            .iter()
            .map(|v| StreamRecord::new(v.to_string()))
            .collect();
        op.process_batch(&mut b, &mut Output::default())
    }

    fn restore_of(states: &[OperatorSubtaskState], parallelism: usize) -> Vec<TaskRestore> {
        let old: Vec<_> = states.iter().cloned().map(Some).collect();
        (0..parallelism)
            .map(|i| TaskRestore {
                checkpoint_id: 0,
                operators: [(
                    7,
                    RestoredOperatorState::assign(&old, i, parallelism, KeyGroupRange::all(128)),
                )]
                .into(),
            })
            .collect()
    }

    fn take(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.lock())
    }

    #[test]
    fn pending_transactions_commit_in_order_when_their_checkpoint_completes(
    ) -> Result<(), OperatorError> {
        let log = Log::default();
        let env = env(true, None);
        let mut op = open(&env, &log, 0)?;
        assert_eq!(take(&log), ["open restored=false", "begin 1"]);
        records(&mut op, &["a", "b"])?;
        op.snapshot_state(&barrier(1))?;
        records(&mut op, &["c"])?;
        op.snapshot_state(&barrier(2))?;
        records(&mut op, &["d"])?;
        op.snapshot_state(&barrier(3))?;
        assert_eq!(
            take(&log),
            [
                "pre_commit 1",
                "begin 2",
                "pre_commit 2",
                "begin 3",
                "pre_commit 3",
                "begin 4"
            ]
        );
        // Checkpoint 1 was aborted: its transaction stays and goes with checkpoint 2.
        op.notify_checkpoint_aborted(1)?;
        assert!(take(&log).is_empty());
        op.notify_checkpoint_complete(2)?;
        assert_eq!(take(&log), [r#"commit 1 ["a", "b"]"#, r#"commit 2 ["c"]"#]);
        assert_eq!(
            op.pending_transactions()
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            [3]
        );
        // A repeated or older notification commits nothing twice.
        op.notify_checkpoint_complete(2)?;
        assert!(take(&log).is_empty());
        op.notify_checkpoint_complete(3)?;
        assert_eq!(take(&log), [r#"commit 3 ["d"]"#]);
        Ok(())
    }

    #[test]
    fn end_of_input_commits_only_without_checkpointing() -> Result<(), OperatorError> {
        let log = Log::default();
        let mut op = open(&env(false, None), &log, 0)?;
        records(&mut op, &["x"])?;
        op.finish(&mut Output::default())?;
        op.close()?;
        assert_eq!(
            take(&log),
            [
                "open restored=false",
                "begin 1",
                "pre_commit 1",
                r#"commit 1 ["x"]"#
            ]
        );

        let mut op = open(&env(true, None), &log, 0)?;
        records(&mut op, &["x"])?;
        op.finish(&mut Output::default())?;
        assert_eq!(take(&log), ["open restored=false", "begin 1"]);
        // The final checkpoint pre-commits, its completion commits.
        op.snapshot_state(&barrier(1))?;
        op.notify_checkpoint_complete(1)?;
        op.close()?;
        assert_eq!(
            take(&log),
            ["pre_commit 1", "begin 2", r#"commit 1 ["x"]"#, "abort 2 []"]
        );
        Ok(())
    }

    #[test]
    fn close_aborts_the_current_transaction_and_keeps_pending_ones() -> Result<(), OperatorError> {
        let log = Log::default();
        let mut op = open(&env(true, None), &log, 0)?;
        records(&mut op, &["a"])?;
        op.snapshot_state(&barrier(1))?;
        records(&mut op, &["b"])?;
        take(&log);
        op.close()?;
        assert_eq!(take(&log), [r#"abort 2 ["b"]"#]);
        Ok(())
    }

    #[test]
    fn restore_commits_pending_and_aborts_current_of_every_item() -> Result<(), OperatorError> {
        // Two old subtasks, each with a pending transaction, restored into one.
        let log = Log::default();
        let mut states = Vec::new();
        for first_id in [0, 100] {
            let mut op = open(&env(true, None), &log, first_id)?;
            records(&mut op, &["a"])?;
            op.snapshot_state(&barrier(1))?;
            op.notify_checkpoint_complete(1)?;
            records(&mut op, &["b"])?;
            states.push(op.snapshot_state(&barrier(2))?);
            records(&mut op, &["lost"])?;
            // Crash: dropped without notification of checkpoint 2 or close.
        }
        take(&log);
        let restore = restore_of(&states, 1).remove(0);
        let env = env(true, Some(restore));
        let mut op = open(&env, &log, 1000)?;
        assert_eq!(
            take(&log),
            [
                "open restored=true",
                "recover_commit 2",
                r#"commit 2 ["b"]"#,
                "recover_abort 3",
                "abort 3 []",
                "recover_commit 102",
                r#"commit 102 ["b"]"#,
                "recover_abort 103",
                "abort 103 []",
                "begin 1001",
            ]
        );
        assert_eq!(op.pending_transactions().count(), 0);
        // The restored subtask's next snapshot holds only its own transactions.
        let s = op.snapshot_state(&barrier(3))?;
        assert_eq!(s.operator[0].items.len(), 1);
        Ok(())
    }

    #[test]
    fn corrupt_state_fails_before_anything_is_committed() {
        let log = Log::default();
        let mut restored = RestoredOperatorState::default();
        restored.operator.insert(
            TWO_PHASE_COMMIT_STATE.into(),
            (OperatorStateMode::Split, vec![vec![0xff; 3]]),
        );
        let restore = TaskRestore {
            checkpoint_id: 1,
            operators: [(7, restored)].into(),
        };
        let err = match open(&env(true, Some(restore)), &log, 0) {
            Ok(_) => panic!("corrupt state was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(TWO_PHASE_COMMIT_STATE), "{err}");
        assert!(log.lock().is_empty());
    }

    #[test]
    fn failed_commit_names_the_checkpoint_and_still_commits_the_others() -> Result<(), OperatorError>
    {
        let log = Log::default();
        let mut op = open(&env(true, None), &log, 0)?;
        records(&mut op, &["a"])?;
        op.snapshot_state(&barrier(4))?;
        records(&mut op, &["b"])?;
        op.snapshot_state(&barrier(5))?;
        op.sink_mut().fail_commit = Some(1);
        take(&log);
        let err = op
            .notify_checkpoint_complete(5)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "bad input: checkpoint 4: committing: commit 1 refused");
        assert_eq!(take(&log), [r#"commit 2 ["b"]"#]);
        // The failed one is not retried here: recovery commits it from the restored state.
        assert_eq!(op.pending_transactions().count(), 0);
        Ok(())
    }
}
