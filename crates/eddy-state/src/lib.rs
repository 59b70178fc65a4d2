//! Eddy's keyed state: the heap keyed state backend (Flink's `HeapKeyedStateBackend`), its
//! state kinds with time-to-live, key-group snapshots for rescaling, and the internal timer
//! service of keyed operators.
//!
//! Owns: [`KeyedStateBackend`], the descriptors and handles of value, list, map, reducing and
//! aggregating state, [`StateTtlConfig`], [`KeyedStateSnapshot`], [`InternalTimerService`] and
//! [`StateError`]. Must not touch: threads, files, the network; checkpoint storage and the
//! operator lifecycle belong to the runtime, which hands this crate keys, times and bytes.
//!
//! # Why handles take the store explicitly
//!
//! In Flink a `ValueState` object holds a reference to the backend and reads the current key
//! from it. In Rust a handle holding `&mut KeyedStateBackend` would borrow the backend for as
//! long as the user function lives, and a shared `Arc<Mutex<_>>` would cost a lock per access
//! and make user functions depend on interior mutability. So a handle ([`ValueState`],
//! [`ListState`], ...) is a `Copy + Send` typed id (the state's index plus phantom types),
//! obtained once in `open()`, and every operation takes the [`KeyedStateStore`] (the backend,
//! or a runtime context wrapping it) as an argument:
//!
//! ```
//! use eddy_core::keygroup::KeyGroupRange;
//! use eddy_state::{KeyedStateBackend, ValueStateDescriptor};
//!
//! let mut backend = KeyedStateBackend::<String>::new(KeyGroupRange::all(128), 128);
//! let count = backend.get_state(&ValueStateDescriptor::<u64>::new("count"))?;
//! backend.set_current_key("alice".to_string());
//! let n = count.value(&mut backend)?.unwrap_or(0);
//! count.update(&mut backend, n + 1)?;
//! assert_eq!(count.value(&mut backend)?, Some(1));
//! # Ok::<(), eddy_state::StateError>(())
//! ```
//!
//! Each access is one index into the backend's state list, one `TypeId` check and one hash
//! lookup with the borrowed `(key, namespace)`; no lock, no allocation and no key clone except
//! when an entry is created.
#![warn(missing_docs)]

pub mod backend;
pub mod descriptor;
pub mod error;
pub mod functions;
pub mod handles;
mod prefetch;
pub mod snapshot;
mod table;
pub mod timers;
pub mod ttl;

#[cfg(test)]
mod tests;

pub use backend::{KeyedStateBackend, KeyedStateStore};
pub use descriptor::{
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor,
    StateKind, ValueStateDescriptor,
};
pub use error::StateError;
pub use functions::{AggregateFunction, ReduceFn};
pub use handles::{AggregatingState, ListState, MapState, ReducingState, ValueState};
pub use snapshot::{KeyedStateSnapshot, StateMeta, TimerServiceSnapshot};
pub use timers::{InternalTimer, InternalTimerService};
pub use ttl::{
    CleanupStrategies, IncrementalCleanup, StateTtlConfig, StateTtlConfigBuilder, StateVisibility,
    UpdateType,
};
