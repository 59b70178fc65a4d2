//! Snapshot formats of keyed state and timers: plain serde structs whose payload is split by key
//! group, so a checkpoint taken at one parallelism can be restored at another.
//!
//! This module only produces and consumes bytes; writing them to storage is the checkpointing
//! code's job. Inside a key group, the keyed-state payload is a frame of
//! `count, (state index, length, bytes)*` (postcard varints), where `state index` points into
//! [`KeyedStateSnapshot::states`] and `bytes` are the postcard-encoded entries of that state.

use crate::descriptor::StateKind;
use crate::error::StateError;
use eddy_core::keygroup::KeyGroupRange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a snapshot records about one state, checked when the state is registered after restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMeta {
    /// The state's name.
    pub name: String,
    /// The state's kind.
    pub kind: StateKind,
    /// The namespace type (`()` for plain keyed state), as `std::any::type_name`.
    pub namespace_type: String,
    /// The stored value type(s) as `std::any::type_name`: `V`, `UK -> UV` or the accumulator.
    pub value_type: String,
}

impl StateMeta {
    /// "ValueState<i64> in namespace ()", for error messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{}<{}> in namespace {}",
            self.kind, self.value_type, self.namespace_type
        )
    }

    /// Whether the other meta describes the same kind and types (the name is not compared).
    pub(crate) fn same_layout(&self, other: &StateMeta) -> bool {
        self.kind == other.kind
            && self.namespace_type == other.namespace_type
            && self.value_type == other.value_type
    }
}

/// A snapshot of a [`crate::KeyedStateBackend`].
///
/// Type names (`std::any::type_name`) are compared on restore: they are exact within one build of
/// a job, but a toolchain upgrade or moving a type to another module changes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedStateSnapshot {
    /// The max parallelism the key groups were computed with.
    pub max_parallelism: usize,
    /// The key groups of the backend that took the snapshot.
    pub key_group_range: KeyGroupRange,
    /// The key type.
    pub key_type: String,
    /// Every state, registered or restored-but-not-yet-registered.
    pub states: Vec<StateMeta>,
    /// Per non-empty key group, the framed bytes of every state.
    #[serde(with = "bytes_map")]
    pub key_groups: BTreeMap<usize, Vec<u8>>,
}

/// A snapshot of an [`crate::InternalTimerService`]. Per key group: the postcard bytes of
/// `(event-time timers, processing-time timers)`, each a list of `(key, namespace, timestamp)` in
/// no particular order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerServiceSnapshot {
    /// The max parallelism the key groups were computed with.
    pub max_parallelism: usize,
    /// The key groups of the service that took the snapshot.
    pub key_group_range: KeyGroupRange,
    /// The key type.
    pub key_type: String,
    /// The namespace type.
    pub namespace_type: String,
    /// Per non-empty key group, the timers' bytes.
    #[serde(with = "bytes_map")]
    pub key_groups: BTreeMap<usize, Vec<u8>>,
}

/// Serde for the per-key-group bytes with each value as a byte string, so postcard copies it in
/// one go instead of one `u8` element at a time (it was a tenth of q5's checkpoint cost). The
/// encoding is the same as a `Vec<u8>`'s (postcard: length and raw bytes; JSON: an array of
/// numbers, accepted back as a sequence).
mod bytes_map {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;
    use std::fmt;

    struct Bytes<'a>(&'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<usize, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(map.len()))?;
        for (key_group, bytes) in map {
            m.serialize_entry(key_group, &Bytes(bytes))?;
        }
        m.end()
    }

    struct ByteBuf(Vec<u8>);

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_byte_buf(ByteBufVisitor)
        }
    }

    struct ByteBufVisitor;

    impl<'de> Visitor<'de> for ByteBufVisitor {
        type Value = ByteBuf;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
            Ok(ByteBuf(v.to_vec()))
        }

        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
            Ok(ByteBuf(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
            // The hint comes from the input: cap what it can make us reserve.
            let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element()? {
                v.push(b);
            }
            Ok(ByteBuf(v))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<usize, Vec<u8>>, D::Error> {
        let map = BTreeMap::<usize, ByteBuf>::deserialize(deserializer)?;
        Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

macro_rules! bytes_methods {
    ($t:ty, $what:literal) => {
        impl $t {
            /// The snapshot as postcard bytes.
            pub fn to_bytes(&self) -> Result<Vec<u8>, StateError> {
                postcard::to_stdvec(self).map_err(|source| StateError::Serialization {
                    state: $what.to_string(),
                    source,
                })
            }

            /// Reads a snapshot written by `to_bytes`.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
                postcard::from_bytes(bytes).map_err(|source| StateError::Deserialization {
                    state: $what.to_string(),
                    key_group: None,
                    source,
                })
            }
        }
    };
}

bytes_methods!(KeyedStateSnapshot, "keyed state snapshot");
bytes_methods!(TimerServiceSnapshot, "timer service snapshot");

/// Checks the max parallelism of a snapshot against a backend's.
pub(crate) fn check_max_parallelism(snapshot: usize, backend: usize) -> Result<(), StateError> {
    if snapshot == backend {
        Ok(())
    } else {
        Err(StateError::MaxParallelismMismatch { snapshot, backend })
    }
}

/// Checks a type name recorded in a snapshot.
pub(crate) fn check_type(
    what: &'static str,
    snapshot: &str,
    backend: &'static str,
) -> Result<(), StateError> {
    if snapshot == backend {
        Ok(())
    } else {
        Err(StateError::TypeMismatch {
            what,
            snapshot: snapshot.to_string(),
            backend: backend.to_string(),
        })
    }
}

/// Appends `v` as a postcard (LEB128) varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a postcard varint.
pub(crate) fn take_varint(bytes: &[u8], key_group: usize) -> Result<(usize, &[u8]), StateError> {
    postcard::take_from_bytes::<usize>(bytes).map_err(|source| StateError::Deserialization {
        state: "snapshot frame".to_string(),
        key_group: Some(key_group),
        source,
    })
}

/// Splits one key group's frame into `(state index, bytes)` chunks.
pub(crate) fn read_frame(
    bytes: &[u8],
    key_group: usize,
) -> Result<Vec<(usize, &[u8])>, StateError> {
    let (count, mut rest) = take_varint(bytes, key_group)?;
    let mut chunks = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let (index, r) = take_varint(rest, key_group)?;
        let (len, r) = take_varint(r, key_group)?;
        if r.len() < len {
            return Err(StateError::CorruptSnapshot(format!(
                "key group {key_group}: chunk of state #{index} is truncated"
            )));
        }
        let (data, r) = r.split_at(len);
        chunks.push((index, data));
        rest = r;
    }
    Ok(chunks)
}
