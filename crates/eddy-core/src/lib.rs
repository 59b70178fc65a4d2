//! Eddy's shared vocabulary, used by every other crate.
//!
//! Owns: stream elements ([`element`]), the [`Data`]/[`Key`] bounds, key groups and the stable
//! key hash ([`keygroup`]), job and vertex ids ([`ids`]), partitioner kinds and the serializable
//! [`jobgraph::JobGraph`], execution configuration ([`config`]) and base errors.
//!
//! Must not touch: threads, tokio, files, sockets. Everything here is plain data and pure
//! functions so that the runtime, the cluster and the client agree on one model.
#![warn(missing_docs)]

pub mod checkpointing;
pub mod cluster_config;
pub mod codec;
pub mod config;
pub mod element;
pub mod error;
pub mod ids;
pub mod jobgraph;
pub mod keygroup;
pub mod partitioner;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::hash::Hash;

/// What a record flowing through a stream must be: owned, cloneable (fan-out and broadcast copy
/// records), sendable between task threads, printable for `print()` and serializable so it can
/// cross a process boundary and live in state snapshots.
pub trait Data: Clone + Send + Debug + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Debug + Serialize + DeserializeOwned + 'static> Data for T {}

/// A key of a keyed stream: data that can be compared and hashed. Key groups use
/// [`keygroup::stable_hash`], which hashes through [`Hash`] with a fixed, non-random hasher.
pub trait Key: Data + Eq + Hash {}
impl<T: Data + Eq + Hash> Key for T {}

pub use checkpointing::{
    CheckpointConfig, CheckpointingMode, ExternalizedCheckpointRetention, ParseClaimModeError,
    RecoveryClaimMode, RestartStrategyConfig, SavepointRestoreSettings,
};
pub use element::{StreamRecord, Watermark, WatermarkStatus};
pub use error::CoreError;
pub use ids::{JobId, OperatorId, ParseJobIdError};
