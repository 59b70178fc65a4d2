//! Checkpointing, restart and restore settings (Flink's `execution.checkpointing.*`,
//! `state.checkpoints.*`, `restart-strategy.*` and `execution.savepoint.*` options), shipped
//! inside the JobGraph's [`crate::ExecutionConfig`].

use serde::{Deserialize, Serialize};

/// Exactly-once aligns barriers at tasks with several input channels; at-least-once lets
/// records of channels that already delivered the barrier through (Flink's `CheckpointingMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointingMode {
    /// Align barriers: state reflects every record before the barrier and none after it.
    #[default]
    ExactlyOnce,
    /// Do not align: after a restore some records may be processed twice, none lost.
    AtLeastOnce,
}

/// What happens to retained checkpoints when the job is cancelled (Flink's
/// `execution.checkpointing.externalized-checkpoint-retention`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalizedCheckpointRetention {
    /// Checkpoints are deleted when the job is cancelled (they stay when it fails).
    DeleteOnCancellation,
    /// Checkpoints stay on cancellation, so the job can be resumed from the latest one.
    RetainOnCancellation,
    /// Checkpoints are deleted when the job ends in any way (Flink's default).
    #[default]
    NoExternalizedCheckpoints,
}

/// Checkpointing of one job. Off while `interval_ms` is `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// `execution.checkpointing.interval`: ms between checkpoint triggers; `None` disables
    /// checkpointing.
    pub interval_ms: Option<u64>,
    /// `execution.checkpointing.mode`.
    pub mode: CheckpointingMode,
    /// `execution.checkpointing.timeout`: a checkpoint not complete after this many ms is
    /// aborted (Flink: 10 min).
    pub timeout_ms: u64,
    /// `execution.checkpointing.min-pause`: ms from the end of one checkpoint to the trigger of
    /// the next.
    pub min_pause_ms: u64,
    /// `execution.checkpointing.max-concurrent-checkpoints`.
    pub max_concurrent: usize,
    /// `execution.checkpointing.tolerable-failed-checkpoints`: consecutive checkpoint failures
    /// the job survives; one more fails the job (Flink: 0).
    pub tolerable_failed: usize,
    /// `execution.checkpointing.externalized-checkpoint-retention`.
    pub retention: ExternalizedCheckpointRetention,
    /// `state.checkpoints.dir`: the checkpoint storage URL (`file:///…` or a plain path);
    /// `None` keeps checkpoints in the JobManager's memory.
    pub storage: Option<String>,
    /// `state.savepoints.dir`: default target of savepoints triggered without a directory.
    pub savepoint_dir: Option<String>,
    /// `state.checkpoints.num-retained`: completed checkpoints kept (at least 1).
    pub num_retained: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            interval_ms: None,
            mode: CheckpointingMode::ExactlyOnce,
            timeout_ms: 10 * 60 * 1000,
            min_pause_ms: 0,
            max_concurrent: 1,
            tolerable_failed: 0,
            retention: ExternalizedCheckpointRetention::NoExternalizedCheckpoints,
            storage: None,
            savepoint_dir: None,
            num_retained: 1,
        }
    }
}

impl CheckpointConfig {
    /// Whether periodic checkpoints are on.
    pub fn is_enabled(&self) -> bool {
        self.interval_ms.is_some()
    }
}

/// How a failed job is restarted (Flink's `restart-strategy.type` and its options).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RestartStrategyConfig {
    /// `none`: the first failure fails the job.
    None,
    /// `fixed-delay`: up to `attempts` restarts, `delay_ms` apart.
    FixedDelay {
        /// `restart-strategy.fixed-delay.attempts`.
        attempts: u32,
        /// `restart-strategy.fixed-delay.delay`.
        delay_ms: u64,
    },
    /// `exponential-delay`: the delay grows by `multiplier` up to `max_backoff_ms`, and resets
    /// after the job ran `reset_threshold_ms` without failing.
    ExponentialDelay {
        /// `restart-strategy.exponential-delay.initial-backoff`.
        initial_backoff_ms: u64,
        /// `restart-strategy.exponential-delay.max-backoff`.
        max_backoff_ms: u64,
        /// `restart-strategy.exponential-delay.backoff-multiplier`.
        multiplier: f64,
        /// `restart-strategy.exponential-delay.reset-backoff-threshold`.
        reset_threshold_ms: u64,
        /// `restart-strategy.exponential-delay.jitter-factor` (0..=1).
        jitter: f64,
        /// `restart-strategy.exponential-delay.attempts-before-reset-backoff`.
        attempts: u32,
    },
    /// `failure-rate`: restart after `delay_ms` unless more than `max_failures` happened within
    /// the last `interval_ms`.
    FailureRate {
        /// `restart-strategy.failure-rate.max-failures-per-interval`.
        max_failures: u32,
        /// `restart-strategy.failure-rate.failure-rate-interval`.
        interval_ms: u64,
        /// `restart-strategy.failure-rate.delay`.
        delay_ms: u64,
    },
}

impl RestartStrategyConfig {
    /// Flink's defaults for `fixed-delay`: 1 attempt, 1 s apart.
    pub fn fixed_delay_default() -> Self {
        RestartStrategyConfig::FixedDelay {
            attempts: 1,
            delay_ms: 1000,
        }
    }

    /// Flink's defaults for `failure-rate`: at most 1 failure per minute, restarts 1 s apart.
    pub fn failure_rate_default() -> Self {
        RestartStrategyConfig::FailureRate {
            max_failures: 1,
            interval_ms: 60_000,
            delay_ms: 1000,
        }
    }

    /// The strategy's `restart-strategy.type` name: `none`, `fixed-delay`, `exponential-delay`
    /// or `failure-rate`.
    pub fn type_name(&self) -> &'static str {
        match self {
            RestartStrategyConfig::None => "none",
            RestartStrategyConfig::FixedDelay { .. } => "fixed-delay",
            RestartStrategyConfig::ExponentialDelay { .. } => "exponential-delay",
            RestartStrategyConfig::FailureRate { .. } => "failure-rate",
        }
    }

    /// Flink's defaults for `exponential-delay` (the default strategy once checkpointing is on).
    pub fn exponential_default() -> Self {
        RestartStrategyConfig::ExponentialDelay {
            initial_backoff_ms: 1000,
            max_backoff_ms: 60_000,
            multiplier: 1.5,
            reset_threshold_ms: 3_600_000,
            jitter: 0.1,
            attempts: u32::MAX,
        }
    }
}

/// Where a job's state starts from (Flink's `execution.savepoint.path`,
/// `execution.savepoint.ignore-unclaimed-state` and `execution.state-recovery.claim-mode`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointRestoreSettings {
    /// A savepoint or retained checkpoint directory (or its `_metadata` file), path or URL.
    pub path: String,
    /// Whether state of operators missing from the job may be skipped.
    pub allow_non_restored_state: bool,
    /// Who owns the restored snapshot's files afterwards.
    #[serde(default)]
    pub claim_mode: RecoveryClaimMode,
}

/// Who owns a restored savepoint or retained checkpoint (Flink's `RecoveryClaimMode`, 1.15's
/// `RestoreMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryClaimMode {
    /// The snapshot stays the user's: the job never modifies or deletes it. The job's first
    /// checkpoint shares no file with it (Eddy's checkpoints are always full), so it may be
    /// deleted once the job completed a checkpoint.
    #[default]
    NoClaim,
    /// The job takes ownership: the snapshot is treated as one of its own checkpoints and
    /// deleted once subsumed or when the job ends and its checkpoints are discarded.
    Claim,
}

/// A claim mode Eddy does not take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseClaimModeError {
    /// Flink 2.0 removed it.
    #[error("LEGACY is not supported (removed in Flink 2.0): use CLAIM or NO_CLAIM")]
    Legacy,
    /// Not a claim mode.
    #[error("expected CLAIM or NO_CLAIM")]
    Unknown,
}

impl RecoveryClaimMode {
    /// Flink's spellings (case-insensitive); `LEGACY` (removed in Flink 2.0) is refused.
    pub fn parse(v: &str) -> Result<Self, ParseClaimModeError> {
        match v.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "NO_CLAIM" => Ok(RecoveryClaimMode::NoClaim),
            "CLAIM" => Ok(RecoveryClaimMode::Claim),
            "LEGACY" => Err(ParseClaimModeError::Legacy),
            _ => Err(ParseClaimModeError::Unknown),
        }
    }
}

impl std::fmt::Display for RecoveryClaimMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecoveryClaimMode::NoClaim => "NO_CLAIM",
            RecoveryClaimMode::Claim => "CLAIM",
        })
    }
}
