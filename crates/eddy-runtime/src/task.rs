//! The task: one OS thread per subtask running a mailbox loop.
//!
//! Each turn of the loop checks for cancellation, fires due processing-time timers, then takes
//! one element of input (a source poll or a buffer/event from an input gate) and pushes it
//! through the chain. With nothing to do it flushes partial output buffers (unless the buffer
//! timeout is -1) and sleeps on the task's [`TaskWaker`] until input arrives or the next timer is
//! due. Busy tasks flush every `buffer_timeout` ms, so batches stay large under load and
//! latency stays bounded when idle.

use crate::chain::{guarded, Input, TaskEnv};
use crate::channel::{ChannelElement, InputGate, TaskWaker};
use crate::error::{OperatorError, OperatorLabel, TaskError};
use crate::operators::co::{TwoInputDriver, TwoInputOperator};
use crate::output::{ErasedOutput, Output};
use crate::source::{InputStatus, SourceContext, SourceReader};
use crate::valve::{StatusWatermarkValve, ValveOutput};
use eddy_core::{Data, StreamRecord, Watermark};
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

/// A task whose head is a source.
pub struct SourceStreamTask<R: SourceReader> {
    reader: R,
    out: Output<R::Out>,
    label: OperatorLabel,
    batch_size: usize,
}

impl<R: SourceReader> SourceStreamTask<R> {
    /// A source task reading with `reader` into `out`.
    pub fn new(
        reader: R,
        mut out: Output<R::Out>,
        label: OperatorLabel,
        batch_size: usize,
    ) -> Self {
        out.set_label(label.clone());
        SourceStreamTask {
            reader,
            out,
            label,
            batch_size: batch_size.max(1),
        }
    }

    fn run_loop(&mut self, env: &TaskEnv, waker: &Arc<TaskWaker>) -> Result<(), TaskError> {
        self.out.open(env)?;
        let ctx = SourceContext {
            subtask: env.subtask,
            parallelism: env.parallelism,
        };
        let reader = &mut self.reader;
        guarded(&self.label, || reader.open(&ctx))?;
        let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
        let mut batch: Vec<StreamRecord<R::Out>> = Vec::with_capacity(self.batch_size);
        loop {
            if env.cancel.is_cancelled() {
                return Err(cancelled(&self.label));
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
                    return Ok(());
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
        let mut valve = StatusWatermarkValve::new(self.gate.num_channels());
        let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
        if valve.all_finished() {
            return self.chain.finish();
        }
        loop {
            if env.cancel.is_cancelled() {
                return Err(cancelled(&self.label));
            }
            if let Some(t) = self.chain.next_processing_time() {
                let now = env.clock.now_ms();
                if t <= now {
                    self.chain.on_processing_time(now)?;
                }
            }
            match self.gate.poll(None) {
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
                Some((ch, ChannelElement::EndOfPartition)) => {
                    let out = valve.input_end(ch);
                    self.forward(env, out)?;
                    if valve.all_finished() {
                        return self.chain.finish();
                    }
                }
                None => {
                    if flush.on_idle() {
                        self.chain.flush()?;
                    }
                    let d = wait_deadline(env, self.chain.next_processing_time(), MAX_WAIT);
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
        let mut valves = [
            StatusWatermarkValve::new(self.gate1.num_channels()),
            StatusWatermarkValve::new(self.gate2.num_channels()),
        ];
        // An input with no channels has ended before it began.
        for (i, v) in valves.iter().enumerate() {
            if v.all_finished() {
                self.driver.process_watermark(i, Watermark::MAX)?;
            }
        }
        let mut flush = FlushPolicy::new(env.buffer_timeout_ms);
        let mut first = 0usize;
        loop {
            if valves[0].all_finished() && valves[1].all_finished() {
                return self.driver.finish();
            }
            if env.cancel.is_cancelled() {
                return Err(cancelled(&self.label));
            }
            if let Some(t) = self.driver.next_processing_time() {
                let now = env.clock.now_ms();
                if t <= now {
                    self.driver.on_processing_time(now)?;
                }
            }
            let mut progressed = false;
            // Alternate which input is polled first so neither starves.
            for k in 0..2 {
                let input = (first + k) % 2;
                let done = if input == 0 {
                    match self.gate1.poll(None) {
                        Some((_, ChannelElement::Buffer(mut b))) => {
                            self.driver.process_batch1(&mut b)?;
                            true
                        }
                        Some((ch, e)) => self.event(env, &mut valves, 0, ch, e)?,
                        None => false,
                    }
                } else {
                    match self.gate2.poll(None) {
                        Some((_, ChannelElement::Buffer(mut b))) => {
                            self.driver.process_batch2(&mut b)?;
                            true
                        }
                        Some((ch, e)) => self.event(env, &mut valves, 1, ch, e)?,
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
                let d = wait_deadline(env, self.driver.next_processing_time(), MAX_WAIT);
                waker.wait(Some(d));
            }
        }
    }

    fn event<X>(
        &mut self,
        env: &TaskEnv,
        valves: &mut [StatusWatermarkValve; 2],
        input: usize,
        ch: usize,
        e: ChannelElement<X>,
    ) -> Result<bool, TaskError> {
        let out = match e {
            ChannelElement::Watermark(w) => valves[input].input_watermark(ch, w),
            ChannelElement::WatermarkStatus(s) => valves[input].input_watermark_status(ch, s),
            ChannelElement::EndOfPartition => {
                let mut out = valves[input].input_end(ch);
                if valves[input].all_finished() {
                    // An ended input must not hold back the other one.
                    out.watermark = Some(Watermark::MAX);
                }
                out
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
