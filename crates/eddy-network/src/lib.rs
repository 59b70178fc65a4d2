//! Eddy's network stack (DESIGN §3): how records cross from a producer subtask on one
//! taskmanager to a consumer subtask on another.
//!
//! - [`pool::NetworkBufferPool`]: a bounded pool of fixed-size segments per taskmanager
//!   (Flink's `NetworkBufferPool`, 32 KiB buffers by default). Producers serialize records into
//!   segments; a segment returns to the pool once the connection wrote it to the socket.
//! - [`spanning`]: records as length-prefixed bytes in segments; a record that does not fit
//!   continues in the next segment (Flink's spanning record serializer), and the consumer
//!   reassembles it.
//! - [`environment::NetworkEnvironment`]: the taskmanager's data port and its connections:
//!   one multiplexed TCP connection per pair of taskmanagers, frames tagged with their
//!   channel. **Credit-based flow control**: the consumer announces credits (one per buffer its
//!   input gate can hold); a producer ships a buffer only against a credit and blocks without
//!   one, which is how backpressure crosses machines. Events (watermarks, barriers,
//!   end-of-partition) need no credit but keep their place in the channel's order.
//!
//! This crate moves bytes. What the bytes mean (records of a type, stream events) is decided
//! by `eddy-runtime`, which serializes typed elements into the segments handed out here.
#![warn(missing_docs)]

pub mod environment;
mod frame;
pub mod pool;
pub mod spanning;

pub use environment::{
    ChannelId, CreditReturner, InboundHandler, NetworkEnvironment, NetworkError, NetworkLimits,
    OutputChannel,
};
pub use pool::{NetworkBufferPool, Segment};
