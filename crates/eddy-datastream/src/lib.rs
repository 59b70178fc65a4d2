//! Eddy's DataStream API (DESIGN §2): what a Flink user writes.
//!
//! Owns: [`StreamExecutionEnvironment`], [`DataStream`], [`KeyedStream`], [`ConnectedStreams`],
//! the interval join ([`IntervalJoin`]), the StreamGraph ([`graph`]) and its translation to a
//! JobGraph with Flink's chaining rules.
//! Must not touch: how tasks run (eddy-runtime) or are scheduled (eddy-cluster).
//!
//! Mistakes in the program (a zero parallelism, a forward edge between different
//! parallelisms, a uid used twice, interval join bounds with lower > upper) are collected while it is built and reported by `execute`
//! before anything runs.
#![warn(missing_docs)]

pub mod broadcast;
pub mod connected;
pub mod env;
pub mod graph;
pub mod interval_join;
pub mod join;
pub mod keyed;
pub mod stream;
pub mod windowed;

pub use broadcast::{BroadcastConnectedStream, BroadcastStream, KeyedBroadcastConnectedStream};
pub use connected::{ConnectedStreams, KeyedConnectedStreams};
pub use env::StreamExecutionEnvironment;
pub use interval_join::{IntervalJoin, IntervalJoined};
pub use join::{CoGroupedStreams, JoinedStreams, TaggedUnion};
pub use keyed::{Field, KeyedStream};
pub use stream::{
    CollectHandle, DataStream, DataStreamSink, SingleOutputStreamOperator, WriteMode,
};
pub use windowed::{AllWindowedStream, WindowedStream};
