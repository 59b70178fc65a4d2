//! Where an operator's records go: the chained operators after it (by function call), the
//! record writers of its network edges, and its side outputs.
//!
//! An operator pushes into [`Output`]'s buffer while it processes a batch; the driver then hands
//! the whole batch on, once, to each consumer. Consumers after the first get a copy (records are
//! `Clone`), as Flink copies for chained fan-out.

use crate::channel::{ChannelElement, ChannelWriter};
use crate::checkpoint::{CheckpointBarrier, CheckpointId, OperatorSubtaskState};
use crate::environment::{TaskEnv, WatermarkGauge};
use crate::error::{OperatorError, TaskError};
use eddy_core::OperatorId;
use eddy_core::{Data, StreamRecord, Watermark, WatermarkStatus};
use std::any::Any;
use std::sync::Arc;

/// A chain element as seen by the operator (or task input) before it.
pub trait Input<T>: Send {
    /// Opens this operator and everything after it in the chain (tail first, as Flink).
    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError>;
    /// Processes and empties `batch`.
    fn process_batch(&mut self, batch: &mut Vec<StreamRecord<T>>) -> Result<(), TaskError>;
    /// A new input watermark.
    fn process_watermark(&mut self, wm: Watermark) -> Result<(), TaskError>;
    /// The input became idle or active again.
    fn process_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError>;
    /// Processing time reached `now`: fire due timers here and downstream.
    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError>;
    /// The earliest processing-time timer here or downstream.
    fn next_processing_time(&self) -> Option<i64>;
    /// Sends partially filled network buffers (buffer timeout).
    fn flush(&mut self) -> Result<(), TaskError>;
    /// End of input (Flink's `endInput` + `finish`): emit what is left, then finish
    /// downstream, whose network consumers get end of data.
    fn finish(&mut self) -> Result<(), TaskError>;
    /// Releases resources; called on success and on failure.
    fn close(&mut self);
    /// Snapshots this operator and the chain after it, appending `(operator, state)`.
    fn snapshot_state(
        &mut self,
        _barrier: &CheckpointBarrier,
        _out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        Ok(())
    }
    /// Forwards the barrier to every network consumer after this operator.
    fn emit_barrier(&mut self, _barrier: &CheckpointBarrier) -> Result<(), TaskError> {
        Ok(())
    }
    /// A checkpoint completed (`complete`) or was aborted.
    fn notify_checkpoint(&mut self, _id: CheckpointId, _complete: bool) -> Result<(), TaskError> {
        Ok(())
    }
    /// The task ends: network consumers after this operator get end of partition.
    fn end_partition(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Picks the consumer subtask of each record of a batch for `key_by` and `partition_custom`
/// edges. One dynamic call per batch; the user's key selector is inlined inside.
pub trait KeyPartitioner<T>: Send + Sync {
    /// Writes, for each record in `batch`, the consumer subtask index (`< num_channels`).
    fn select(
        &self,
        batch: &[StreamRecord<T>],
        num_channels: usize,
        max_parallelism: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), OperatorError>;
}

/// The runtime form of an edge's partitioner.
pub enum Partitioner<T> {
    /// One channel (forward).
    Forward,
    /// Round-robin over the writer's channels (rebalance, rescale).
    RoundRobin {
        /// Next channel.
        next: usize,
    },
    /// A pseudo-random channel per record.
    Shuffle {
        /// xorshift state.
        state: u64,
    },
    /// Every channel.
    Broadcast,
    /// By key (hash or custom).
    Keyed {
        /// The typed selector.
        selector: Arc<dyn KeyPartitioner<T>>,
        /// The consumer's max parallelism (number of key groups).
        max_parallelism: usize,
    },
}

/// Serializes nothing (in-process), but batches records per channel into buffers of
/// `records_per_buffer` and sends a buffer when it is full, on flush, or before an event.
pub struct RecordWriter<T> {
    channels: Vec<ChannelWriter<T>>,
    pending: Vec<Vec<StreamRecord<T>>>,
    partitioner: Partitioner<T>,
    records_per_buffer: usize,
    scratch: Vec<u32>,
}

fn cancelled<T>(e: crate::channel::SendError<T>) -> OperatorError {
    match e {
        crate::channel::SendError::Cancelled(_) => OperatorError::Cancelled,
        crate::channel::SendError::Failed(reason) => OperatorError::Network(reason),
    }
}

impl<T: Data> RecordWriter<T> {
    /// A writer over `channels` (in consumer subtask order).
    pub fn new(
        channels: Vec<ChannelWriter<T>>,
        partitioner: Partitioner<T>,
        records_per_buffer: usize,
    ) -> Self {
        let n = channels.len();
        RecordWriter {
            channels,
            pending: (0..n).map(|_| Vec::new()).collect(),
            partitioner,
            records_per_buffer: records_per_buffer.max(1),
            scratch: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, ch: usize, r: StreamRecord<T>) -> Result<(), OperatorError> {
        let p = &mut self.pending[ch];
        if p.capacity() == 0 {
            p.reserve_exact(self.records_per_buffer);
        }
        p.push(r);
        if p.len() >= self.records_per_buffer {
            let full = std::mem::take(p);
            self.channels[ch]
                .send(ChannelElement::Buffer(full))
                .map_err(cancelled)?;
        }
        Ok(())
    }

    /// Partitions and buffers every record of `batch` (which is left empty).
    pub fn emit(&mut self, batch: &mut Vec<StreamRecord<T>>) -> Result<(), OperatorError> {
        let n = self.channels.len();
        if n == 0 {
            batch.clear();
            return Ok(());
        }
        match &mut self.partitioner {
            Partitioner::Forward => {
                for r in batch.drain(..) {
                    self.push(0, r)?;
                }
            }
            Partitioner::RoundRobin { next } => {
                let mut ch = *next;
                for r in batch.drain(..) {
                    ch = if ch + 1 >= n { 0 } else { ch + 1 };
                    self.push(ch, r)?;
                }
                if let Partitioner::RoundRobin { next } = &mut self.partitioner {
                    *next = ch;
                }
            }
            Partitioner::Shuffle { state } => {
                let mut s = *state;
                let mut picks = std::mem::take(&mut self.scratch);
                picks.clear();
                for _ in 0..batch.len() {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    picks.push((s % n as u64) as u32);
                }
                *state = s;
                for (r, ch) in batch.drain(..).zip(picks.iter()) {
                    self.push(*ch as usize, r)?;
                }
                self.scratch = picks;
            }
            Partitioner::Broadcast => {
                for r in batch.drain(..) {
                    for ch in 0..n - 1 {
                        self.push(ch, r.clone())?;
                    }
                    self.push(n - 1, r)?;
                }
            }
            Partitioner::Keyed {
                selector,
                max_parallelism,
            } => {
                let mut picks = std::mem::take(&mut self.scratch);
                picks.clear();
                selector.select(batch, n, *max_parallelism, &mut picks)?;
                if picks.len() != batch.len() {
                    return Err(OperatorError::Internal(
                        "key partitioner returned a wrong number of channels".into(),
                    ));
                }
                for (r, ch) in batch.drain(..).zip(picks.iter()) {
                    self.push(*ch as usize, r)?;
                }
                self.scratch = picks;
            }
        }
        Ok(())
    }

    /// Sends every partially filled buffer.
    pub fn flush(&mut self) -> Result<(), OperatorError> {
        for (ch, p) in self.pending.iter_mut().enumerate() {
            if !p.is_empty() {
                let b = std::mem::take(p);
                self.channels[ch]
                    .send(ChannelElement::Buffer(b))
                    .map_err(cancelled)?;
            }
        }
        Ok(())
    }

    /// Flushes, then sends the watermark on every channel (after the records before it).
    pub fn emit_watermark(&mut self, wm: Watermark) -> Result<(), OperatorError> {
        self.flush()?;
        for c in &mut self.channels {
            c.send(ChannelElement::Watermark(wm)).map_err(cancelled)?;
        }
        Ok(())
    }

    /// Flushes, then sends the watermark status on every channel.
    pub fn emit_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), OperatorError> {
        self.flush()?;
        for c in &mut self.channels {
            c.send(ChannelElement::WatermarkStatus(status))
                .map_err(cancelled)?;
        }
        Ok(())
    }

    /// Flushes, then sends `e` (an event) on every channel.
    fn broadcast_event(&mut self, e: impl Fn() -> ChannelElement<T>) -> Result<(), OperatorError> {
        self.flush()?;
        for c in &mut self.channels {
            c.send(e()).map_err(cancelled)?;
        }
        Ok(())
    }

    /// Flushes, then sends the checkpoint barrier on every channel.
    pub fn emit_barrier(&mut self, b: &CheckpointBarrier) -> Result<(), OperatorError> {
        self.broadcast_event(|| ChannelElement::Barrier(b.clone()))
    }

    /// Flushes, then tells every consumer this producer's input ended.
    pub fn finish(&mut self) -> Result<(), OperatorError> {
        self.broadcast_event(|| ChannelElement::EndOfData)
    }

    /// Tells every consumer this producer is gone.
    pub fn end_partition(&mut self) -> Result<(), OperatorError> {
        self.broadcast_event(|| ChannelElement::EndOfPartition)
    }
}

/// The type-erased view of an [`Output`], used for side outputs whose type only the operator
/// that emits into them knows.
pub trait ErasedOutput: Send {
    /// For downcasting to `Output<X>`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Snapshots the chained operators after this output.
    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError>;
    /// Sends the barrier to every network consumer downstream in the chain.
    fn emit_barrier(&mut self, barrier: &CheckpointBarrier) -> Result<(), TaskError>;
    /// Tells the chained operators that a checkpoint completed or was aborted.
    fn notify_checkpoint(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError>;
    /// Sends end of partition to every network consumer downstream in the chain.
    fn end_partition(&mut self) -> Result<(), TaskError>;
    /// Lifecycle, forwarded to the consumers.
    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError>;
    /// Hands buffered records on.
    fn flush_buffered(&mut self) -> Result<(), TaskError>;
    /// Forwards a watermark.
    fn emit_watermark(&mut self, wm: Watermark) -> Result<(), TaskError>;
    /// Forwards a watermark status.
    fn emit_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError>;
    /// Processing time reached `now` in the task.
    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError>;
    /// Earliest processing-time timer downstream in the chain.
    fn next_processing_time(&self) -> Option<i64>;
    /// Sends partially filled network buffers.
    fn flush(&mut self) -> Result<(), TaskError>;
    /// End of input.
    fn finish(&mut self) -> Result<(), TaskError>;
    /// Releases resources.
    fn close(&mut self);
}

/// A watermark or status an operator emitted between records of the batch it is building.
#[derive(Clone, Copy, Debug)]
enum Mark {
    Watermark(Watermark),
    Status(WatermarkStatus),
}

/// An operator's output: a buffer the operator fills, and the consumers it is handed to.
pub struct Output<T> {
    buf: Vec<StreamRecord<T>>,
    scratch: Vec<StreamRecord<T>>,
    /// Watermarks and statuses pushed mid-batch, with the number of records of `buf` before
    /// each: they go out exactly there, so a punctuated watermark follows its record.
    marks: Vec<(usize, Mark)>,
    staged: Vec<StreamRecord<T>>,
    /// Set (at open) on outputs that end a chain, whose watermark is the task's output watermark.
    gauge: Option<Arc<WatermarkGauge>>,
    chained: Vec<Box<dyn Input<T>>>,
    writers: Vec<RecordWriter<T>>,
    side: Vec<(String, Box<dyn ErasedOutput>)>,
    /// Set when a record was emitted to a side output with another type than the stream that
    /// reads it; reported when the batch is handed on, so nothing is dropped silently.
    side_error: Option<String>,
    label: Option<crate::error::OperatorLabel>,
}

impl<T: Data> Default for Output<T> {
    fn default() -> Self {
        Output::new(Vec::new(), Vec::new(), Vec::new())
    }
}

impl<T: Data> Output<T> {
    /// An output to chained operators, network writers and side outputs (by tag id).
    pub fn new(
        chained: Vec<Box<dyn Input<T>>>,
        writers: Vec<RecordWriter<T>>,
        side: Vec<(String, Box<dyn ErasedOutput>)>,
    ) -> Self {
        Output {
            buf: Vec::new(),
            scratch: Vec::new(),
            marks: Vec::new(),
            staged: Vec::new(),
            gauge: None,
            chained,
            writers,
            side,
            side_error: None,
            label: None,
        }
    }

    /// Names the operator that owns this output, for errors of its writers.
    pub fn set_label(&mut self, label: crate::error::OperatorLabel) {
        self.label = Some(label);
    }

    fn wrap(&self, e: OperatorError) -> TaskError {
        match &self.label {
            Some(l) => l.error(e),
            None => TaskError::new("<output>", 0, "?", e),
        }
    }

    /// Appends a record to the batch being built.
    #[inline]
    pub fn push(&mut self, r: StreamRecord<T>) {
        self.buf.push(r);
    }

    /// Appends a whole batch (a source's poll) to the batch being built.
    #[inline]
    pub fn push_batch(&mut self, batch: &mut Vec<StreamRecord<T>>) {
        if self.buf.is_empty() {
            std::mem::swap(&mut self.buf, batch);
        } else {
            self.buf.append(batch);
        }
    }

    /// Whether anything consumes this output.
    pub fn has_consumers(&self) -> bool {
        !self.chained.is_empty() || !self.writers.is_empty()
    }

    /// A collector that stamps records with `timestamp`.
    #[inline]
    pub fn collector(&mut self, timestamp: i64) -> Collector<'_, T> {
        Collector {
            buf: &mut self.buf,
            timestamp,
        }
    }

    /// A collector and the side outputs, borrowed together.
    #[inline]
    pub fn split(&mut self, timestamp: i64) -> (Collector<'_, T>, SideOutputs<'_>) {
        (
            Collector {
                buf: &mut self.buf,
                timestamp,
            },
            SideOutputs {
                outputs: &mut self.side,
                error: &mut self.side_error,
                timestamp,
            },
        )
    }

    /// Emits a watermark after the records pushed so far, before the ones pushed next; it goes
    /// out when the batch is handed on. For operators that generate watermarks mid-batch.
    pub fn push_watermark(&mut self, wm: Watermark) {
        self.marks.push((self.buf.len(), Mark::Watermark(wm)));
    }

    /// Emits a watermark status after the records pushed so far (see [`Output::push_watermark`]).
    pub fn push_watermark_status(&mut self, status: WatermarkStatus) {
        self.marks.push((self.buf.len(), Mark::Status(status)));
    }

    /// Hands the buffered batch to every consumer, with the watermarks and statuses pushed
    /// between its records in their places.
    pub fn flush_buffered(&mut self) -> Result<(), TaskError> {
        if self.marks.is_empty() {
            return self.hand_on();
        }
        let marks = std::mem::take(&mut self.marks);
        let mut staged = std::mem::take(&mut self.staged);
        std::mem::swap(&mut self.buf, &mut staged);
        let mut records = staged.drain(..);
        let mut handed = 0;
        for (pos, mark) in marks {
            self.buf.extend(records.by_ref().take(pos - handed));
            handed = pos;
            self.hand_on()?;
            match mark {
                Mark::Watermark(w) => self.forward_watermark(w)?,
                Mark::Status(s) => self.forward_watermark_status(s)?,
            }
        }
        self.buf.extend(records);
        self.staged = staged;
        self.hand_on()
    }

    fn hand_on(&mut self) -> Result<(), TaskError> {
        if let Some(e) = self.side_error.take() {
            return Err(self.wrap(OperatorError::User(e.into())));
        }
        for (_, s) in self.side.iter_mut() {
            s.flush_buffered()?;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let consumers = self.chained.len() + self.writers.len();
        if consumers == 0 {
            self.buf.clear();
            return Ok(());
        }
        let mut remaining = consumers;
        for c in self.chained.iter_mut() {
            remaining -= 1;
            if remaining == 0 {
                c.process_batch(&mut self.buf)?;
            } else {
                self.scratch.clear();
                self.scratch.extend(self.buf.iter().cloned());
                c.process_batch(&mut self.scratch)?;
            }
        }
        for i in 0..self.writers.len() {
            remaining -= 1;
            let res = if remaining == 0 {
                self.writers[i].emit(&mut self.buf)
            } else {
                self.scratch.clear();
                self.scratch.extend(self.buf.iter().cloned());
                self.writers[i].emit(&mut self.scratch)
            };
            res.map_err(|e| self.wrap(e))?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Flushes buffered records, then forwards the watermark to every consumer.
    pub fn emit_watermark(&mut self, wm: Watermark) -> Result<(), TaskError> {
        self.flush_buffered()?;
        self.forward_watermark(wm)
    }

    /// Flushes buffered records, then forwards the watermark status to every consumer.
    pub fn emit_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        self.flush_buffered()?;
        self.forward_watermark_status(status)
    }

    fn forward_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.process_watermark_status(status)?;
        }
        for i in 0..self.writers.len() {
            let r = self.writers[i].emit_watermark_status(status);
            r.map_err(|e| self.wrap(e))?;
        }
        for (_, s) in self.side.iter_mut() {
            s.emit_watermark_status(status)?;
        }
        Ok(())
    }

    fn forward_watermark(&mut self, wm: Watermark) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.process_watermark(wm)?;
        }
        for i in 0..self.writers.len() {
            let r = self.writers[i].emit_watermark(wm);
            r.map_err(|e| self.wrap(e))?;
        }
        for (_, s) in self.side.iter_mut() {
            s.emit_watermark(wm)?;
        }
        if let Some(g) = &self.gauge {
            g.set_output_watermark(wm.timestamp);
        }
        Ok(())
    }
}

impl<T: Data> ErasedOutput for Output<T> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn snapshot_state(
        &mut self,
        barrier: &CheckpointBarrier,
        out: &mut Vec<(OperatorId, OperatorSubtaskState)>,
    ) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.snapshot_state(barrier, out)?;
        }
        for (_, s) in self.side.iter_mut() {
            s.snapshot_state(barrier, out)?;
        }
        Ok(())
    }

    fn emit_barrier(&mut self, barrier: &CheckpointBarrier) -> Result<(), TaskError> {
        self.flush_buffered()?;
        for c in self.chained.iter_mut() {
            c.emit_barrier(barrier)?;
        }
        for i in 0..self.writers.len() {
            let r = self.writers[i].emit_barrier(barrier);
            r.map_err(|e| self.wrap(e))?;
        }
        for (_, s) in self.side.iter_mut() {
            s.emit_barrier(barrier)?;
        }
        Ok(())
    }

    fn notify_checkpoint(&mut self, id: CheckpointId, complete: bool) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.notify_checkpoint(id, complete)?;
        }
        for (_, s) in self.side.iter_mut() {
            s.notify_checkpoint(id, complete)?;
        }
        Ok(())
    }

    fn end_partition(&mut self) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.end_partition()?;
        }
        for i in 0..self.writers.len() {
            let r = self.writers[i].end_partition();
            r.map_err(|e| self.wrap(e))?;
        }
        for (_, s) in self.side.iter_mut() {
            s.end_partition()?;
        }
        Ok(())
    }

    fn open(&mut self, env: &TaskEnv) -> Result<(), TaskError> {
        if self.chained.is_empty() {
            self.gauge = Some(env.watermarks.clone());
        }
        for c in self.chained.iter_mut() {
            c.open(env)?;
        }
        for (_, s) in self.side.iter_mut() {
            s.open(env)?;
        }
        Ok(())
    }

    fn flush_buffered(&mut self) -> Result<(), TaskError> {
        Output::flush_buffered(self)
    }

    fn emit_watermark(&mut self, wm: Watermark) -> Result<(), TaskError> {
        Output::emit_watermark(self, wm)
    }

    fn emit_watermark_status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        Output::emit_watermark_status(self, status)
    }

    fn on_processing_time(&mut self, now: i64) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.on_processing_time(now)?;
        }
        for (_, s) in self.side.iter_mut() {
            s.on_processing_time(now)?;
        }
        Ok(())
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.chained
            .iter()
            .filter_map(|c| c.next_processing_time())
            .chain(
                self.side
                    .iter()
                    .filter_map(|(_, s)| s.next_processing_time()),
            )
            .min()
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        for c in self.chained.iter_mut() {
            c.flush()?;
        }
        for i in 0..self.writers.len() {
            let r = self.writers[i].flush();
            r.map_err(|e| self.wrap(e))?;
        }
        for (_, s) in self.side.iter_mut() {
            s.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TaskError> {
        self.flush_buffered()?;
        for c in self.chained.iter_mut() {
            c.finish()?;
        }
        for i in 0..self.writers.len() {
            let r = self.writers[i].finish();
            r.map_err(|e| self.wrap(e))?;
        }
        for (_, s) in self.side.iter_mut() {
            s.finish()?;
        }
        Ok(())
    }

    fn close(&mut self) {
        for c in self.chained.iter_mut() {
            c.close();
        }
        for (_, s) in self.side.iter_mut() {
            s.close();
        }
    }
}

/// Collects an operator's output records (Flink's `Collector`), stamping them with the
/// timestamp of the input record (or timer) being processed.
pub struct Collector<'a, T> {
    buf: &'a mut Vec<StreamRecord<T>>,
    timestamp: i64,
}

impl<T> Collector<'_, T> {
    /// Emits a record with the current timestamp.
    #[inline]
    pub fn collect(&mut self, value: T) {
        self.buf.push(StreamRecord {
            value,
            timestamp: self.timestamp,
        });
    }

    /// Emits a record with an explicit event timestamp.
    #[inline]
    pub fn collect_with_timestamp(&mut self, value: T, timestamp: i64) {
        self.buf.push(StreamRecord { value, timestamp });
    }

    /// The timestamp records collected now get, if any.
    pub fn timestamp(&self) -> Option<i64> {
        (self.timestamp != StreamRecord::<T>::NO_TIMESTAMP).then_some(self.timestamp)
    }

    pub(crate) fn set_timestamp(&mut self, ts: i64) {
        self.timestamp = ts;
    }
}

/// Identifies a side output and its type (Flink's `OutputTag<T>`).
pub struct OutputTag<T> {
    id: String,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        OutputTag {
            id: self.id.clone(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for OutputTag<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputTag({})", self.id)
    }
}

impl<T> OutputTag<T> {
    /// A tag with a unique id.
    pub fn new(id: impl Into<String>) -> Self {
        OutputTag {
            id: id.into(),
            _t: std::marker::PhantomData,
        }
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The side outputs of an operator, for `ctx.output(&tag, value)`.
pub struct SideOutputs<'a> {
    outputs: &'a mut Vec<(String, Box<dyn ErasedOutput>)>,
    error: &'a mut Option<String>,
    timestamp: i64,
}

impl SideOutputs<'_> {
    /// Emits `value` to the side output `tag` with the current timestamp. A side output no
    /// stream reads (`get_side_output` was never called for it) has no consumer, and its
    /// records are not kept, as in Flink.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        let ts = self.timestamp;
        for (id, o) in self.outputs.iter_mut() {
            if id == tag.id() {
                match o.as_any_mut().downcast_mut::<Output<X>>() {
                    Some(out) => out.push(StreamRecord {
                        value,
                        timestamp: ts,
                    }),
                    None => {
                        self.error.get_or_insert_with(|| {
                            format!(
                                "side output '{}' is emitted as {} but read as another type",
                                tag.id(),
                                std::any::type_name::<X>()
                            )
                        });
                    }
                }
                return;
            }
        }
    }

    pub(crate) fn set_timestamp(&mut self, ts: i64) {
        self.timestamp = ts;
    }
}
