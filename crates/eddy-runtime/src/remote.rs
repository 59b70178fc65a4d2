//! Remote channels: typed stream elements to and from the network stack's byte channels
//! (`eddy-network`). A [`RemoteWriter`] serializes each record (postcard, length-prefixed)
//! into pooled segments, shipping a segment when it is full and at the end of every buffer the
//! record writer hands over, so the buffer timeout bounds latency across machines as it does
//! in-process. The consumer's [`RemoteInbound`] reassembles records and feeds them, one gate
//! buffer per network buffer, into an ordinary input gate; the gate returns the credit when the
//! task takes the buffer. Events travel as `WireEvent`s in the same order.

use crate::channel::{
    Cancellable, ChannelElement, ChannelWriter, Erased, OutputMetrics, SendError,
};
use crate::checkpoint::CheckpointBarrier;
use eddy_core::{Data, StreamRecord, Watermark, WatermarkStatus};
use eddy_network::spanning::{length_prefix, CorruptStream, RecordReassembler};
use eddy_network::{
    ChannelId, InboundHandler, NetworkBufferPool, NetworkEnvironment, NetworkError, OutputChannel,
    Segment,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A stream event as it crosses the network.
#[derive(Debug, Serialize, Deserialize)]
enum WireEvent {
    Watermark(Watermark),
    WatermarkStatus(WatermarkStatus),
    Barrier(CheckpointBarrier),
    EndOfData,
    EndOfPartition,
}

/// The producer side of a remote channel for records of type `T`.
pub struct RemoteWriter<T> {
    channel: Arc<OutputChannel>,
    pool: Arc<NetworkBufferPool>,
    scratch: Vec<u8>,
    current: Option<Segment>,
    _records: PhantomData<fn(T)>,
}

fn failed<T>(e: NetworkError) -> SendError<T> {
    match e {
        NetworkError::Cancelled => SendError::Cancelled(None),
        other => SendError::Failed(other.to_string()),
    }
}

impl<T: Data> RemoteWriter<T> {
    /// A writer shipping through `channel`, serializing into segments of `pool`.
    pub fn new(channel: Arc<OutputChannel>, pool: Arc<NetworkBufferPool>) -> Self {
        RemoteWriter {
            channel,
            pool,
            scratch: Vec::new(),
            current: None,
            _records: PhantomData,
        }
    }

    /// Copies the serialized record in `scratch` into segments, shipping full ones.
    fn put_scratch(&mut self, metrics: Option<&OutputMetrics>) -> Result<(), SendError<T>> {
        let mut rest = &self.scratch[..];
        while !rest.is_empty() {
            if self.current.is_none() {
                // Credit first, then a segment: a segment is never held while waiting for
                // the consumer, so the pool cannot run dry behind a slow consumer.
                let waited = self.channel.reserve_credit().map_err(failed)?;
                if let Some(m) = metrics {
                    m.back_pressured_nanos
                        .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
                }
                let ch = &self.channel;
                let seg = self
                    .pool
                    .request(&|| ch.is_closed())
                    .ok_or(SendError::Cancelled(None))?;
                self.current = Some(seg);
            }
            let Some(seg) = self.current.as_mut() else {
                continue;
            };
            let n = seg.put(rest);
            rest = &rest[n..];
            if seg.remaining() == 0 {
                if let Some(full) = self.current.take() {
                    self.ship(full, metrics)?;
                }
            }
        }
        Ok(())
    }

    fn ship(&self, seg: Segment, metrics: Option<&OutputMetrics>) -> Result<(), SendError<T>> {
        self.channel.send_buffer(seg).map_err(failed)?;
        if let Some(m) = metrics {
            m.buffers_out.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sends one element: a buffer's records are serialized and shipped (the last, partly
    /// filled segment too); an event follows everything before it.
    pub fn send(
        &mut self,
        e: ChannelElement<T>,
        metrics: Option<&OutputMetrics>,
    ) -> Result<(), SendError<T>> {
        let event = match e {
            ChannelElement::Buffer(records) => {
                for r in &records {
                    let mut buf = std::mem::take(&mut self.scratch);
                    buf.clear();
                    buf.extend_from_slice(&[0; 4]);
                    let mut buf = eddy_core::codec::encode_into(r, buf).map_err(|e| {
                        SendError::Failed(format!("cannot serialize a record: {e}"))
                    })?;
                    let len = buf.len() - 4;
                    buf[..4].copy_from_slice(&length_prefix(len));
                    self.scratch = buf;
                    self.put_scratch(metrics)?;
                }
                if let Some(seg) = self.current.take() {
                    self.ship(seg, metrics)?;
                }
                if let Some(m) = metrics {
                    m.records_out
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                }
                return Ok(());
            }
            ChannelElement::Watermark(w) => WireEvent::Watermark(w),
            ChannelElement::WatermarkStatus(s) => WireEvent::WatermarkStatus(s),
            ChannelElement::Barrier(b) => WireEvent::Barrier(b),
            ChannelElement::EndOfData => WireEvent::EndOfData,
            ChannelElement::EndOfPartition => WireEvent::EndOfPartition,
            ChannelElement::Failure(reason) => return Err(SendError::Failed(reason)),
        };
        let bytes = postcard::to_stdvec(&event)
            .map_err(|e| SendError::Failed(format!("cannot serialize an event: {e}")))?;
        self.channel.send_event(bytes).map_err(failed)
    }
}

/// The consumer side of a remote channel: decodes what arrives into the local gate.
pub struct RemoteInbound<T> {
    id: ChannelId,
    state: Mutex<(RecordReassembler, ChannelWriter<T>)>,
}

impl<T: Data> RemoteInbound<T> {
    fn push(&self, writer: &mut ChannelWriter<T>, e: ChannelElement<T>) {
        // Only a cancelled gate refuses; then nobody reads it any more.
        let _ = writer.send(e);
    }
}

impl<T: Data> InboundHandler for RemoteInbound<T> {
    fn on_buffer(&self, data: &[u8]) -> bool {
        let mut st = self.state.lock();
        let (reassembler, writer) = &mut *st;
        let mut records: Vec<StreamRecord<T>> = Vec::new();
        let res = reassembler.feed(data, |b| {
            postcard::from_bytes::<StreamRecord<T>>(b)
                .map(|r| records.push(r))
                .map_err(|e| CorruptStream(format!("undecodable record: {e}")))
        });
        if let Err(e) = res {
            let msg = format!("channel {}: {e}", self.id);
            self.push(writer, ChannelElement::Failure(msg));
            return false;
        }
        if records.is_empty() {
            return false;
        }
        self.push(writer, ChannelElement::Buffer(records));
        true
    }

    fn on_event(&self, data: &[u8]) {
        let mut st = self.state.lock();
        let e = match postcard::from_bytes::<WireEvent>(data) {
            Ok(WireEvent::Watermark(w)) => ChannelElement::Watermark(w),
            Ok(WireEvent::WatermarkStatus(s)) => ChannelElement::WatermarkStatus(s),
            Ok(WireEvent::Barrier(b)) => ChannelElement::Barrier(b),
            Ok(WireEvent::EndOfData) => ChannelElement::EndOfData,
            Ok(WireEvent::EndOfPartition) => ChannelElement::EndOfPartition,
            Err(e) => {
                ChannelElement::Failure(format!("channel {}: undecodable event: {e}", self.id))
            }
        };
        self.push(&mut st.1, e);
    }

    fn on_failure(&self, reason: &str) {
        let mut st = self.state.lock();
        self.push(&mut st.1, ChannelElement::Failure(reason.to_string()));
    }
}

/// Releases a producer blocked on a remote channel when the job is cancelled.
pub struct CancelOutput(pub Arc<OutputChannel>);

impl Cancellable for CancelOutput {
    fn cancel(&self) {
        self.0.cancel();
    }
}

/// The typed halves of a remote channel for one input of an operator, chosen by the consumer's
/// Why a remote input channel could not be connected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectInboundError {
    /// The gate writer is not of the channel's record type (a bug in Eddy's wiring).
    #[error("channel {0}: gate writer has the wrong record type")]
    WrongRecordType(ChannelId),
    /// The producer's taskmanager could not be asked for the partition.
    #[error("channel {id}: {source}")]
    Network {
        /// The channel.
        id: ChannelId,
        /// What the network stack said.
        #[source]
        source: NetworkError,
    },
}

/// factory (which knows the record type) and used type-erased while a task is built.
#[derive(Clone, Copy)]
pub struct RemoteCodec {
    /// Requests channel `id` from the producer's taskmanager (`producer`) and feeds what
    /// arrives into the gate through `gate_writer` (an erased `ChannelWriter<T>` of the
    /// consumer's gate), granting `credit` buffers.
    pub connect_inbound: fn(
        gate_writer: Erased,
        net: &NetworkEnvironment,
        id: ChannelId,
        producer: &str,
        credit: u32,
    ) -> Result<(), ConnectInboundError>,
    /// An erased `ChannelWriter<T>` sending through `channel`.
    pub writer: fn(channel: Arc<OutputChannel>, pool: Arc<NetworkBufferPool>) -> Erased,
}

fn connect_inbound<T: Data>(
    gate_writer: Erased,
    net: &NetworkEnvironment,
    id: ChannelId,
    producer: &str,
    credit: u32,
) -> Result<(), ConnectInboundError> {
    let writer = gate_writer
        .downcast::<ChannelWriter<T>>()
        .map_err(|_| ConnectInboundError::WrongRecordType(id))?;
    let handler = Arc::new(RemoteInbound {
        id,
        state: Mutex::new((RecordReassembler::new(), *writer)),
    });
    let credits = net
        .request_partition(id, producer, credit, handler.clone())
        .map_err(|source| ConnectInboundError::Network { id, source })?;
    // The consumer task starts only after its whole deployment is wired, so no buffer can be
    // taken before the listener is in place.
    handler
        .state
        .lock()
        .1
        .set_credit_listener(Box::new(move || credits.add_credit(1)));
    Ok(())
}

fn remote_writer<T: Data>(channel: Arc<OutputChannel>, pool: Arc<NetworkBufferPool>) -> Erased {
    Box::new(ChannelWriter::<T>::remote(RemoteWriter::new(channel, pool)))
}

/// The codec of records of type `T`.
pub fn codec<T: Data>() -> RemoteCodec {
    RemoteCodec {
        connect_inbound: connect_inbound::<T>,
        writer: remote_writer::<T>,
    }
}
