//! State time-to-live: Flink's `StateTtlConfig` (processing time only) and the expiry rules the
//! state handles apply.
//!
//! Every stored value carries the timestamp of its last write (or read, with
//! [`UpdateType::OnReadAndWrite`]) whether or not TTL is enabled, so TTL can be switched on or
//! off for a state across a restore without migrating its bytes.
//!
//! Expired entries are hidden from reads and dropped by the read that finds them. Entries of
//! keys that are never read again are removed by Flink's cleanup strategies
//! ([`CleanupStrategies`]): incremental cleanup (on by default, as in Flink: every state access
//! checks a few more entries) and cleanup on full snapshot (expired entries are dropped before
//! a checkpoint or savepoint is written, so a restore never brings them back).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When the last-access timestamp of an entry is refreshed (Flink's `StateTtlConfig.UpdateType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdateType {
    /// Only creating and writing an entry restarts its time to live (Flink's default).
    #[default]
    OnCreateAndWrite,
    /// Reading an entry restarts its time to live too.
    OnReadAndWrite,
}

/// Whether an expired entry that has not been removed yet may still be returned (Flink's
/// `StateTtlConfig.StateVisibility`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateVisibility {
    /// Expired entries are never returned (Flink's default).
    #[default]
    NeverReturnExpired,
    /// An expired entry is returned once, by the read that removes it.
    ReturnExpiredIfNotCleanedUp,
}

/// Incremental cleanup: how many entries each state access checks (Flink's
/// `IncrementalCleanupStrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IncrementalCleanup {
    /// Entries checked per access (Flink's default: 5). The heap backend spends this budget a
    /// key group at a time: a key group is swept once the accesses since the last sweep have
    /// earned as many checks as it has entries.
    pub cleanup_size: usize,
    /// Whether selecting a key for a record (every record of a keyed operator) counts as an
    /// access too, so state is cleaned even by records that do not touch it.
    pub run_cleanup_for_every_record: bool,
}

/// Which background cleanups remove expired entries (Flink's `StateTtlConfig.CleanupStrategies`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CleanupStrategies {
    full_snapshot: bool,
    incremental: Option<IncrementalCleanup>,
}

impl Default for CleanupStrategies {
    /// Flink's default: incremental cleanup of 5 entries per access, not on every record.
    fn default() -> Self {
        CleanupStrategies {
            full_snapshot: false,
            incremental: Some(IncrementalCleanup {
                cleanup_size: 5,
                run_cleanup_for_every_record: false,
            }),
        }
    }
}

impl CleanupStrategies {
    /// Whether expired entries are dropped before a full snapshot.
    pub fn in_full_snapshot(&self) -> bool {
        self.full_snapshot
    }

    /// The incremental cleanup, if enabled.
    pub fn incremental(&self) -> Option<IncrementalCleanup> {
        self.incremental
    }
}

/// Time-to-live configuration of a state, in processing time (Flink's `StateTtlConfig`).
///
/// Build it with [`StateTtlConfig::new_builder`] and attach it with a descriptor's
/// `enable_time_to_live`. The backend's clock is `KeyedStateBackend::set_current_time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StateTtlConfig {
    ttl: Duration,
    update_type: UpdateType,
    state_visibility: StateVisibility,
    cleanup: CleanupStrategies,
}

impl StateTtlConfig {
    /// A builder for a time to live of `ttl`.
    pub fn new_builder(ttl: Duration) -> StateTtlConfigBuilder {
        StateTtlConfigBuilder {
            config: StateTtlConfig {
                ttl,
                update_type: UpdateType::default(),
                state_visibility: StateVisibility::default(),
                cleanup: CleanupStrategies::default(),
            },
        }
    }

    /// How long an entry lives after its last access.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Which accesses refresh an entry.
    pub fn update_type(&self) -> UpdateType {
        self.update_type
    }

    /// Whether expired entries may be returned.
    pub fn state_visibility(&self) -> StateVisibility {
        self.state_visibility
    }

    /// How expired entries are cleaned up besides on read.
    pub fn cleanup_strategies(&self) -> CleanupStrategies {
        self.cleanup
    }
}

/// Builder of [`StateTtlConfig`] (Flink's `StateTtlConfig.Builder`).
#[derive(Clone, Copy, Debug)]
pub struct StateTtlConfigBuilder {
    config: StateTtlConfig,
}

impl StateTtlConfigBuilder {
    /// Sets which accesses refresh an entry.
    pub fn set_update_type(mut self, update_type: UpdateType) -> Self {
        self.config.update_type = update_type;
        self
    }

    /// Sets whether expired entries may be returned.
    pub fn set_state_visibility(mut self, visibility: StateVisibility) -> Self {
        self.config.state_visibility = visibility;
        self
    }

    /// Drops expired entries before every full snapshot (Flink's `cleanupFullSnapshot`).
    pub fn cleanup_full_snapshot(mut self) -> Self {
        self.config.cleanup.full_snapshot = true;
        self
    }

    /// Checks `cleanup_size` more entries on every state access, and on every record if
    /// `run_cleanup_for_every_record` (Flink's `cleanupIncrementally`).
    pub fn cleanup_incrementally(
        mut self,
        cleanup_size: usize,
        run_cleanup_for_every_record: bool,
    ) -> Self {
        self.config.cleanup.incremental = Some(IncrementalCleanup {
            cleanup_size: cleanup_size.max(1),
            run_cleanup_for_every_record,
        });
        self
    }

    /// Turns the default incremental cleanup off; expired entries are then removed only when
    /// read, or before a full snapshot if that is enabled (Flink's
    /// `disableCleanupInBackground`).
    pub fn disable_cleanup_in_background(mut self) -> Self {
        self.config.cleanup.incremental = None;
        self
    }

    /// Sets the time to live.
    pub fn set_ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// The configuration.
    pub fn build(self) -> StateTtlConfig {
        self.config
    }
}

/// [`StateTtlConfig`] flattened for the hot path: milliseconds and two flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ttl {
    ttl_ms: i64,
    pub(crate) update_on_read: bool,
    pub(crate) return_expired: bool,
    pub(crate) full_snapshot_cleanup: bool,
    pub(crate) incremental: Option<IncrementalCleanup>,
}

impl Ttl {
    pub(crate) fn from_config(config: &StateTtlConfig) -> Self {
        Ttl {
            ttl_ms: i64::try_from(config.ttl.as_millis()).unwrap_or(i64::MAX),
            update_on_read: config.update_type == UpdateType::OnReadAndWrite,
            return_expired: config.state_visibility == StateVisibility::ReturnExpiredIfNotCleanedUp,
            full_snapshot_cleanup: config.cleanup.full_snapshot,
            incremental: config.cleanup.incremental,
        }
    }

    /// Flink's `TtlUtils.expired`: an entry expires once `last_access + ttl <= now`.
    #[inline]
    pub(crate) fn expired(&self, last_access: i64, now: i64) -> bool {
        last_access.saturating_add(self.ttl_ms) <= now
    }
}

/// Whether an entry last accessed at `ts` is expired under an optional TTL.
#[inline]
pub(crate) fn is_expired(ttl: Option<Ttl>, ts: i64, now: i64) -> bool {
    match ttl {
        Some(t) => t.expired(ts, now),
        None => false,
    }
}

/// A stored value with the processing time of its last access (Flink's `TtlValue`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TtlValue<V> {
    pub(crate) value: V,
    pub(crate) ts: i64,
}

impl<V> TtlValue<V> {
    #[inline]
    pub(crate) fn new(value: V, ts: i64) -> Self {
        TtlValue { value, ts }
    }
}
