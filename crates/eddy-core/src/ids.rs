//! Identifiers: jobs, operators (stream nodes) and job vertices.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A job's id: 16 random-looking bytes shown as 32 hex digits, like Flink's `JobID`. Serialized
/// as that hex string: a 128-bit JSON number would lose digits in most JSON readers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u128);

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A string that is not a job id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id '{0}': expected 32 hex digits")]
pub struct ParseJobIdError(pub String);

impl std::str::FromStr for JobId {
    type Err = ParseJobIdError;

    /// 32 hex digits, as [`JobId`] displays.
    fn from_str(s: &str) -> Result<Self, ParseJobIdError> {
        u128::from_str_radix(s, 16)
            .ok()
            .filter(|_| s.len() == 32)
            .map(JobId)
            .ok_or_else(|| ParseJobIdError(s.to_string()))
    }
}

impl JobId {
    /// A fresh id from the clock, the process id and a counter: unique on one machine without
    /// pulling in a random number crate.
    pub fn generate() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
        let pid = std::process::id() as u128;
        let mixed = crate::keygroup::fmix64((nanos as u64) ^ (n as u64).rotate_left(32)) as u128
            | ((crate::keygroup::fmix64((pid << 20 | n) as u64 ^ (nanos >> 64) as u64) as u128)
                << 64);
        JobId(mixed)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// The id of one operator (a StreamGraph node). Stable for one program: assigned in the order
/// the program creates operators.
pub type OperatorId = u32;

/// The id of a JobGraph vertex (a chain of operators): the id of its head operator.
pub type VertexId = u32;
