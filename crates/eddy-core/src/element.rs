//! Stream elements: records with their event timestamp, watermarks and watermark status.

use serde::{Deserialize, Serialize};

/// A record in a stream: the value and its event timestamp (milliseconds since the epoch), if
/// the source or a timestamp assigner gave it one.
///
/// The timestamp is stored as a plain `i64` with [`StreamRecord::NO_TIMESTAMP`] as "none" so a
/// record costs 8 bytes of overhead, not 16.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord<T> {
    /// The user's value.
    pub value: T,
    /// Event timestamp in ms, or [`StreamRecord::NO_TIMESTAMP`].
    pub timestamp: i64,
}

impl<T> StreamRecord<T> {
    /// Marker for "this record has no event timestamp".
    pub const NO_TIMESTAMP: i64 = i64::MIN;

    /// A record without a timestamp.
    #[inline]
    pub fn new(value: T) -> Self {
        StreamRecord {
            value,
            timestamp: Self::NO_TIMESTAMP,
        }
    }

    /// A record with an event timestamp.
    #[inline]
    pub fn with_timestamp(value: T, timestamp: i64) -> Self {
        StreamRecord { value, timestamp }
    }

    /// The event timestamp, if any.
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        (self.timestamp != Self::NO_TIMESTAMP).then_some(self.timestamp)
    }
}

/// A watermark: the assertion that no more records with a timestamp `<= timestamp` will come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Watermark {
    /// Event time in ms.
    pub timestamp: i64,
}

impl Watermark {
    /// The watermark a bounded input emits at its end: every event-time timer fires.
    pub const MAX: Watermark = Watermark {
        timestamp: i64::MAX,
    };
    /// The watermark before any was received.
    pub const MIN: Watermark = Watermark {
        timestamp: i64::MIN,
    };

    /// A watermark at `timestamp` ms.
    pub fn new(timestamp: i64) -> Self {
        Watermark { timestamp }
    }
}

/// Whether a stream currently carries watermarks (Flink's `WatermarkStatus`). An idle stream
/// (e.g. a source split with no data) promises nothing about event time, so consumers leave
/// it out of the minimum over their inputs until it becomes active again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WatermarkStatus {
    /// The stream emits watermarks and holds back its consumers' event time.
    Active,
    /// The stream emits neither records nor watermarks for a while.
    Idle,
}

impl WatermarkStatus {
    /// Whether this is [`WatermarkStatus::Idle`].
    pub fn is_idle(self) -> bool {
        self == WatermarkStatus::Idle
    }

    /// Whether this is [`WatermarkStatus::Active`].
    pub fn is_active(self) -> bool {
        self == WatermarkStatus::Active
    }
}
