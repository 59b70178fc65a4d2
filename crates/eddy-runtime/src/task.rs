//! The task: one OS thread per subtask running a mailbox loop.
//!
//! Each turn of the loop checks for cancellation, takes checkpoint mail (triggers at sources,
//! completion and abort notifications), fires due processing-time timers, then takes one
//! element of input (a source poll or a buffer/event from an input gate, skipping channels
//! blocked by barrier alignment) and pushes it through the chain. With nothing to do it flushes partial output buffers (unless the buffer
//! timeout is -1) and sleeps on the task's [`TaskWaker`] until input arrives or the next timer is
//! due. Busy tasks flush every `buffer_timeout` ms, so batches stay large under load and
//! latency stays bounded when idle.
//!
//! Checkpoints (DESIGN §6): on barrier n (at a source: on the trigger) the task forwards the
//! barrier, snapshots its chain synchronously and hands the snapshot to the upload pool, which
//! stores it and acknowledges to the coordinator. With checkpointing on, a task whose input
//! ended stays alive until the final checkpoint completed, so a transactional sink commits its
//! last records (Flink's FLIP-147): sources send end of data, then the final barrier, and end
//! their partitions only after that checkpoint completed.

use crate::chain::{guarded, Input, TaskEnv};
use crate::channel::{ChannelElement, InputGate, TaskWaker};
use crate::checkpoint::subtask::{SnapshotTarget, SubtaskCheckpointCoordinator};
use crate::checkpoint::{
    BarrierHandler, CheckpointBarrier, CheckpointId, CheckpointMail, ListStateSnapshot,
    OperatorStateMode, OperatorSubtaskState, SnapshotKind,
};
use crate::error::{OperatorError, OperatorLabel, TaskError};
use crate::operators::co::{TwoInputDriver, TwoInputOperator};
use crate::output::{ErasedOutput, Output};
use crate::source::{InputStatus, Rescale, SourceContext, SourceReader, SOURCE_POSITION_STATE};
use crate::valve::{StatusWatermarkValve, ValveOutput};
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

    fn restore(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        let Some(r) = env.restored_state(self.id) else {
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
        let reader = &mut self.reader;
        guarded(&self.label, || reader.restore_splits(splits, rescale))
    }

    fn snapshot_head(&mut self) -> Result<(OperatorId, OperatorSubtaskState), TaskError> {
        let reader = &mut self.reader;
        let splits = guarded(&self.label, || reader.snapshot_splits())?;
        Ok((
            self.id,
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
        phase: SourcePhase,
        b: CheckpointBarrier,
    ) -> Result<SourcePhase, TaskError> {
        if let SourcePhase::AwaitingEnd { .. } = phase {
            cps.decline(b.id, crate::checkpoint::DECLINE_TASK_FINISHING.into());
            return Ok(phase);
        }
        let mut next = phase;
        match (phase, b.kind) {
            (SourcePhase::Running, SnapshotKind::SavepointTerminate { drain }) => {
                if drain {
                    // Flush event time and end the input before the barrier, so the savepoint
                    // holds the state after every window fired.
                    self.out.emit_watermark(Watermark::MAX)?;
                    ErasedOutput::finish(&mut self.out)?;
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
        let mut t = SourceHead {
            reader: &mut self.reader,
            out: &mut self.out,
            label: &self.label,
        };
        cps.take(b, Duration::ZERO, &mut t, Some(head))?;
        Ok(next)
    }

    fn run_loop(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        self.restore(env)?;
        self.out.open(env)?;
        let ctx = SourceContext {
            subtask: env.subtask,
            parallelism: env.parallelism,
        };
        let reader = &mut self.reader;
        guarded(&self.label, || reader.open(&ctx))?;
        env.report_running();
        let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
        let mut batch: Vec<StreamRecord<R::Out>> = Vec::with_capacity(self.batch_size);
        let mut cps = SubtaskCheckpointCoordinator::new(env);
        let mut phase = SourcePhase::Running;
        loop {
            if env.cancel.is_cancelled() {
                return Err(cancelled(&self.label));
            }
            while let Some(mail) = cps.mail() {
                let mut t = SourceHead {
                    reader: &mut self.reader,
                    out: &mut self.out,
                    label: &self.label,
                };
                let is_abort = matches!(mail, CheckpointMail::Abort(_));
                let mail_id = match &mail {
                    CheckpointMail::Complete(id) | CheckpointMail::Abort(id) => *id,
                    CheckpointMail::Trigger(b) => b.id,
                };
                if let Some(b) = cps.on_mail(mail, &mut t, None)? {
                    phase = self.trigger(&mut cps, phase, b)?;
                    continue;
                }
                if let SourcePhase::AwaitingEnd { id, resume } = phase {
                    if !is_abort && mail_id >= id {
                        // The final checkpoint (or stop-with-savepoint) completed.
                        ErasedOutput::end_partition(&mut self.out)?;
                        return Ok(());
                    }
                    if is_abort && mail_id == id {
                        phase = if resume {
                            SourcePhase::Running
                        } else {
                            SourcePhase::Finished
                        };
                    }
                }
            }
            if phase != SourcePhase::Running {
                waker.wait(Some(Instant::now() + MAX_WAIT));
                continue;
            }
            if let Some(t) = self.out.next_processing_time() {
                let now = env.clock.now_ms();
                if t <= now {
                    self.out.on_processing_time(now)?;
                }
            }
            let (reader, max) = (&mut self.reader, self.batch_size);
            let status = guarded(&self.label, || reader.poll_next(&mut batch, max))?;
            if !batch.is_empty() {
                self.out.push_batch(&mut batch);
                self.out.flush_buffered()?;
            }
            match status {
                InputStatus::MoreAvailable => {
                    if flush.after_progress() {
                        ErasedOutput::flush(&mut self.out)?;
                    }
                }
                InputStatus::NothingAvailable => {
                    if flush.on_idle() {
                        ErasedOutput::flush(&mut self.out)?;
                    }
                    let d = wait_deadline(
                        env,
                        self.out.next_processing_time(),
                        Duration::from_millis(10),
                    );
                    waker.wait(Some(d));
                }
                InputStatus::EndOfInput => {
                    // A bounded input ends event time: every event-time timer downstream fires.
                    self.out.emit_watermark(Watermark::MAX)?;
                    ErasedOutput::finish(&mut self.out)?;
                    if cps.source_finished() {
                        phase = SourcePhase::Finished;
                    } else {
                        ErasedOutput::end_partition(&mut self.out)?;
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl<R: SourceReader> StreamTask for SourceStreamTask<R> {
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        let res = self.run_loop(env, waker);
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

    fn run_loop(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        self.chain.open(env)?;
        env.report_running();
        let n = self.gate.num_channels();
        let mut valve = StatusWatermarkValve::new(n);
        let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
        let mut cps = SubtaskCheckpointCoordinator::new(env);
        let mut handler = BarrierHandler::new(cps.mode(), n);
        let mut ends = InputEnds::new(n);
        if n == 0 {
            self.chain.finish()?;
            return self.chain.end_partition();
        }
        loop {
            if env.cancel.is_cancelled() {
                return Err(cancelled(&self.label));
            }
            while let Some(mail) = cps.mail() {
                if let Some(b) = cps.on_mail(mail, &mut self.chain, Some(&mut handler))? {
                    cps.decline(b.id, "only sources can be triggered".into());
                }
            }
            if ends.all_partitions_ended() {
                // Wait for the notifications of checkpoints this task took part in: the last
                // one commits what a sink wrote last.
                if cps.all_notified() {
                    return self.chain.end_partition();
                }
                waker.wait(Some(Instant::now() + MAX_WAIT));
                continue;
            }
            if !ends.finished {
                if let Some(t) = self.chain.next_processing_time() {
                    let now = env.clock.now_ms();
                    if t <= now {
                        self.chain.on_processing_time(now)?;
                    }
                }
            }
            match self.gate.poll(handler.blocked()) {
                Some((_, ChannelElement::Buffer(mut b))) => {
                    self.chain.process_batch(&mut b)?;
                    if flush.after_progress() {
                        self.chain.flush()?;
                    }
                }
                Some((ch, ChannelElement::Watermark(w))) => {
                    let out = valve.input_watermark(ch, w);
                    self.forward(env, out)?;
                }
                Some((ch, ChannelElement::WatermarkStatus(s))) => {
                    let out = valve.input_watermark_status(ch, s);
                    self.forward(env, out)?;
                }
                Some((ch, ChannelElement::Barrier(b))) => {
                    let o = handler.on_barrier(ch, b);
                    cps.on_outcome(o, &mut self.chain)?;
                }
                Some((ch, ChannelElement::EndOfData)) => {
                    if ends.on_end_of_data(ch) {
                        self.chain.finish()?;
                    }
                }
                Some((_, ChannelElement::Failure(reason))) => {
                    return Err(self.label.error(OperatorError::Network(reason)));
                }
                Some((ch, ChannelElement::EndOfPartition)) => {
                    let out = valve.input_end(ch);
                    self.forward(env, out)?;
                    ends.on_end_of_partition(ch);
                    let o = handler.on_channel_ended(ch);
                    cps.on_outcome(o, &mut self.chain)?;
                }
                None => {
                    if flush.on_idle() {
                        self.chain.flush()?;
                    }
                    // Timers no longer fire once the input ended: not a reason to wake.
                    let next = (!ends.finished)
                        .then(|| self.chain.next_processing_time())
                        .flatten();
                    let d = wait_deadline(env, next, MAX_WAIT);
                    waker.wait(Some(d));
                }
            }
        }
    }
}

impl<T: Data> OneInputStreamTask<T> {
    fn forward(&mut self, env: &TaskEnv, out: ValveOutput) -> Result<(), TaskError> {
        if let Some(w) = out.watermark {
            self.chain.process_watermark(w)?;
            env.watermarks.set_input_watermark(w.timestamp);
        }
        if let Some(s) = out.status {
            self.chain.process_watermark_status(s)?;
        }
        Ok(())
    }
}

impl<T: Data> StreamTask for OneInputStreamTask<T> {
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        let res = self.run_loop(env, waker);
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

    fn run_loop(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        self.driver.open(env)?;
        env.report_running();
        let n1 = self.gate1.num_channels();
        let n2 = self.gate2.num_channels();
        let mut valves = [StatusWatermarkValve::new(n1), StatusWatermarkValve::new(n2)];
        // An input with no channels has ended before it began.
        for (i, v) in valves.iter().enumerate() {
            if v.all_finished() {
                self.driver.process_watermark(i, Watermark::MAX)?;
            }
        }
        let mut cps = SubtaskCheckpointCoordinator::new(env);
        // Channels of both inputs in one index space: input 2's start after input 1's.
        let mut handler = BarrierHandler::new(cps.mode(), n1 + n2);
        let mut ends = InputEnds::new(n1 + n2);
        if n1 + n2 == 0 {
            self.driver.finish()?;
            return self.driver.end_partition();
        }
        let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
        let mut first = 0usize;
        loop {
            if env.cancel.is_cancelled() {
                return Err(cancelled(&self.label));
            }
            while let Some(mail) = cps.mail() {
                if let Some(b) = cps.on_mail(mail, &mut self.driver, Some(&mut handler))? {
                    cps.decline(b.id, "only sources can be triggered".into());
                }
            }
            if ends.all_partitions_ended() {
                if cps.all_notified() {
                    return self.driver.end_partition();
                }
                waker.wait(Some(Instant::now() + MAX_WAIT));
                continue;
            }
            if !ends.finished {
                if let Some(t) = self.driver.next_processing_time() {
                    let now = env.clock.now_ms();
                    if t <= now {
                        self.driver.on_processing_time(now)?;
                    }
                }
            }
            let mut progressed = false;
            // Alternate which input is polled first so neither starves.
            for k in 0..2 {
                let input = (first + k) % 2;
                let blocked = handler.blocked();
                let done = if input == 0 {
                    match self.gate1.poll(blocked.map(|b| &b[..n1])) {
                        Some((_, ChannelElement::Buffer(mut b))) => {
                            self.driver.process_batch1(&mut b)?;
                            true
                        }
                        Some((ch, e)) => self.event(
                            env,
                            &mut valves,
                            &mut handler,
                            &mut cps,
                            &mut ends,
                            0,
                            ch,
                            0,
                            e,
                        )?,
                        None => false,
                    }
                } else {
                    match self.gate2.poll(blocked.map(|b| &b[n1..])) {
                        Some((_, ChannelElement::Buffer(mut b))) => {
                            self.driver.process_batch2(&mut b)?;
                            true
                        }
                        Some((ch, e)) => self.event(
                            env,
                            &mut valves,
                            &mut handler,
                            &mut cps,
                            &mut ends,
                            1,
                            ch,
                            n1,
                            e,
                        )?,
                        None => false,
                    }
                };
                if done {
                    progressed = true;
                    break;
                }
            }
            first = (first + 1) % 2;
            if progressed {
                if flush.after_progress() {
                    self.driver.flush()?;
                }
            } else {
                if flush.on_idle() {
                    self.driver.flush()?;
                }
                let next = (!ends.finished)
                    .then(|| self.driver.next_processing_time())
                    .flatten();
                let d = wait_deadline(env, next, MAX_WAIT);
                waker.wait(Some(d));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn event<X>(
        &mut self,
        env: &TaskEnv,
        valves: &mut [StatusWatermarkValve; 2],
        handler: &mut BarrierHandler,
        cps: &mut SubtaskCheckpointCoordinator,
        ends: &mut InputEnds,
        input: usize,
        ch: usize,
        offset: usize,
        e: ChannelElement<X>,
    ) -> Result<bool, TaskError> {
        let out = match e {
            ChannelElement::Watermark(w) => valves[input].input_watermark(ch, w),
            ChannelElement::WatermarkStatus(s) => valves[input].input_watermark_status(ch, s),
            ChannelElement::Barrier(b) => {
                let o = handler.on_barrier(offset + ch, b);
                cps.on_outcome(o, &mut self.driver)?;
                return Ok(true);
            }
            ChannelElement::EndOfData => {
                if ends.on_end_of_data(offset + ch) {
                    self.driver.finish()?;
                }
                return Ok(true);
            }
            ChannelElement::EndOfPartition => {
                let mut out = valves[input].input_end(ch);
                if valves[input].all_finished() {
                    // An ended input must not hold back the other one.
                    out.watermark = Some(Watermark::MAX);
                }
                ends.on_end_of_partition(offset + ch);
                let o = handler.on_channel_ended(offset + ch);
                cps.on_outcome(o, &mut self.driver)?;
                out
            }
            ChannelElement::Failure(reason) => {
                return Err(self.label.error(OperatorError::Network(reason)));
            }
            ChannelElement::Buffer(_) => ValveOutput::default(),
        };
        if let Some(w) = out.watermark {
            self.driver.process_watermark(input, w)?;
        }
        if let Some(s) = out.status {
            self.driver.process_watermark_status(input, s)?;
        }
        env.watermarks
            .set_input_watermark(self.driver.combined_watermark());
        Ok(true)
    }
}

impl<Op: TwoInputOperator> StreamTask for TwoInputStreamTask<Op> {
    fn run(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        let res = self.run_loop(env, waker);
        self.driver.close();
        res
    }
}
