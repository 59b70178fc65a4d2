//! In-memory channels between subtasks of one process, with credit-based bounds.
//!
//! Every consumer subtask has one [`InputGate`] per logical input; the gate holds one FIFO
//! queue per upstream channel (producer subtask). A queue holds at most `capacity` buffers of
//! records: that is the channel's credit. A producer with no credit blocks in
//! [`ChannelWriter::send`], which is how backpressure reaches the sources, and the time it
//! blocks is counted as back-pressured time. Events (watermarks, watermark status, barriers,
//! end of data, end of partition) need no credit, as in Flink where they never wait behind exhausted buffers.
//!
//! One lock per buffer, never per record. The consumer is woken through its task's
//! [`TaskWaker`], shared by all its gates and its mailbox, so one wait covers everything a
//! task can react to.

use crate::waker::TaskWaker;
use eddy_core::{StreamRecord, Watermark, WatermarkStatus};
use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A type-erased value moved between the builder steps.
pub type Erased = Box<dyn Any + Send>;

/// What travels through a channel.
#[derive(Debug)]
pub enum ChannelElement<T> {
    /// A buffer of records, in order.
    Buffer(Vec<StreamRecord<T>>),
    /// A watermark from this channel's producer.
    Watermark(Watermark),
    /// The producer became idle or active again (Flink's `WatermarkStatus` event).
    WatermarkStatus(WatermarkStatus),
    /// A checkpoint barrier: everything before it belongs to checkpoint `id`, nothing after.
    Barrier(crate::checkpoint::CheckpointBarrier),
    /// The producer's input ended (Flink's `EndOfData`): the consumer may finish its operators,
    /// but the channel stays open for the final checkpoint's barrier.
    EndOfData,
    /// The producer finished; nothing follows.
    EndOfPartition,
    /// The channel broke (a remote producer's connection was lost): the consumer fails with
    /// this reason. Nothing follows.
    Failure(String),
}

/// Job-wide cancellation: set once when a task fails or the job is cancelled.
#[derive(Default)]
pub struct CancelToken {
    cancelled: AtomicBool,
    wakers: Mutex<Vec<Arc<TaskWaker>>>,
    gates: Mutex<Vec<Arc<dyn Cancellable>>>,
}

/// Something blocked threads wait on that must be released on cancel.
pub trait Cancellable: Send + Sync {
    /// Releases every thread waiting on it.
    fn cancel(&self);
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CancelToken({})", self.is_cancelled())
    }
}

impl CancelToken {
    /// A new token.
    pub fn new() -> Arc<Self> {
        Arc::new(CancelToken::default())
    }

    /// Whether the job was cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Registers a task waker to wake on cancel.
    pub fn register_waker(&self, w: Arc<TaskWaker>) {
        self.wakers.lock().push(w);
    }

    /// Registers a gate whose blocked producers must be released on cancel.
    pub fn register_gate(&self, g: Arc<dyn Cancellable>) {
        self.gates.lock().push(g);
    }

    /// Cancels: every blocked producer and waiting task returns.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        for g in self.gates.lock().iter() {
            g.cancel();
        }
        for w in self.wakers.lock().iter() {
            w.wake();
        }
    }
}

/// Counters of one producing subtask, read by tests and (later) metrics.
#[derive(Debug, Default)]
pub struct OutputMetrics {
    /// Nanoseconds spent blocked for lack of credit.
    pub back_pressured_nanos: AtomicU64,
    /// Buffers sent.
    pub buffers_out: AtomicU64,
    /// Records sent.
    pub records_out: AtomicU64,
}

/// Called when the consumer takes a buffer of a channel: a remote channel returns the credit.
pub type CreditListener = Box<dyn Fn() + Send + Sync>;

struct GateState<T> {
    queues: Vec<VecDeque<ChannelElement<T>>>,
    buffers_queued: Vec<usize>,
    listeners: Vec<Option<CreditListener>>,
    cancelled: bool,
    /// The most buffers any one channel ever held: lets tests assert the memory bound.
    high_water: usize,
}

struct GateInner<T> {
    state: Mutex<GateState<T>>,
    space: Condvar,
    capacity: usize,
    waker: Arc<TaskWaker>,
}

impl<T: Send> Cancellable for GateInner<T> {
    fn cancel(&self) {
        self.state.lock().cancelled = true;
        self.space.notify_all();
        self.waker.wake();
    }
}

/// The consumer side: all channels of one logical input of one subtask.
pub struct InputGate<T> {
    inner: Arc<GateInner<T>>,
    next: usize,
}

/// The producer side of one channel: a queue of the consumer's gate in this process, or a
/// remote channel whose records are serialized into network buffers.
pub struct ChannelWriter<T> {
    target: Target<T>,
    metrics: Option<Arc<OutputMetrics>>,
}

enum Target<T> {
    Local {
        inner: Arc<GateInner<T>>,
        channel: usize,
    },
    Remote(crate::remote::RemoteWriter<T>),
}

impl<T: eddy_core::Data> InputGate<T> {
    /// A gate with `channels` input channels of `capacity` buffers each; returns the gate and
    /// one writer per channel.
    pub fn new(
        channels: usize,
        capacity: usize,
        waker: Arc<TaskWaker>,
    ) -> (InputGate<T>, Vec<ChannelWriter<T>>) {
        let inner = Arc::new(GateInner {
            state: Mutex::new(GateState {
                queues: (0..channels).map(|_| VecDeque::new()).collect(),
                buffers_queued: vec![0; channels],
                listeners: (0..channels).map(|_| None).collect(),
                cancelled: false,
                high_water: 0,
            }),
            space: Condvar::new(),
            capacity: capacity.max(1),
            waker,
        });
        let writers = (0..channels)
            .map(|channel| ChannelWriter {
                target: Target::Local {
                    inner: inner.clone(),
                    channel,
                },
                metrics: None,
            })
            .collect();
        (InputGate { inner, next: 0 }, writers)
    }

    /// The handle the cancel token uses to release blocked producers.
    pub fn cancel_handle(&self) -> Arc<dyn Cancellable> {
        self.inner.clone()
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.inner.state.lock().queues.len()
    }

    /// The most buffers one channel of this gate ever held.
    pub fn high_water_mark(&self) -> usize {
        self.inner.state.lock().high_water
    }

    /// Takes the next element of any channel not in `blocked`, visiting channels round-robin
    /// so no producer starves. `None` when nothing is available now.
    pub fn poll(&mut self, blocked: Option<&[bool]>) -> Option<(usize, ChannelElement<T>)> {
        let mut st = self.inner.state.lock();
        let n = st.queues.len();
        for i in 0..n {
            let ch = (self.next + i) % n;
            if blocked.is_some_and(|b| b[ch]) {
                continue;
            }
            if let Some(e) = st.queues[ch].pop_front() {
                if matches!(e, ChannelElement::Buffer(_)) {
                    let was_full = st.buffers_queued[ch] >= self.inner.capacity;
                    st.buffers_queued[ch] -= 1;
                    if was_full {
                        // A producer may wait for exactly this credit.
                        self.inner.space.notify_all();
                    }
                    if let Some(l) = &st.listeners[ch] {
                        l();
                    }
                }
                self.next = (ch + 1) % n;
                return Some((ch, e));
            }
        }
        None
    }
}

/// Why a send did not go through.
#[derive(Debug)]
pub enum SendError<T> {
    /// The job is being cancelled. The element is handed back (unless a remote channel had
    /// already begun sending it).
    Cancelled(Option<ChannelElement<T>>),
    /// The channel broke (a remote connection was lost); names the peer and why.
    Failed(String),
}

impl<T: eddy_core::Data> ChannelWriter<T> {
    /// A writer of a remote channel (see [`crate::remote`]).
    pub(crate) fn remote(w: crate::remote::RemoteWriter<T>) -> Self {
        ChannelWriter {
            target: Target::Remote(w),
            metrics: None,
        }
    }

    /// Sets what happens when the consumer takes a buffer of this channel (a local channel
    /// only: remote channels feed a local gate through such a writer).
    pub fn set_credit_listener(&self, l: CreditListener) {
        if let Target::Local { inner, channel } = &self.target {
            inner.state.lock().listeners[*channel] = Some(l);
        }
    }

    /// Attaches the producer's counters.
    pub fn with_metrics(mut self, m: Arc<OutputMetrics>) -> Self {
        self.metrics = Some(m);
        self
    }

    /// Sends an element, blocking while the channel has no credit for a buffer.
    pub fn send(&mut self, e: ChannelElement<T>) -> Result<(), SendError<T>> {
        let (inner, channel) = match &mut self.target {
            Target::Local { inner, channel } => (inner, *channel),
            Target::Remote(r) => return r.send(e, self.metrics.as_deref()),
        };
        let mut st = inner.state.lock();
        if let ChannelElement::Buffer(b) = &e {
            if st.buffers_queued[channel] >= inner.capacity && !st.cancelled {
                let started = Instant::now();
                while st.buffers_queued[channel] >= inner.capacity && !st.cancelled {
                    // Bounded wait: a lost wake-up must not hang a task forever.
                    inner.space.wait_for(&mut st, Duration::from_millis(100));
                }
                if let Some(m) = &self.metrics {
                    m.back_pressured_nanos
                        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
            }
            if let Some(m) = &self.metrics {
                m.buffers_out.fetch_add(1, Ordering::Relaxed);
                m.records_out.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        }
        if st.cancelled {
            return Err(SendError::Cancelled(Some(e)));
        }
        if matches!(e, ChannelElement::Buffer(_)) {
            st.buffers_queued[channel] += 1;
            let q = st.buffers_queued[channel];
            if q > st.high_water {
                st.high_water = q;
            }
        }
        st.queues[channel].push_back(e);
        drop(st);
        inner.waker.wake();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_blocks_at_capacity_and_order_is_kept() {
        let waker = TaskWaker::new();
        let (mut gate, mut writers) = InputGate::<u32>::new(1, 2, waker.clone());
        let mut w = writers.remove(0);
        let producer = std::thread::spawn(move || {
            for i in 0..100u32 {
                w.send(ChannelElement::Buffer(vec![StreamRecord::new(i)]))
                    .unwrap();
            }
            w.send(ChannelElement::EndOfPartition).unwrap();
        });
        let mut got = Vec::new();
        loop {
            match gate.poll(None) {
                Some((_, ChannelElement::Buffer(b))) => got.extend(b.into_iter().map(|r| r.value)),
                Some((_, ChannelElement::EndOfPartition)) => break,
                Some(_) => {}
                None => waker.wait(Some(Instant::now() + Duration::from_millis(50))),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(gate.high_water_mark() <= 2);
    }

    #[test]
    fn cancel_releases_blocked_producer() {
        let waker = TaskWaker::new();
        let (gate, mut writers) = InputGate::<u32>::new(1, 1, waker);
        let mut w = writers.remove(0);
        w.send(ChannelElement::Buffer(vec![])).unwrap();
        let h = gate.cancel_handle();
        let t = std::thread::spawn(move || w.send(ChannelElement::Buffer(vec![])).is_err());
        std::thread::sleep(Duration::from_millis(20));
        h.cancel();
        assert!(t.join().unwrap());
    }
}
