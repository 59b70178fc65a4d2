//! `sink_to_file(dir)`: an exactly-once, row-format file sink on two-phase commit (Flink's
//! `FileSink` / `StreamingFileSink` with a row encoder and the on-checkpoint rolling policy).
//!
//! Owns the part files of one output directory and their life cycle; when to pre-commit,
//! commit or abort is decided by [`TwoPhaseCommitSinkOperator`]. Every record becomes one line
//! (the text form of [`write_text`]). Subtask `s` writes part files with counters `c` going up:
//!
//! | state       | name                       | when                                         |
//! |-------------|----------------------------|----------------------------------------------|
//! | in-progress | `.part-<s>-<c>.inprogress` | being written by the current transaction     |
//! | pending     | `.part-<s>-<c>.pending`    | pre-committed for a checkpoint, synced       |
//! | finished    | `part-<s>-<c>`             | committed: the checkpoint completed          |
//!
//! Readers see only finished files (the others are hidden: their names start with `.`, which
//! `read_text_file` skips, like Flink's input formats). A transaction opens its first file only
//! at its first record, so checkpoints without data create no files; it rolls to a new file
//! once the current one holds [`FileSink::with_max_part_size`] bytes, and every checkpoint
//! closes the transaction's files. A new run of subtask `s` starts counting after the highest
//! counter of `s` in the directory, so it never overwrites a file of an earlier run.
//!
//! After a failure, the restored transaction that was current at the checkpoint is aborted:
//! its files and, when no other subtask of the new run can be writing that subtask's names,
//! every in-progress or pending file of that subtask numbered from the transaction's first
//! counter on (what the failed run wrote after the checkpoint). After rescaling, such files of
//! an old subtask index that a new subtask also writes stay behind as hidden leftovers: only
//! their owner could tell them apart from its own new files.

use eddy_core::Data;
use eddy_runtime::operators::sink::write_text;
#[cfg(doc)]
use eddy_runtime::operators::two_phase::TwoPhaseCommitSinkOperator;
use eddy_runtime::operators::two_phase::{SinkContext, TwoPhaseCommitSink};
use eddy_runtime::OperatorError;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Default size at which a part file rolls over (Flink's `DefaultRollingPolicy`: 128 MB).
pub const DEFAULT_MAX_PART_SIZE: u64 = 128 * 1024 * 1024;

/// The name of finished part file `counter` of `subtask`.
pub fn finished_name(subtask: usize, counter: u64) -> String {
    format!("part-{subtask}-{counter}")
}

/// The name of in-progress part file `counter` of `subtask`.
pub fn in_progress_name(subtask: usize, counter: u64) -> String {
    format!(".part-{subtask}-{counter}.inprogress")
}

/// The name of pending (pre-committed) part file `counter` of `subtask`.
pub fn pending_name(subtask: usize, counter: u64) -> String {
    format!(".part-{subtask}-{counter}.pending")
}

/// The life-cycle state a part file's name shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartState {
    /// `.part-<s>-<c>.inprogress`.
    InProgress,
    /// `.part-<s>-<c>.pending`.
    Pending,
    /// `part-<s>-<c>`.
    Finished,
}

/// A part file name as `(subtask, counter, state)`; `None` for other files.
pub fn parse_part_name(name: &str) -> Option<(usize, u64, PartState)> {
    let (rest, state) = if let Some(hidden) = name.strip_prefix(".part-") {
        if let Some(r) = hidden.strip_suffix(".inprogress") {
            (r, PartState::InProgress)
        } else {
            (hidden.strip_suffix(".pending")?, PartState::Pending)
        }
    } else {
        (name.strip_prefix("part-")?, PartState::Finished)
    };
    let (s, c) = rest.split_once('-')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(s) || !digits(c) {
        return None;
    }
    Some((s.parse().ok()?, c.parse().ok()?, state))
}

/// The part files in `dir`: `(subtask, counter, state, path)`.
fn scan_parts(dir: &Path) -> Result<Vec<(usize, u64, PartState, PathBuf)>, OperatorError> {
    let listing = |e| OperatorError::io(format!("listing output directory {}", dir.display()), e);
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        if let Some((s, c, st)) = entry.file_name().to_str().and_then(parse_part_name) {
            parts.push((s, c, st, entry.path()));
        }
    }
    Ok(parts)
}

/// One transaction of a [`FileSink`]: which part files it wrote. Stored in checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTransaction {
    /// The subtask index in the names of its files: the subtask that began it (after
    /// rescaling, another subtask may commit or abort it).
    pub subtask: usize,
    /// The part counter its first file gets. Counters only grow within a run, so every file
    /// its subtask wrote after this transaction began has a counter at least this.
    pub first_counter: u64,
    /// Counters of the part files it wrote, in order.
    pub parts: Vec<u64>,
}

/// The file a transaction is writing now.
struct OpenPart {
    counter: u64,
    path: PathBuf,
    writer: BufWriter<File>,
    /// Bytes written so far.
    size: u64,
}

/// The exactly-once row-format file sink; run it in a [`TwoPhaseCommitSinkOperator`]
/// (`DataStream::sink_to_file`). See the module docs for the file layout.
pub struct FileSink<T> {
    dir: PathBuf,
    max_part_size: u64,
    subtask: usize,
    parallelism: usize,
    /// The counter the next new part file of this subtask gets.
    next_counter: u64,
    open: Option<OpenPart>,
    line: String,
    _t: PhantomData<fn(T)>,
}

impl<T> FileSink<T> {
    /// A sink writing into directory `dir` (created when the sink opens).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSink {
            dir: dir.into(),
            max_part_size: DEFAULT_MAX_PART_SIZE,
            subtask: 0,
            parallelism: 1,
            next_counter: 0,
            open: None,
            line: String::new(),
            _t: PhantomData,
        }
    }

    /// Rolls to a new part file once the current one holds at least `bytes` bytes (lines are
    /// never split, so a part may be larger by one line). Default [`DEFAULT_MAX_PART_SIZE`].
    pub fn with_max_part_size(mut self, bytes: u64) -> Self {
        self.max_part_size = bytes.max(1);
        self
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: String) -> PathBuf {
        self.dir.join(name)
    }

    /// Whether the open part file is the last one of `txn`.
    fn open_belongs_to(&self, txn: &FileTransaction) -> bool {
        self.open
            .as_ref()
            .is_some_and(|p| txn.subtask == self.subtask && txn.parts.last() == Some(&p.counter))
    }

    /// Starts a new in-progress file for `txn`.
    fn open_part(&mut self, txn: &mut FileTransaction) -> Result<(), OperatorError> {
        let counter = self.next_counter;
        let path = self.path(in_progress_name(self.subtask, counter));
        // `create_new`: counters start above every file in the directory, so an existing file
        // means another writer uses our names (e.g. a second job on the same directory).
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| OperatorError::io(format!("creating part file {}", path.display()), e))?;
        self.next_counter += 1;
        txn.parts.push(counter);
        self.open = Some(OpenPart {
            counter,
            path,
            writer: BufWriter::with_capacity(64 * 1024, file),
            size: 0,
        });
        Ok(())
    }

    /// Flushes, syncs and closes the open part file (it keeps its in-progress name).
    fn close_open_part(&mut self) -> Result<(), OperatorError> {
        if let Some(mut p) = self.open.take() {
            p.writer
                .flush()
                .and_then(|_| p.writer.get_ref().sync_all())
                .map_err(|e| OperatorError::io(format!("writing {}", p.path.display()), e))?;
        }
        Ok(())
    }

    /// Makes renames in the directory durable.
    fn sync_dir(&self) -> Result<(), OperatorError> {
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                OperatorError::io(format!("syncing directory {}", self.dir.display()), e)
            })?;
        Ok(())
    }

    /// Deletes `path`; a missing file is fine.
    fn remove_if_present(path: &Path) -> Result<(), OperatorError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(OperatorError::io(format!("deleting {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

impl<T: Data> TwoPhaseCommitSink<T> for FileSink<T> {
    type Txn = FileTransaction;

    fn open(&mut self, ctx: &SinkContext) -> Result<(), OperatorError> {
        self.subtask = ctx.subtask;
        self.parallelism = ctx.parallelism;
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            OperatorError::io(
                format!("creating output directory {}", self.dir.display()),
                e,
            )
        })?;
        // Counting on after every file of this subtask, hidden leftovers included, so no name
        // is ever reused.
        self.next_counter = scan_parts(&self.dir)?
            .into_iter()
            .filter(|(s, ..)| *s == self.subtask)
            .map(|(_, c, ..)| c + 1)
            .max()
            .unwrap_or(0);
        Ok(())
    }

    fn begin_transaction(&mut self) -> Result<FileTransaction, OperatorError> {
        Ok(FileTransaction {
            subtask: self.subtask,
            first_counter: self.next_counter,
            parts: Vec::new(),
        })
    }

    fn invoke(
        &mut self,
        txn: &mut FileTransaction,
        value: &T,
        _timestamp: Option<i64>,
    ) -> Result<(), OperatorError> {
        let roll = match &self.open {
            None => true,
            Some(p) if self.open_belongs_to(txn) => p.size >= self.max_part_size,
            Some(p) => {
                return Err(OperatorError::Internal(format!(
                    "file sink: part file {} is open for another transaction",
                    p.path.display()
                )))
            }
        };
        if roll {
            self.close_open_part()?;
            self.open_part(txn)?;
        }
        self.line.clear();
        write_text(value, &mut self.line);
        self.line.push('\n');
        let Some(p) = self.open.as_mut() else {
            return Err(OperatorError::Internal(
                "file sink: no part file after opening one".into(),
            ));
        };
        p.writer
            .write_all(self.line.as_bytes())
            .map_err(|e| OperatorError::io(format!("writing {}", p.path.display()), e))?;
        p.size += self.line.len() as u64;
        Ok(())
    }

    fn pre_commit(&mut self, txn: &mut FileTransaction) -> Result<(), OperatorError> {
        if self.open_belongs_to(txn) {
            self.close_open_part()?;
        }
        for &c in &txn.parts {
            let from = self.path(in_progress_name(txn.subtask, c));
            let to = self.path(pending_name(txn.subtask, c));
            if let Err(e) = std::fs::rename(&from, &to) {
                // Pre-committing again (a retried checkpoint) finds the file renamed already.
                if !(e.kind() == ErrorKind::NotFound && to.exists()) {
                    return Err(OperatorError::io(
                        format!("renaming {} to {}", from.display(), to.display()),
                        e,
                    ));
                }
            }
        }
        if !txn.parts.is_empty() {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn commit(&mut self, txn: FileTransaction) -> Result<(), OperatorError> {
        if self.open_belongs_to(&txn) {
            return Err(OperatorError::Internal(format!(
                "file sink: committing transaction {txn:?} that was not pre-committed"
            )));
        }
        for &c in &txn.parts {
            let from = self.path(pending_name(txn.subtask, c));
            let to = self.path(finished_name(txn.subtask, c));
            match std::fs::rename(&from, &to) {
                Ok(()) => {}
                // Committed before (the notification was followed by a failure, or it came
                // again after recovery): nothing to do.
                Err(e) if e.kind() == ErrorKind::NotFound && to.exists() => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(OperatorError::io(
                        format!(
                            "pending file {} is missing and {} does not exist: data lost",
                            from.display(),
                            to.display()
                        ),
                        e,
                    ))
                }
                Err(e) => {
                    return Err(OperatorError::io(
                        format!("renaming {} to {}", from.display(), to.display()),
                        e,
                    ))
                }
            }
        }
        if !txn.parts.is_empty() {
            self.sync_dir()?;
        }
        Ok(())
    }

    fn abort(&mut self, txn: FileTransaction) -> Result<(), OperatorError> {
        if self.open_belongs_to(&txn) {
            // Drop the buffer unwritten: the file is deleted next.
            if let Some(p) = self.open.take() {
                drop(p.writer.into_parts());
            }
        }
        for &c in &txn.parts {
            Self::remove_if_present(&self.path(in_progress_name(txn.subtask, c)))?;
            Self::remove_if_present(&self.path(pending_name(txn.subtask, c)))?;
        }
        Ok(())
    }

    fn recover_and_abort(&mut self, txn: FileTransaction) -> Result<(), OperatorError> {
        let (owner, first) = (txn.subtask, txn.first_counter);
        self.abort(txn)?;
        // What the failed run of subtask `owner` wrote after the checkpoint (the restored
        // current transaction, typically empty in the snapshot, and the ones after it) has
        // counters from `first` on, and nothing restored refers to those files. They may be
        // deleted only if no subtask of this run writes `owner`'s names: this subtask itself
        // (which has not written yet), or an index beyond the new parallelism.
        if owner != self.subtask && owner < self.parallelism {
            return Ok(());
        }
        for (s, c, state, path) in scan_parts(&self.dir)? {
            if s == owner && c >= first && state != PartState::Finished {
                tracing::info!(
                    "file sink: deleting {} left by a failed run",
                    path.display()
                );
                Self::remove_if_present(&path)?;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), OperatorError> {
        // The operator aborts the current transaction before; a file still open belongs to no
        // checkpoint, so it is closed without caring about its data.
        self.open = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::keygroup::KeyGroupRange;
    use eddy_core::StreamRecord;
    use eddy_runtime::chain::{OneInputOperator, OperatorContext};
    use eddy_runtime::checkpoint::state::RestoredOperatorState;
    use eddy_runtime::checkpoint::storage::MemoryCheckpointStorage;
    use eddy_runtime::checkpoint::{
        CheckpointBarrier, CheckpointId, CheckpointResponder, OperatorSubtaskState, SnapshotKind,
        SubtaskKey, TaskAcknowledgement, TaskCheckpointing, TaskMailbox, TaskRestore, Uploader,
    };
    use eddy_runtime::environment::TaskEnv;
    use eddy_runtime::error::OperatorLabel;
    use eddy_runtime::operators::two_phase::TwoPhaseCommitSinkOperator;
    use eddy_runtime::output::Output;
    use eddy_runtime::waker::TaskWaker;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    type TestResult = Result<(), Box<dyn std::error::Error>>;
    type Op = TwoPhaseCommitSinkOperator<String, FileSink<String>>;

    /// The sink's operator id in the tests' jobs.
    const OP_ID: eddy_core::OperatorId = 3;

    struct NoResponder;
    impl CheckpointResponder for NoResponder {
        fn acknowledge(&self, _ack: TaskAcknowledgement) {}
        fn decline(&self, _id: CheckpointId, _task: SubtaskKey, _reason: String) {}
        fn source_finished(&self, _task: SubtaskKey) {}
    }

    fn env(subtask: usize, parallelism: usize, checkpointing: bool) -> TaskEnv {
        let mut env = TaskEnv::standalone("job", "Sink: File Sink", subtask, parallelism);
        if checkpointing {
            env.checkpointing = Some(Arc::new(TaskCheckpointing {
                mode: eddy_core::CheckpointingMode::ExactlyOnce,
                task: SubtaskKey { vertex: 0, subtask },
                job_id: eddy_core::JobId(1),
                responder: Arc::new(NoResponder),
                storage: Arc::new(MemoryCheckpointStorage::default()),
                uploader: Uploader::new(1),
                mailbox: Arc::new(TaskMailbox::new(TaskWaker::new())),
                operator_files: BTreeMap::new(),
                periodic: true,
            }));
        }
        env
    }

    /// `env` restored from the snapshots of every old subtask of the sink.
    fn restored_env(
        subtask: usize,
        parallelism: usize,
        checkpoint_id: CheckpointId,
        old: &[OperatorSubtaskState],
    ) -> TaskEnv {
        let old: Vec<_> = old.iter().cloned().map(Some).collect();
        let mut env = env(subtask, parallelism, true);
        env.restore = Some(Arc::new(TaskRestore {
            checkpoint_id,
            operators: [(
                OP_ID,
                RestoredOperatorState::assign(&old, subtask, parallelism, KeyGroupRange::all(128)),
            )]
            .into(),
        }));
        env
    }

    fn open_op(env: &TaskEnv, sink: FileSink<String>) -> Result<Op, OperatorError> {
        let mut op = TwoPhaseCommitSinkOperator::new(sink);
        let label = OperatorLabel {
            name: "Sink: File Sink".into(),
            subtask: env.subtask,
            parallelism: env.parallelism,
        };
        op.open(&mut OperatorContext {
            env,
            label: &label,
            max_parallelism: 128,
            key_group_range: KeyGroupRange::all(128),
            id: OP_ID,
        })?;
        Ok(op)
    }

    fn write(op: &mut Op, lines: &[&str]) -> Result<(), OperatorError> {
        let mut batch: Vec<_> = lines
            .iter()
            .map(|l| StreamRecord::new(l.to_string()))
            .collect();
        op.process_batch(&mut batch, &mut Output::default())
    }

    fn snapshot(op: &mut Op, id: CheckpointId) -> Result<OperatorSubtaskState, OperatorError> {
        op.snapshot_state(&CheckpointBarrier {
            id,
            timestamp: 0,
            kind: SnapshotKind::Checkpoint,
            savepoint_dir: None,
            final_checkpoint: false,
        })
    }

    /// File names in `dir`, sorted: (visible, hidden).
    fn files(dir: &Path) -> Result<(Vec<String>, Vec<String>), std::io::Error> {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        let (hidden, visible) = names.into_iter().partition(|n| n.starts_with('.'));
        Ok((visible, hidden))
    }

    /// Every line of the finished files, sorted.
    fn finished_lines(dir: &Path) -> Result<Vec<String>, std::io::Error> {
        let mut lines = Vec::new();
        for name in files(dir)?.0 {
            lines.extend(
                std::fs::read_to_string(dir.join(name))?
                    .lines()
                    .map(str::to_string),
            );
        }
        lines.sort();
        Ok(lines)
    }

    #[test]
    fn part_names_round_trip() {
        assert_eq!(
            parse_part_name(&finished_name(2, 17)),
            Some((2, 17, PartState::Finished))
        );
        assert_eq!(
            parse_part_name(&in_progress_name(0, 3)),
            Some((0, 3, PartState::InProgress))
        );
        assert_eq!(
            parse_part_name(&pending_name(11, 0)),
            Some((11, 0, PartState::Pending))
        );
        for other in [
            "part-1",
            "part-a-1",
            ".part-1-2",
            "part-1-2.txt",
            "1",
            ".part--1.pending",
        ] {
            assert_eq!(parse_part_name(other), None, "{other}");
        }
    }

    #[test]
    fn files_become_visible_only_when_their_checkpoint_completes() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("out");
        let mut op = open_op(&env(0, 1, true), FileSink::new(&dir))?;
        // An empty transaction writes no file.
        snapshot(&mut op, 1)?;
        op.notify_checkpoint_complete(1)?;
        assert_eq!(files(&dir)?, (vec![], vec![]));

        write(&mut op, &["a", "b"])?;
        assert_eq!(files(&dir)?, (vec![], vec![".part-0-0.inprogress".into()]));
        snapshot(&mut op, 2)?;
        write(&mut op, &["c"])?;
        assert_eq!(
            files(&dir)?,
            (
                vec![],
                vec![".part-0-0.pending".into(), ".part-0-1.inprogress".into()]
            )
        );
        op.notify_checkpoint_complete(2)?;
        assert_eq!(
            files(&dir)?,
            (vec!["part-0-0".into()], vec![".part-0-1.inprogress".into()])
        );
        assert_eq!(std::fs::read_to_string(dir.join("part-0-0"))?, "a\nb\n");

        // End of input with checkpointing: nothing is committed until the final checkpoint.
        op.finish(&mut Output::default())?;
        assert_eq!(finished_lines(&dir)?, ["a", "b"]);
        snapshot(&mut op, 3)?;
        op.notify_checkpoint_complete(3)?;
        op.close()?;
        assert_eq!(
            files(&dir)?,
            (vec!["part-0-0".into(), "part-0-1".into()], vec![])
        );
        assert_eq!(finished_lines(&dir)?, ["a", "b", "c"]);
        Ok(())
    }

    #[test]
    fn recovery_commits_the_checkpoint_and_removes_what_came_after() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let state = {
            let mut op = open_op(&env(0, 1, true), FileSink::new(&dir))?;
            write(&mut op, &["1", "2"])?;
            snapshot(&mut op, 1)?;
            op.notify_checkpoint_complete(1)?;
            write(&mut op, &["3"])?;
            let state = snapshot(&mut op, 2)?;
            // Written after checkpoint 2, which completes but whose notification is lost, and
            // after a checkpoint 3 that never completes.
            write(&mut op, &["4"])?;
            snapshot(&mut op, 3)?;
            write(&mut op, &["5"])?;
            state
            // Crash: dropped without notification or close.
        };
        assert_eq!(
            files(&dir)?.1,
            [
                ".part-0-1.pending",
                ".part-0-2.pending",
                ".part-0-3.inprogress"
            ]
        );

        let mut op = open_op(&restored_env(0, 1, 2, &[state]), FileSink::new(&dir))?;
        assert_eq!(
            files(&dir)?,
            (vec!["part-0-0".into(), "part-0-1".into()], vec![])
        );
        assert_eq!(finished_lines(&dir)?, ["1", "2", "3"]);

        // The sources replay from checkpoint 2.
        write(&mut op, &["4", "5"])?;
        snapshot(&mut op, 4)?;
        op.notify_checkpoint_complete(4)?;
        op.close()?;
        assert_eq!(finished_lines(&dir)?, ["1", "2", "3", "4", "5"]);
        assert!(files(&dir)?.1.is_empty());
        // Counting went on after the failed run's files.
        assert_eq!(files(&dir)?.0, ["part-0-0", "part-0-1", "part-0-4"]);
        Ok(())
    }

    #[test]
    fn commit_is_idempotent_and_a_missing_pending_file_is_data_loss() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let mut sink = FileSink::<String>::new(&dir);
        let ctx = SinkContext {
            job_name: "job".into(),
            operator_name: "Sink: File Sink".into(),
            subtask: 1,
            parallelism: 2,
            restored: false,
            checkpointing: true,
        };
        TwoPhaseCommitSink::<String>::open(&mut sink, &ctx)?;
        let mut txn = sink.begin_transaction()?;
        sink.invoke(&mut txn, &"x".to_string(), None)?;
        sink.pre_commit(&mut txn)?;
        // Pre-committing again (a retried snapshot) is harmless too.
        sink.pre_commit(&mut txn)?;
        sink.commit(txn.clone())?;
        sink.commit(txn.clone())?;
        assert_eq!(files(&dir)?, (vec!["part-1-0".into()], vec![]));
        assert_eq!(std::fs::read_to_string(dir.join("part-1-0"))?, "x\n");

        let mut lost = sink.begin_transaction()?;
        sink.invoke(&mut lost, &"y".to_string(), None)?;
        sink.pre_commit(&mut lost)?;
        let pending = dir.join(".part-1-1.pending");
        std::fs::remove_file(&pending)?;
        let err = sink
            .commit(lost)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&pending.display().to_string()), "{err}");
        assert!(err.contains("data lost"), "{err}");
        Ok(())
    }

    #[test]
    fn missing_pending_file_fails_the_commit_naming_checkpoint_and_file() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let mut op = open_op(&env(0, 1, true), FileSink::new(&dir))?;
        write(&mut op, &["a"])?;
        snapshot(&mut op, 7)?;
        std::fs::remove_file(dir.join(".part-0-0.pending"))?;
        let err = op
            .notify_checkpoint_complete(7)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("checkpoint 7: committing: pending file "),
            "{err}"
        );
        assert!(err.contains(".part-0-0.pending is missing"), "{err}");
        assert!(err.contains("data lost"), "{err}");
        Ok(())
    }

    #[test]
    fn without_checkpointing_end_of_input_commits() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("nested").join("out");
        let mut op = open_op(&env(0, 1, false), FileSink::new(&dir))?;
        write(&mut op, &["one", "two"])?;
        write(&mut op, &["three"])?;
        op.finish(&mut Output::default())?;
        op.close()?;
        assert_eq!(files(&dir)?, (vec!["part-0-0".into()], vec![]));
        assert_eq!(
            std::fs::read_to_string(dir.join("part-0-0"))?,
            "one\ntwo\nthree\n"
        );
        Ok(())
    }

    #[test]
    fn a_new_run_never_overwrites_existing_files() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("part-0-5"), "old\n")?;
        std::fs::write(dir.join(".part-0-7.inprogress"), "junk\n")?;
        // Other subtasks' counters do not matter.
        std::fs::write(dir.join("part-1-40"), "other\n")?;
        let mut op = open_op(&env(0, 2, false), FileSink::new(&dir))?;
        write(&mut op, &["new"])?;
        op.finish(&mut Output::default())?;
        op.close()?;
        assert_eq!(std::fs::read_to_string(dir.join("part-0-5"))?, "old\n");
        assert_eq!(std::fs::read_to_string(dir.join("part-0-8"))?, "new\n");
        assert_eq!(files(&dir)?.1, [".part-0-7.inprogress"]);
        Ok(())
    }

    #[test]
    fn large_transactions_roll_over_into_several_parts() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let mut op = open_op(&env(0, 1, true), FileSink::new(&dir).with_max_part_size(10))?;
        // 4 bytes per line: a part takes three lines (12 bytes >= 10), then rolls.
        let lines: Vec<String> = (100..107).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        write(&mut op, &refs)?;
        snapshot(&mut op, 1)?;
        assert_eq!(
            files(&dir)?.1,
            [
                ".part-0-0.pending",
                ".part-0-1.pending",
                ".part-0-2.pending"
            ]
        );
        op.notify_checkpoint_complete(1)?;
        assert_eq!(
            std::fs::read_to_string(dir.join("part-0-0"))?,
            "100\n101\n102\n"
        );
        assert_eq!(std::fs::read_to_string(dir.join("part-0-2"))?, "106\n");
        assert_eq!(finished_lines(&dir)?, lines);
        Ok(())
    }

    /// Writes `lines` into subtask `s` of `p`, snapshots checkpoint 1, then writes `after` and
    /// crashes; returns the snapshot.
    fn crashed_subtask(
        dir: &Path,
        s: usize,
        p: usize,
        lines: &[&str],
        after: &[&str],
    ) -> Result<OperatorSubtaskState, OperatorError> {
        let mut op = open_op(&env(s, p, true), FileSink::new(dir))?;
        write(&mut op, lines)?;
        let state = snapshot(&mut op, 1)?;
        write(&mut op, after)?;
        Ok(state)
    }

    #[test]
    fn scaling_in_commits_the_transactions_of_every_old_subtask() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let s0 = crashed_subtask(&dir, 0, 2, &["a0", "b0"], &["late0"])?;
        let s1 = crashed_subtask(&dir, 1, 2, &["a1"], &["late1"])?;
        assert_eq!(
            files(&dir)?.1,
            [
                ".part-0-0.pending",
                ".part-0-1.inprogress",
                ".part-1-0.pending",
                ".part-1-1.inprogress"
            ]
        );
        // One new subtask gets both old subtasks' items.
        let mut op = open_op(&restored_env(0, 1, 1, &[s0, s1]), FileSink::new(&dir))?;
        assert_eq!(
            files(&dir)?,
            (vec!["part-0-0".into(), "part-1-0".into()], vec![])
        );
        assert_eq!(finished_lines(&dir)?, ["a0", "a1", "b0"]);
        write(&mut op, &["c"])?;
        op.snapshot_state(&CheckpointBarrier {
            id: 2,
            timestamp: 0,
            kind: SnapshotKind::Checkpoint,
            savepoint_dir: None,
            final_checkpoint: false,
        })?;
        op.notify_checkpoint_complete(2)?;
        assert_eq!(finished_lines(&dir)?, ["a0", "a1", "b0", "c"]);
        Ok(())
    }

    #[test]
    fn recovery_never_deletes_files_of_a_running_subtask() -> TestResult {
        // Three old subtasks, two new ones: new subtask 0 gets the items of old 0 and 1, new
        // subtask 1 the item of old 2, and writes `part-1-*` names itself.
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let old: Vec<_> = (0..3)
            .map(|s| crashed_subtask(&dir, s, 3, &["x"], &["late"]))
            .collect::<Result<_, _>>()?;
        let mut new1 = open_op(&restored_env(1, 2, 1, &old), FileSink::new(&dir))?;
        write(&mut new1, &["fresh"])?;
        let fresh = files(&dir)?
            .1
            .into_iter()
            .filter(|n| n.starts_with(".part-1-") && n.ends_with(".inprogress"))
            .collect::<Vec<_>>();
        assert_eq!(fresh, [".part-1-1.inprogress", ".part-1-2.inprogress"]);

        let _new0 = open_op(&restored_env(0, 2, 1, &old), FileSink::new(&dir))?;
        assert_eq!(finished_lines(&dir)?, ["x", "x", "x"]);
        // Old subtask 0's leftover is gone (its owner restored it), old subtask 1's leftover
        // stays hidden: subtask 1 of this run could have written it.
        let (_, hidden) = files(&dir)?;
        assert_eq!(hidden, [".part-1-1.inprogress", ".part-1-2.inprogress"]);
        snapshot(&mut new1, 2)?;
        new1.notify_checkpoint_complete(2)?;
        assert_eq!(finished_lines(&dir)?, ["fresh", "x", "x", "x"]);
        Ok(())
    }
}
