//! The task: one OS thread per subtask running a mailbox loop.
//!
//! Every kind of task runs the same loop (`run_mailbox_loop`, Flink's `StreamTask` with its
//! mailbox) over its input processor (Flink's `StreamInputProcessor`): a source reader
//! ([`SourceStreamTask`]), one input gate ([`OneInputStreamTask`]) or two
//! ([`TwoInputStreamTask`]). Each turn checks for cancellation, takes checkpoint mail (triggers
//! at sources, completion and abort notifications), fires due processing-time timers, then
//! takes one element of input (a source poll or a buffer/event from an input gate, skipping
//! channels blocked by barrier alignment) and pushes it through the chain. With nothing to do
//! it flushes partial output buffers (unless the buffer timeout is -1) and sleeps on the task's
//! [`TaskWaker`] until input arrives or the next timer is due. Busy tasks flush every
//! `buffer_timeout` ms, so batches stay large under load and latency stays bounded when idle.
//!
//! Checkpoints (DESIGN §6) are the `SubtaskCheckpointCoordinator`'s (`task/checkpointing.rs`):
//! on barrier n (at a source: on the trigger) the task forwards the barrier, snapshots its
//! chain synchronously and hands the snapshot to the upload pool, which stores it and
//! acknowledges to the coordinator. With checkpointing on, a task whose input ended stays alive until the final
//! checkpoint completed, so a transactional sink commits its last records (Flink's FLIP-147):
//! sources send end of data, then the final barrier, and end their partitions only after that
//! checkpoint completed.

mod checkpointing;

use crate::chain::guarded;
use crate::channel::{ChannelElement, InputGate};
use crate::checkpoint::{
    BarrierHandler, CheckpointBarrier, CheckpointId, CheckpointMail, ListStateSnapshot,
    OperatorStateMode, OperatorSubtaskState, SnapshotKind,
};
use crate::environment::TaskEnv;
use crate::error::{OperatorError, OperatorLabel, TaskError};
use crate::operators::co::{TwoInputDriver, TwoInputOperator};
use crate::output::Input;
use crate::output::{ErasedOutput, Output};
use crate::source::{InputStatus, Rescale, SourceContext, SourceReader, SOURCE_POSITION_STATE};
use crate::valve::{StatusWatermarkValve, ValveOutput};
use crate::waker::TaskWaker;
use checkpointing::{SnapshotTarget, SubtaskCheckpointCoordinator};
use eddy_core::{Data, OperatorId, StreamRecord, Watermark};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A runnable task body.
pub trait StreamTask: Send {
    /// Runs the task to the end of its input, or until it fails or is cancelled. The chain is
    /// closed before returning, on success and on failure.
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError>;
}

/// Longest sleep without looking at the clock and the cancel flag.
const MAX_WAIT: Duration = Duration::from_millis(100);

struct FlushPolicy {
    timeout_ms: i64,
    last_flush: Instant,
}

impl FlushPolicy {
    fn new(timeout_ms: i64) -> Self {
        FlushPolicy {
            timeout_ms,
            last_flush: Instant::now(),
        }
    }

    fn after_progress(&mut self) -> bool {
        match self.timeout_ms {
            0 => true,
            t if t > 0 && self.last_flush.elapsed() >= Duration::from_millis(t as u64) => {
                self.last_flush = Instant::now();
                true
            }
            _ => false,
        }
    }

    fn on_idle(&mut self) -> bool {
        if self.timeout_ms >= 0 {
            self.last_flush = Instant::now();
            true
        } else {
            false
        }
    }
}

fn wait_deadline(env: &TaskEnv, next_timer: Option<i64>, cap: Duration) -> Instant {
    let now = Instant::now();
    let cap = now + cap;
    match next_timer {
        Some(t) => {
            let ms = (t - env.clock.now_ms()).max(0) as u64;
            cap.min(now + Duration::from_millis(ms))
        }
        None => cap,
    }
}

fn cancelled(label: &OperatorLabel) -> TaskError {
    label.error(OperatorError::Cancelled)
}

/// What one step of a task's input processor came to (Flink's `DataInputStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProcessorStatus {
    /// Input was processed; more may be there.
    MoreAvailable,
    /// Nothing to read now: flush what is buffered and sleep until input or a timer is due.
    NothingAvailable,
    /// The input ended; the task takes part in checkpoints until it may end.
    EndOfInput,
    /// The task ends now: its partitions end.
    Finished,
}

/// The input side of a task with the head of its chain (Flink's `StreamInputProcessor`): a
/// source reader, one input gate, or two. [`run_mailbox_loop`] drives each the same way.
trait StreamInputProcessor {
    /// The head operator's label, for errors.
    fn label(&self) -> &OperatorLabel;
    /// Restores and opens the chain (a source: its reader too).
    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError>;
    /// After the task reported RUNNING: `Finished` when it has no input at all.
    fn start(&mut self) -> Result<ProcessorStatus, TaskError> {
        Ok(ProcessorStatus::MoreAvailable)
    }
    /// Handles checkpoint mail (a source takes triggers; others decline them). `Finished`
    /// when the task ends now (the final checkpoint of a source completed).
    fn on_mail(
        &mut self,
        mail: CheckpointMail,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError>;
    /// Whether input is still read; once not, the task waits for checkpoint mail.
    fn reading(&self) -> bool;
    /// Once not reading: whether the task may end now.
    fn may_end(&self, cps: &SubtaskCheckpointCoordinator) -> bool;
    /// Whether processing-time timers still fire (not once the input's data ended).
    fn timers_active(&self) -> bool;
    /// The chain's next processing-time timer.
    fn next_processing_time(&self) -> Option<i64>;
    /// Fires the chain's processing-time timers due at `now`.
    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError>;
    /// Takes one element of input (a source poll, a buffer or event of a gate) through the
    /// chain.
    fn process_input(
        &mut self,
        env: &TaskEnv,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError>;
    /// Flushes partial output buffers.
    fn flush(&mut self) -> Result<(), TaskError>;
    /// Longest sleep when no input is available.
    fn idle_wait(&self) -> Duration {
        MAX_WAIT
    }
    /// Ends the task's output partitions.
    fn end_partition(&mut self) -> Result<(), TaskError>;
}

/// The task's mailbox loop, the same for every kind of task (Flink's `StreamTask` with its
/// `MailboxProcessor`). Each turn: cancellation, checkpoint mail, due processing-time timers,
/// one step of input; with nothing to read it flushes and sleeps on the waker.
fn run_mailbox_loop<P: StreamInputProcessor>(
    p: &mut P,
    env: &TaskEnv,
    waker: &Arc<TaskWaker>,
) -> Result<(), TaskError> {
    p.open(env)?;
    env.report_running();
    let mut cps = SubtaskCheckpointCoordinator::new(env);
    if p.start()? == ProcessorStatus::Finished {
        return p.end_partition();
    }
    let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
    loop {
        if env.cancel.is_cancelled() {
            return Err(cancelled(p.label()));
        }
        while let Some(mail) = cps.mail() {
            if p.on_mail(mail, &mut cps)? == ProcessorStatus::Finished {
                return p.end_partition();
            }
        }
        if !p.reading() {
            // Wait for the notifications of checkpoints this task took part in: the last
            // one commits what a sink wrote last.
            if p.may_end(&cps) {
                return p.end_partition();
            }
            waker.wait(Some(Instant::now() + MAX_WAIT));
            continue;
        }
        if p.timers_active() {
            if let Some(t) = p.next_processing_time() {
                let now = env.clock.now_ms();
                if t <= now {
                    p.on_processing_time(now)?;
                }
            }
        }
        match p.process_input(env, &mut cps)? {
            ProcessorStatus::MoreAvailable => {
                if flush.after_progress() {
                    p.flush()?;
                }
            }
            ProcessorStatus::NothingAvailable => {
                if flush.on_idle() {
                    p.flush()?;
                }
                // Timers no longer fire once the input's data ended: not a reason to wake.
                let next = p
                    .timers_active()
                    .then(|| p.next_processing_time())
                    .flatten();
                waker.wait(Some(wait_deadline(env, next, p.idle_wait())));
            }
            ProcessorStatus::EndOfInput => {}
            ProcessorStatus::Finished => return p.end_partition(),
        }
    }
}

/// Where a source task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourcePhase {
    /// Reading.
    Running,
    /// Input ended (or drained): taking part in checkpoints until the final one's trigger.
    Finished,
    /// The final barrier (or a stop-with-savepoint barrier) went out: waiting for that
    /// checkpoint to complete. `resume` says whether an abort resumes reading.
    AwaitingEnd { id: CheckpointId, resume: bool },
}

/// The source's part of a checkpoint: its reader's position, redistributed with its split
/// list state.
struct SourceHead<'a, R: SourceReader> {
    reader: &'a mut R,
    out: &'a mut Output<R::Out>,
    label: &'a OperatorLabel,
}

impl<R: SourceReader> SnapshotTarget for SourceHead<'_, R> {
    fn emit_barrier(&mut self, b: &CheckpointBarrier) -> Result<(), TaskError> {
        ErasedOutput::emit_barrier(self.out, b)
    }
    fn snapshot_state(
        &mut self,
        b: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        ErasedOutput::snapshot_state(self.out, b, out)
    }
    fn notify(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError> {
        if complete {
            let reader = &mut *self.reader;
            guarded(self.label, || reader.notify_checkpoint_complete(id))?;
        }
        ErasedOutput::notify_checkpoint(self.out, id, complete)
    }
}

/// A task whose head is a source.
pub struct SourceStreamTask<R: SourceReader> {
    reader: R,
    out: Output<R::Out>,
    label: OperatorLabel,
    batch_size: usize,
    id: OperatorId,
}

impl<R: SourceReader> SourceStreamTask<R> {
    /// A source task reading with `reader` into `out`; `id` is the source operator's id.
    pub fn new(
        reader: R,
        mut out: Output<R::Out>,
        label: OperatorLabel,
        batch_size: usize,
        id: OperatorId,
    ) -> Self {
        out.set_label(label.clone());
        SourceStreamTask {
            reader,
            out,
            label,
            batch_size: batch_size.max(1),
            id,
        }
    }
}

/// A source task's input processor: its reader and where it is in its life.
struct SourceInput<'a, R: SourceReader> {
    task: &'a mut SourceStreamTask<R>,
    batch: Vec<StreamRecord<R::Out>>,
    phase: SourcePhase,
}

impl<R: SourceReader> SourceInput<'_, R> {
    fn head(&mut self) -> SourceHead<'_, R> {
        SourceHead {
            reader: &mut self.task.reader,
            out: &mut self.task.out,
            label: &self.task.label,
        }
    }

    fn restore(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        let t = &mut *self.task;
        let Some(r) = env.restored_state(t.id) else {
            return Ok(());
        };
        let splits = r
            .operator
            .get(SOURCE_POSITION_STATE)
            .map(|(_, items)| items.clone())
            .unwrap_or_default();
        let rescale = (r.old_parallelism != env.parallelism).then_some(Rescale {
            old_parallelism: r.old_parallelism,
            parallelism: env.parallelism,
        });
        let reader = &mut t.reader;
        guarded(&t.label, || reader.restore_splits(splits, rescale))
    }

    fn snapshot_head(&mut self) -> Result<(OperatorId, OperatorSubtaskState), TaskError> {
        let t = &mut *self.task;
        let reader = &mut t.reader;
        let splits = guarded(&t.label, || reader.snapshot_splits())?;
        Ok((
            t.id,
            OperatorSubtaskState {
                operator: vec![ListStateSnapshot {
                    name: SOURCE_POSITION_STATE.into(),
                    mode: OperatorStateMode::Split,
                    items: splits,
                }],
                ..Default::default()
            },
        ))
    }

    fn trigger(
        &mut self,
        cps: &mut SubtaskCheckpointCoordinator,
        b: CheckpointBarrier,
    ) -> Result<(), TaskError> {
        let phase = self.phase;
        if let SourcePhase::AwaitingEnd { .. } = phase {
            cps.decline(b.id, crate::checkpoint::DECLINE_TASK_FINISHING.into());
            return Ok(());
        }
        let mut next = phase;
        match (phase, b.kind) {
            (SourcePhase::Running, SnapshotKind::SavepointTerminate { drain }) => {
                if drain {
                    // Flush event time and end the input before the barrier, so the savepoint
                    // holds the state after every window fired.
                    self.task.out.emit_watermark(Watermark::MAX)?;
                    ErasedOutput::finish(&mut self.task.out)?;
                }
                next = SourcePhase::AwaitingEnd {
                    id: b.id,
                    resume: !drain,
                };
            }
            // Until every source finished, a finished source's checkpoints hold its final
            // position; it waits for the job's final checkpoint, as the tasks downstream do,
            // or for a stop-with-savepoint that ends the job.
            (SourcePhase::Finished, kind)
                if b.final_checkpoint
                    || matches!(kind, SnapshotKind::SavepointTerminate { .. }) =>
            {
                next = SourcePhase::AwaitingEnd {
                    id: b.id,
                    resume: false,
                };
            }
            _ => {}
        }
        let head = self.snapshot_head()?;
        cps.take(b, Duration::ZERO, &mut self.head(), Some(head))?;
        self.phase = next;
        Ok(())
    }
}

impl<R: SourceReader> StreamInputProcessor for SourceInput<'_, R> {
    fn label(&self) -> &OperatorLabel {
        &self.task.label
    }

    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        self.restore(env)?;
        self.task.out.open(env)?;
        let ctx = SourceContext {
            subtask: env.subtask,
            parallelism: env.parallelism,
        };
        let t = &mut *self.task;
        let reader = &mut t.reader;
        guarded(&t.label, || reader.open(&ctx))
    }

    fn on_mail(
        &mut self,
        mail: CheckpointMail,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError> {
        let is_abort = matches!(mail, CheckpointMail::Abort(_));
        let mail_id = match &mail {
            CheckpointMail::Complete(id) | CheckpointMail::Abort(id) => *id,
            CheckpointMail::Trigger(b) => b.id,
        };
        if let Some(b) = cps.on_mail(mail, &mut self.head(), None)? {
            self.trigger(cps, b)?;
            return Ok(ProcessorStatus::MoreAvailable);
        }
        if let SourcePhase::AwaitingEnd { id, resume } = self.phase {
            if !is_abort && mail_id >= id {
                // The final checkpoint (or stop-with-savepoint) completed.
                return Ok(ProcessorStatus::Finished);
            }
            if is_abort && mail_id == id {
                self.phase = if resume {
                    SourcePhase::Running
                } else {
                    SourcePhase::Finished
                };
            }
        }
        Ok(ProcessorStatus::MoreAvailable)
    }

    fn reading(&self) -> bool {
        self.phase == SourcePhase::Running
    }

    fn may_end(&self, _cps: &SubtaskCheckpointCoordinator) -> bool {
        // A finished source ends only when its final checkpoint completed (`on_mail`).
        false
    }

    fn timers_active(&self) -> bool {
        true
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.task.out.next_processing_time()
    }

    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError> {
        self.task.out.on_processing_time(now)
    }

    fn process_input(
        &mut self,
        _env: &TaskEnv,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError> {
        let t = &mut *self.task;
        let (reader, max) = (&mut t.reader, t.batch_size);
        let batch = &mut self.batch;
        let status = guarded(&t.label, || reader.poll_next(batch, max))?;
        if !self.batch.is_empty() {
            t.out.push_batch(&mut self.batch);
            t.out.flush_buffered()?;
        }
        Ok(match status {
            InputStatus::MoreAvailable => ProcessorStatus::MoreAvailable,
            InputStatus::NothingAvailable => ProcessorStatus::NothingAvailable,
            InputStatus::EndOfInput => {
                // A bounded input ends event time: every event-time timer downstream fires.
                t.out.emit_watermark(Watermark::MAX)?;
                ErasedOutput::finish(&mut t.out)?;
                if cps.source_finished() {
                    self.phase = SourcePhase::Finished;
                    ProcessorStatus::EndOfInput
                } else {
                    ProcessorStatus::Finished
                }
            }
        })
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        ErasedOutput::flush(&mut self.task.out)
    }

    fn idle_wait(&self) -> Duration {
        // Sources are polled: an idle one looks again soon.
        Duration::from_millis(10)
    }

    fn end_partition(&mut self) -> Result<(), TaskError> {
        ErasedOutput::end_partition(&mut self.task.out)
    }
}

impl<R: SourceReader> StreamTask for SourceStreamTask<R> {
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        let batch_size = self.batch_size;
        let res = run_mailbox_loop(
            &mut SourceInput {
                task: self,
                batch: Vec::with_capacity(batch_size),
                phase: SourcePhase::Running,
            },
            env,
            waker,
        );
        let reader = &mut self.reader;
        if let Err(e) = guarded(&self.label, || reader.close()) {
            tracing::warn!("closing source failed: {e}");
        }
        ErasedOutput::close(&mut self.out);
        res
    }
}

/// End-of-data and end-of-partition bookkeeping over all channels of a task.
struct InputEnds {
    data_ended: Vec<bool>,
    num_data_ended: usize,
    partitions_ended: Vec<bool>,
    num_partitions_ended: usize,
    finished: bool,
}

impl InputEnds {
    fn new(n: usize) -> Self {
        InputEnds {
            data_ended: vec![false; n],
            num_data_ended: 0,
            partitions_ended: vec![false; n],
            num_partitions_ended: 0,
            finished: false,
        }
    }

    /// End of data on `ch`; true when every channel's data ended now (finish the chain).
    fn on_end_of_data(&mut self, ch: usize) -> bool {
        if !self.data_ended[ch] {
            self.data_ended[ch] = true;
            self.num_data_ended += 1;
        }
        if self.num_data_ended == self.data_ended.len() && !self.finished {
            self.finished = true;
            return true;
        }
        false
    }

    fn on_end_of_partition(&mut self, ch: usize) {
        if !self.partitions_ended[ch] {
            self.partitions_ended[ch] = true;
            self.num_partitions_ended += 1;
        }
    }

    fn all_partitions_ended(&self) -> bool {
        self.num_partitions_ended == self.partitions_ended.len()
    }
}

/// What a task reading input gates keeps besides its gates: barrier alignment over all its
/// channels and where their inputs ended. Shared by the one- and two-input processors.
struct GateState {
    handler: BarrierHandler,
    ends: InputEnds,
}

impl GateState {
    fn new(env: &TaskEnv, channels: usize) -> Self {
        let mode = SubtaskCheckpointCoordinator::new(env).mode();
        GateState {
            handler: BarrierHandler::new(mode, channels),
            ends: InputEnds::new(channels),
        }
    }

    /// Completion and abort mail go to the chain; only sources can be triggered.
    fn on_mail(
        &mut self,
        mail: CheckpointMail,
        cps: &mut SubtaskCheckpointCoordinator,
        chain: &mut dyn SnapshotTarget,
    ) -> Result<ProcessorStatus, TaskError> {
        if let Some(b) = cps.on_mail(mail, chain, Some(&mut self.handler))? {
            cps.decline(b.id, "only sources can be triggered".into());
        }
        Ok(ProcessorStatus::MoreAvailable)
    }

    /// Reading until every channel's partition ended.
    fn reading(&self) -> bool {
        !self.ends.all_partitions_ended()
    }

    /// Timers fire until every channel's data ended.
    fn timers_active(&self) -> bool {
        !self.ends.finished
    }
}

/// A task whose head has one input (possibly the union of several edges).
pub struct OneInputStreamTask<T: Data> {
    gate: InputGate<T>,
    chain: Box<dyn Input<T>>,
    label: OperatorLabel,
}

impl<T: Data> OneInputStreamTask<T> {
    /// A task reading `gate` into `chain`.
    pub fn new(gate: InputGate<T>, chain: Box<dyn Input<T>>, label: OperatorLabel) -> Self {
        OneInputStreamTask { gate, chain, label }
    }
}

/// A one-input task's input processor (Flink's `StreamOneInputProcessor`): its gate, the
/// watermark valve over its channels, barrier alignment and input ends.
struct OneInput<'a, T: Data> {
    task: &'a mut OneInputStreamTask<T>,
    valve: StatusWatermarkValve,
    gates: GateState,
}

impl<T: Data> OneInput<'_, T> {
    fn forward(&mut self, env: &TaskEnv, out: ValveOutput) -> Result<(), TaskError> {
        if let Some(w) = out.watermark {
            self.task.chain.process_watermark(w)?;
            env.watermarks.set_input_watermark(w.timestamp);
        }
        if let Some(s) = out.status {
            self.task.chain.process_watermark_status(s)?;
        }
        Ok(())
    }
}

impl<T: Data> StreamInputProcessor for OneInput<'_, T> {
    fn label(&self) -> &OperatorLabel {
        &self.task.label
    }

    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        self.task.chain.open(env)
    }

    fn start(&mut self) -> Result<ProcessorStatus, TaskError> {
        if self.task.gate.num_channels() == 0 {
            self.task.chain.finish()?;
            return Ok(ProcessorStatus::Finished);
        }
        Ok(ProcessorStatus::MoreAvailable)
    }

    fn on_mail(
        &mut self,
        mail: CheckpointMail,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError> {
        self.gates.on_mail(mail, cps, &mut self.task.chain)
    }

    fn reading(&self) -> bool {
        self.gates.reading()
    }

    fn may_end(&self, cps: &SubtaskCheckpointCoordinator) -> bool {
        cps.all_notified()
    }

    fn timers_active(&self) -> bool {
        self.gates.timers_active()
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.task.chain.next_processing_time()
    }

    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError> {
        self.task.chain.on_processing_time(now)
    }

    #[inline]
    fn process_input(
        &mut self,
        env: &TaskEnv,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError> {
        match self.task.gate.poll(self.gates.handler.blocked()) {
            Some((_, ChannelElement::Buffer(mut b))) => {
                self.task.chain.process_batch(&mut b)?;
            }
            Some((ch, ChannelElement::Watermark(w))) => {
                let out = self.valve.input_watermark(ch, w);
                self.forward(env, out)?;
            }
            Some((ch, ChannelElement::WatermarkStatus(s))) => {
                let out = self.valve.input_watermark_status(ch, s);
                self.forward(env, out)?;
            }
            Some((ch, ChannelElement::Barrier(b))) => {
                let o = self.gates.handler.on_barrier(ch, b);
                cps.on_outcome(o, &mut self.task.chain)?;
            }
            Some((ch, ChannelElement::EndOfData)) => {
                if self.gates.ends.on_end_of_data(ch) {
                    self.task.chain.finish()?;
                }
            }
            Some((_, ChannelElement::Failure(reason))) => {
                return Err(self.task.label.error(OperatorError::Network(reason)));
            }
            Some((ch, ChannelElement::EndOfPartition)) => {
                let out = self.valve.input_end(ch);
                self.forward(env, out)?;
                self.gates.ends.on_end_of_partition(ch);
                let o = self.gates.handler.on_channel_ended(ch);
                cps.on_outcome(o, &mut self.task.chain)?;
            }
            None => return Ok(ProcessorStatus::NothingAvailable),
        }
        Ok(ProcessorStatus::MoreAvailable)
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        self.task.chain.flush()
    }

    fn end_partition(&mut self) -> Result<(), TaskError> {
        self.task.chain.end_partition()
    }
}

impl<T: Data> StreamTask for OneInputStreamTask<T> {
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        let n = self.gate.num_channels();
        let res = run_mailbox_loop(
            &mut OneInput {
                task: self,
                valve: StatusWatermarkValve::new(n),
                gates: GateState::new(env, n),
            },
            env,
            waker,
        );
        self.chain.close();
        res
    }
}

/// A task whose head is a two-input operator.
pub struct TwoInputStreamTask<Op: TwoInputOperator> {
    gate1: InputGate<Op::In1>,
    gate2: InputGate<Op::In2>,
    driver: TwoInputDriver<Op>,
    label: OperatorLabel,
}

impl<Op: TwoInputOperator> TwoInputStreamTask<Op> {
    /// A task reading both gates into the driver.
    pub fn new(
        gate1: InputGate<Op::In1>,
        gate2: InputGate<Op::In2>,
        driver: TwoInputDriver<Op>,
        label: OperatorLabel,
    ) -> Self {
        TwoInputStreamTask {
            gate1,
            gate2,
            driver,
            label,
        }
    }
}

/// A two-input task's input processor (Flink's `StreamMultipleInputProcessor` for two): both
/// gates, polled alternately so neither starves, with one valve each and one barrier
/// alignment over the channels of both (input 2's channels numbered after input 1's).
struct TwoInput<'a, Op: TwoInputOperator> {
    task: &'a mut TwoInputStreamTask<Op>,
    valves: [StatusWatermarkValve; 2],
    gates: GateState,
    n1: usize,
    first: usize,
}

impl<Op: TwoInputOperator> TwoInput<'_, Op> {
    fn event<X>(
        &mut self,
        env: &TaskEnv,
        cps: &mut SubtaskCheckpointCoordinator,
        input: usize,
        ch: usize,
        e: ChannelElement<X>,
    ) -> Result<(), TaskError> {
        let offset = if input == 0 { 0 } else { self.n1 };
        let driver = &mut self.task.driver;
        let out = match e {
            ChannelElement::Watermark(w) => self.valves[input].input_watermark(ch, w),
            ChannelElement::WatermarkStatus(s) => self.valves[input].input_watermark_status(ch, s),
            ChannelElement::Barrier(b) => {
                let o = self.gates.handler.on_barrier(offset + ch, b);
                return cps.on_outcome(o, driver);
            }
            ChannelElement::EndOfData => {
                if self.gates.ends.on_end_of_data(offset + ch) {
                    driver.finish()?;
                }
                return Ok(());
            }
            ChannelElement::EndOfPartition => {
                let mut out = self.valves[input].input_end(ch);
                if self.valves[input].all_finished() {
                    // An ended input must not hold back the other one.
                    out.watermark = Some(Watermark::MAX);
                }
                self.gates.ends.on_end_of_partition(offset + ch);
                let o = self.gates.handler.on_channel_ended(offset + ch);
                cps.on_outcome(o, driver)?;
                out
            }
            ChannelElement::Failure(reason) => {
                return Err(self.task.label.error(OperatorError::Network(reason)));
            }
            ChannelElement::Buffer(_) => ValveOutput::default(),
        };
        if let Some(w) = out.watermark {
            driver.process_watermark(input, w)?;
        }
        if let Some(s) = out.status {
            driver.process_watermark_status(input, s)?;
        }
        env.watermarks
            .set_input_watermark(driver.combined_watermark());
        Ok(())
    }
}

impl<Op: TwoInputOperator> StreamInputProcessor for TwoInput<'_, Op> {
    fn label(&self) -> &OperatorLabel {
        &self.task.label
    }

    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        self.task.driver.open(env)
    }

    fn start(&mut self) -> Result<ProcessorStatus, TaskError> {
        // An input with no channels has ended before it began.
        for (i, v) in self.valves.iter().enumerate() {
            if v.all_finished() {
                self.task.driver.process_watermark(i, Watermark::MAX)?;
            }
        }
        if self.gates.ends.partitions_ended.is_empty() {
            self.task.driver.finish()?;
            return Ok(ProcessorStatus::Finished);
        }
        Ok(ProcessorStatus::MoreAvailable)
    }

    fn on_mail(
        &mut self,
        mail: CheckpointMail,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError> {
        self.gates.on_mail(mail, cps, &mut self.task.driver)
    }

    fn reading(&self) -> bool {
        self.gates.reading()
    }

    fn may_end(&self, cps: &SubtaskCheckpointCoordinator) -> bool {
        cps.all_notified()
    }

    fn timers_active(&self) -> bool {
        self.gates.timers_active()
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.task.driver.next_processing_time()
    }

    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError> {
        self.task.driver.on_processing_time(now)
    }

    fn process_input(
        &mut self,
        env: &TaskEnv,
        cps: &mut SubtaskCheckpointCoordinator,
    ) -> Result<ProcessorStatus, TaskError> {
        let n1 = self.n1;
        let mut progressed = false;
        for k in 0..2 {
            let input = (self.first + k) % 2;
            let blocked = self.gates.handler.blocked();
            let t = &mut *self.task;
            if input == 0 {
                match t.gate1.poll(blocked.map(|b| &b[..n1])) {
                    Some((_, ChannelElement::Buffer(mut b))) => t.driver.process_batch1(&mut b)?,
                    Some((ch, e)) => self.event(env, cps, 0, ch, e)?,
                    None => continue,
                }
            } else {
                match t.gate2.poll(blocked.map(|b| &b[n1..])) {
                    Some((_, ChannelElement::Buffer(mut b))) => t.driver.process_batch2(&mut b)?,
                    Some((ch, e)) => self.event(env, cps, 1, ch, e)?,
                    None => continue,
                }
            }
            progressed = true;
            break;
        }
        self.first = (self.first + 1) % 2;
        Ok(if progressed {
            ProcessorStatus::MoreAvailable
        } else {
            ProcessorStatus::NothingAvailable
        })
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        self.task.driver.flush()
    }

    fn end_partition(&mut self) -> Result<(), TaskError> {
        self.task.driver.end_partition()
    }
}

impl<Op: TwoInputOperator> StreamTask for TwoInputStreamTask<Op> {
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        let n1 = self.gate1.num_channels();
        let n2 = self.gate2.num_channels();
        let res = run_mailbox_loop(
            &mut TwoInput {
                task: self,
                valves: [StatusWatermarkValve::new(n1), StatusWatermarkValve::new(n2)],
                gates: GateState::new(env, n1 + n2),
                n1,
                first: 0,
            },
            env,
            waker,
        );
        self.driver.close();
        res
    }
}
