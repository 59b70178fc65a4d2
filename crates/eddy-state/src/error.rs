//! The crate's single error type, [`StateError`].
//!
//! Every fallible state operation returns it: misuse (no current key, incompatible
//! re-registration), snapshots that do not fit this backend, and (de)serialization failures. User
//! data never makes this crate panic.

use eddy_core::keygroup::KeyGroupRange;

/// Everything that can go wrong when accessing, snapshotting or restoring keyed state or timers.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// State was accessed before `set_current_key` (Flink's message, plus the state's name).
    #[error(
        "No key set. This method should not be called outside of a keyed context (state '{state}')."
    )]
    NoCurrentKey {
        /// The state that was accessed.
        state: String,
    },

    /// Keyed state was requested outside a keyed stream (Flink: "Keyed state can only be used on
    /// a 'keyed stream', i.e., after a 'keyBy()' operation.").
    #[error("keyed state '{state}' can only be used on a keyed stream, i.e. after key_by()")]
    NotKeyed {
        /// The state that was requested.
        state: String,
    },

    /// The current key hashes into a key group this backend does not own: records were routed to
    /// the wrong subtask.
    #[error("state '{state}': the current key is in key group {key_group}, which is outside this backend's key groups {range:?}")]
    KeyGroupOutOfRange {
        /// The state that was accessed.
        state: String,
        /// The current key's key group.
        key_group: usize,
        /// The key groups this backend owns.
        range: KeyGroupRange,
    },

    /// A state name was registered (or restored) with a different kind or different types.
    #[error("state '{name}' is {existing}, it cannot be used as {requested}")]
    IncompatibleState {
        /// The state's name.
        name: String,
        /// What the state already is (kind and types).
        existing: String,
        /// What was requested.
        requested: String,
    },

    /// A state handle was used with a backend that did not create it.
    #[error("state handle #{index} does not belong to this keyed state backend")]
    UnknownHandle {
        /// The handle's index.
        index: usize,
    },

    /// A snapshot was taken with another max parallelism: key groups would not line up.
    #[error("cannot restore a snapshot taken with max parallelism {snapshot} into a backend with max parallelism {backend}")]
    MaxParallelismMismatch {
        /// The snapshot's max parallelism.
        snapshot: usize,
        /// This backend's max parallelism.
        backend: usize,
    },

    /// A snapshot was taken with another key (or timer namespace) type.
    #[error(
        "cannot restore {what} of type {snapshot} into a backend whose {what} type is {backend}"
    )]
    TypeMismatch {
        /// What differs ("key" or "timer namespace").
        what: &'static str,
        /// The type recorded in the snapshot.
        snapshot: String,
        /// This backend's type.
        backend: String,
    },

    /// Two snapshots handed to one restore both hold the same key group of the same state.
    #[error(
        "key group {key_group} of state '{state}' is present in more than one restored snapshot"
    )]
    DuplicateKeyGroup {
        /// The state (or "timers").
        state: String,
        /// The duplicated key group.
        key_group: usize,
    },

    /// Writing state into snapshot bytes failed.
    #[error("could not serialize state '{state}': {source}")]
    Serialization {
        /// The state (or "timers").
        state: String,
        /// The serializer's error.
        #[source]
        source: postcard::Error,
    },

    /// Reading snapshot bytes failed: corrupt bytes, or the state was registered with types other
    /// than the ones it was written with.
    #[error("could not deserialize state '{state}' (key group {key_group:?}); was it registered with other types than it was written with? {source}")]
    Deserialization {
        /// The state (or "timers" / "snapshot").
        state: String,
        /// The key group whose bytes failed, if known.
        key_group: Option<usize>,
        /// The deserializer's error.
        #[source]
        source: postcard::Error,
    },

    /// A snapshot's structure is inconsistent (e.g. it references a state it does not describe).
    #[error("corrupt keyed state snapshot: {0}")]
    CorruptSnapshot(String),
}
