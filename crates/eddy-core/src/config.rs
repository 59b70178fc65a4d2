//! Execution configuration with Flink's key names, validated when it is set.

use crate::checkpointing::{
    CheckpointConfig, CheckpointingMode, ExternalizedCheckpointRetention, RecoveryClaimMode,
    RestartStrategyConfig, SavepointRestoreSettings,
};
use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `parallelism.default`
pub const PARALLELISM_DEFAULT: &str = "parallelism.default";
/// `pipeline.max-parallelism`
pub const MAX_PARALLELISM: &str = "pipeline.max-parallelism";
/// `pipeline.operator-chaining.enabled`
pub const OPERATOR_CHAINING: &str = "pipeline.operator-chaining.enabled";
/// `execution.buffer-timeout` (ms; -1 flushes only full buffers)
pub const BUFFER_TIMEOUT: &str = "execution.buffer-timeout";
/// `taskmanager.memory.segment-size` (bytes of one network buffer)
pub const SEGMENT_SIZE: &str = "taskmanager.memory.segment-size";
/// `taskmanager.network.memory.buffers-per-channel`
pub const BUFFERS_PER_CHANNEL: &str = "taskmanager.network.memory.buffers-per-channel";
/// `pipeline.auto-watermark-interval` (ms between periodic watermarks; 0 disables them)
pub const AUTO_WATERMARK_INTERVAL: &str = "pipeline.auto-watermark-interval";

/// `execution.checkpointing.interval` (duration > 0; unset leaves checkpointing off)
pub const CHECKPOINTING_INTERVAL: &str = "execution.checkpointing.interval";
/// `execution.checkpointing.mode` (`EXACTLY_ONCE` or `AT_LEAST_ONCE`)
pub const CHECKPOINTING_MODE: &str = "execution.checkpointing.mode";
/// `execution.checkpointing.timeout` (duration > 0)
pub const CHECKPOINTING_TIMEOUT: &str = "execution.checkpointing.timeout";
/// `execution.checkpointing.min-pause` (duration >= 0)
pub const CHECKPOINTING_MIN_PAUSE: &str = "execution.checkpointing.min-pause";
/// `execution.checkpointing.max-concurrent-checkpoints` (positive integer)
pub const CHECKPOINTING_MAX_CONCURRENT: &str = "execution.checkpointing.max-concurrent-checkpoints";
/// `execution.checkpointing.tolerable-failed-checkpoints` (integer >= 0)
pub const CHECKPOINTING_TOLERABLE_FAILED: &str =
    "execution.checkpointing.tolerable-failed-checkpoints";
/// `execution.checkpointing.externalized-checkpoint-retention` (`RETAIN_ON_CANCELLATION`,
/// `DELETE_ON_CANCELLATION` or `NO_EXTERNALIZED_CHECKPOINTS`)
pub const CHECKPOINTING_RETENTION: &str =
    "execution.checkpointing.externalized-checkpoint-retention";
/// `state.checkpoints.dir` (`file:///abs`, `file:/abs` or a plain path)
pub const CHECKPOINTS_DIR: &str = "state.checkpoints.dir";
/// `state.savepoints.dir` (`file:///abs`, `file:/abs` or a plain path)
pub const SAVEPOINTS_DIR: &str = "state.savepoints.dir";
/// `state.checkpoints.num-retained` (positive integer)
pub const CHECKPOINTS_NUM_RETAINED: &str = "state.checkpoints.num-retained";
/// `restart-strategy.type` (`none`/`off`/`disable`, `fixed-delay`, `exponential-delay`,
/// `failure-rate`)
pub const RESTART_STRATEGY: &str = "restart-strategy.type";
/// `restart-strategy.fixed-delay.attempts` (integer >= 0)
pub const FIXED_DELAY_ATTEMPTS: &str = "restart-strategy.fixed-delay.attempts";
/// `restart-strategy.fixed-delay.delay` (duration >= 0)
pub const FIXED_DELAY_DELAY: &str = "restart-strategy.fixed-delay.delay";
/// `restart-strategy.exponential-delay.initial-backoff` (duration > 0)
pub const EXPONENTIAL_DELAY_INITIAL_BACKOFF: &str =
    "restart-strategy.exponential-delay.initial-backoff";
/// `restart-strategy.exponential-delay.max-backoff` (duration > 0)
pub const EXPONENTIAL_DELAY_MAX_BACKOFF: &str = "restart-strategy.exponential-delay.max-backoff";
/// `restart-strategy.exponential-delay.backoff-multiplier` (number >= 1)
pub const EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER: &str =
    "restart-strategy.exponential-delay.backoff-multiplier";
/// `restart-strategy.exponential-delay.reset-backoff-threshold` (duration > 0)
pub const EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD: &str =
    "restart-strategy.exponential-delay.reset-backoff-threshold";
/// `restart-strategy.exponential-delay.jitter-factor` (number in 0..=1)
pub const EXPONENTIAL_DELAY_JITTER_FACTOR: &str =
    "restart-strategy.exponential-delay.jitter-factor";
/// `restart-strategy.exponential-delay.attempts-before-reset-backoff` (positive integer)
pub const EXPONENTIAL_DELAY_ATTEMPTS: &str =
    "restart-strategy.exponential-delay.attempts-before-reset-backoff";
/// `restart-strategy.failure-rate.max-failures-per-interval` (positive integer)
pub const FAILURE_RATE_MAX_FAILURES: &str =
    "restart-strategy.failure-rate.max-failures-per-interval";
/// `restart-strategy.failure-rate.failure-rate-interval` (duration > 0)
pub const FAILURE_RATE_INTERVAL: &str = "restart-strategy.failure-rate.failure-rate-interval";
/// `restart-strategy.failure-rate.delay` (duration >= 0)
pub const FAILURE_RATE_DELAY: &str = "restart-strategy.failure-rate.delay";
/// `execution.savepoint.path` (savepoint or retained checkpoint to start from)
pub const SAVEPOINT_PATH: &str = "execution.savepoint.path";
/// `execution.savepoint.ignore-unclaimed-state` (`true`/`false`)
pub const SAVEPOINT_IGNORE_UNCLAIMED_STATE: &str = "execution.savepoint.ignore-unclaimed-state";

/// `execution.state-recovery.claim-mode` (`CLAIM`/`NO_CLAIM`; Flink 2.0's name)
pub const CLAIM_MODE: &str = "execution.state-recovery.claim-mode";
/// `execution.savepoint-restore-mode`: Flink 1.15–1.20's name of [`CLAIM_MODE`], accepted too
pub const SAVEPOINT_RESTORE_MODE: &str = "execution.savepoint-restore-mode";
/// `job-result-store.storage-path`: where terminal job results are recorded (default:
/// `<state.checkpoints.dir>/job-result-store`)
pub const JOB_RESULT_STORE_PATH: &str = "job-result-store.storage-path";

/// `minicluster.number-of-taskmanagers`: TaskManagers of the embedded MiniCluster a job runs
/// on when executed locally (`env.execute()`, `eddy run` without a jobmanager); a cluster
/// ignores it. Data between tasks on different TaskManagers goes over their network stacks.
pub const MINICLUSTER_TASKMANAGERS: &str = "minicluster.number-of-taskmanagers";
/// A shorter spelling of [`MINICLUSTER_TASKMANAGERS`].
pub const MINICLUSTER_NUM_TASKMANAGERS: &str = "minicluster.num-taskmanagers";

/// Every key the embedded runtime understands, for "did you mean" suggestions.
pub const KNOWN_KEYS: &[&str] = &[
    PARALLELISM_DEFAULT,
    MAX_PARALLELISM,
    OPERATOR_CHAINING,
    BUFFER_TIMEOUT,
    SEGMENT_SIZE,
    BUFFERS_PER_CHANNEL,
    AUTO_WATERMARK_INTERVAL,
    CHECKPOINTING_INTERVAL,
    CHECKPOINTING_MODE,
    CHECKPOINTING_TIMEOUT,
    CHECKPOINTING_MIN_PAUSE,
    CHECKPOINTING_MAX_CONCURRENT,
    CHECKPOINTING_TOLERABLE_FAILED,
    CHECKPOINTING_RETENTION,
    CHECKPOINTS_DIR,
    SAVEPOINTS_DIR,
    CHECKPOINTS_NUM_RETAINED,
    RESTART_STRATEGY,
    FIXED_DELAY_ATTEMPTS,
    FIXED_DELAY_DELAY,
    EXPONENTIAL_DELAY_INITIAL_BACKOFF,
    EXPONENTIAL_DELAY_MAX_BACKOFF,
    EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER,
    EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD,
    EXPONENTIAL_DELAY_JITTER_FACTOR,
    EXPONENTIAL_DELAY_ATTEMPTS,
    FAILURE_RATE_MAX_FAILURES,
    FAILURE_RATE_INTERVAL,
    FAILURE_RATE_DELAY,
    SAVEPOINT_PATH,
    SAVEPOINT_IGNORE_UNCLAIMED_STATE,
    CLAIM_MODE,
    SAVEPOINT_RESTORE_MODE,
    JOB_RESULT_STORE_PATH,
    MINICLUSTER_TASKMANAGERS,
    MINICLUSTER_NUM_TASKMANAGERS,
];

/// The restart strategies `restart-strategy.type` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RestartKind {
    None,
    FixedDelay,
    ExponentialDelay,
    FailureRate,
}

impl RestartKind {
    /// Flink's accepted spellings (case-insensitive).
    fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "disable" => Some(RestartKind::None),
            "fixed-delay" | "fixeddelay" => Some(RestartKind::FixedDelay),
            "exponential-delay" | "exponentialdelay" => Some(RestartKind::ExponentialDelay),
            "failure-rate" | "failurerate" => Some(RestartKind::FailureRate),
            _ => None,
        }
    }

    fn of(cfg: &RestartStrategyConfig) -> Self {
        match cfg {
            RestartStrategyConfig::None => RestartKind::None,
            RestartStrategyConfig::FixedDelay { .. } => RestartKind::FixedDelay,
            RestartStrategyConfig::ExponentialDelay { .. } => RestartKind::ExponentialDelay,
            RestartStrategyConfig::FailureRate { .. } => RestartKind::FailureRate,
        }
    }

    /// The strategy with Flink's defaults.
    fn defaults(self) -> RestartStrategyConfig {
        match self {
            RestartKind::None => RestartStrategyConfig::None,
            RestartKind::FixedDelay => RestartStrategyConfig::fixed_delay_default(),
            RestartKind::ExponentialDelay => RestartStrategyConfig::exponential_default(),
            RestartKind::FailureRate => RestartStrategyConfig::failure_rate_default(),
        }
    }

    /// The strategy a `restart-strategy.<type>.<option>` key belongs to (known keys only).
    fn of_option_key(key: &str) -> Option<Self> {
        match key {
            FIXED_DELAY_ATTEMPTS | FIXED_DELAY_DELAY => Some(RestartKind::FixedDelay),
            EXPONENTIAL_DELAY_INITIAL_BACKOFF
            | EXPONENTIAL_DELAY_MAX_BACKOFF
            | EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER
            | EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD
            | EXPONENTIAL_DELAY_JITTER_FACTOR
            | EXPONENTIAL_DELAY_ATTEMPTS => Some(RestartKind::ExponentialDelay),
            FAILURE_RATE_MAX_FAILURES | FAILURE_RATE_INTERVAL | FAILURE_RATE_DELAY => {
                Some(RestartKind::FailureRate)
            }
            _ => None,
        }
    }
}

/// How a job runs: parallelism defaults, chaining, network buffers. Shipped inside the JobGraph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionConfig {
    /// Parallelism of operators that do not set their own.
    pub parallelism: usize,
    /// Max parallelism (number of key groups) of keyed operators; `None` derives Flink's default.
    pub max_parallelism: Option<usize>,
    /// Whether operators may be chained at all.
    pub chaining_enabled: bool,
    /// Flush partially filled output buffers after this many ms; 0 after every element;
    /// -1 only when full or at the end.
    pub buffer_timeout_ms: i64,
    /// Size of one network buffer in bytes (records per buffer derive from it).
    pub segment_size: usize,
    /// How many buffers one channel may hold before its producer blocks (credit).
    pub buffers_per_channel: usize,
    /// How often periodic watermark generators emit, in ms, for strategies that do not set
    /// their own interval; 0 turns periodic emission off.
    #[serde(default = "default_auto_watermark_interval_ms")]
    pub auto_watermark_interval_ms: i64,
    /// Checkpointing (off by default).
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Restart strategy; `None` picks Flink's default: no restarts without checkpointing,
    /// exponential delay with it.
    #[serde(default)]
    pub restart_strategy: Option<RestartStrategyConfig>,
    /// Savepoint or checkpoint to start from.
    #[serde(default)]
    pub savepoint_restore: Option<SavepointRestoreSettings>,
    /// `job-result-store.storage-path`; `None`: `job-result-store/` in the checkpoint directory.
    #[serde(default)]
    pub job_result_store_path: Option<String>,
    /// `minicluster.number-of-taskmanagers` for local execution; `None`: 1.
    #[serde(default)]
    pub minicluster_taskmanagers: Option<usize>,
}

/// Flink's default `pipeline.auto-watermark-interval`.
pub const DEFAULT_AUTO_WATERMARK_INTERVAL_MS: i64 = 200;

fn default_auto_watermark_interval_ms() -> i64 {
    DEFAULT_AUTO_WATERMARK_INTERVAL_MS
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            max_parallelism: None,
            chaining_enabled: true,
            buffer_timeout_ms: 100,
            segment_size: 32 * 1024,
            buffers_per_channel: 4,
            auto_watermark_interval_ms: DEFAULT_AUTO_WATERMARK_INTERVAL_MS,
            checkpoint: CheckpointConfig::default(),
            restart_strategy: None,
            savepoint_restore: None,
            job_result_store_path: None,
            minicluster_taskmanagers: None,
        }
    }
}

impl ExecutionConfig {
    /// The restore settings, created (without a path yet) if absent.
    fn restore_settings(&mut self) -> &mut SavepointRestoreSettings {
        self.savepoint_restore
            .get_or_insert_with(|| SavepointRestoreSettings {
                path: String::new(),
                allow_non_restored_state: false,
                claim_mode: RecoveryClaimMode::NoClaim,
            })
    }

    /// The restart strategy in effect: the configured one, else Flink's default (none without
    /// checkpointing, exponential delay with it).
    pub fn effective_restart_strategy(&self) -> RestartStrategyConfig {
        match &self.restart_strategy {
            Some(r) => r.clone(),
            None if self.checkpoint.is_enabled() => RestartStrategyConfig::exponential_default(),
            None => RestartStrategyConfig::None,
        }
    }

    /// Sets one key from its string form, rejecting unknown keys (with the nearest known key)
    /// and bad values. Nothing changes when an error is returned.
    ///
    /// `restart-strategy.type` installs that strategy with Flink's defaults, unless it is the
    /// strategy already configured (then its options stay). An option of another strategy than
    /// the configured one (`restart-strategy.fixed-delay.attempts` while failure-rate is set)
    /// switches to that strategy, with defaults for its other options. Cross-key constraints
    /// are checked by [`ExecutionConfig::validate`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), CoreError> {
        let bad = |reason: &str| CoreError::InvalidConfig {
            key: key.to_string(),
            reason: format!("{reason}, got '{value}'"),
        };
        let positive = |v: &str| -> Result<usize, CoreError> {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("expected a positive integer"))
        };
        let non_negative = || -> Result<usize, CoreError> {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| bad("expected an integer >= 0"))
        };
        // An integer in `min..=u32::MAX` (restart options are Java ints in Flink).
        let int32 = |min: u32| -> Result<u32, CoreError> {
            let expected = if min == 0 {
                "expected an integer >= 0".to_string()
            } else if min == 1 {
                "expected a positive integer".to_string()
            } else {
                format!("expected an integer >= {min}")
            };
            let n: u64 = value.trim().parse().map_err(|_| bad(&expected))?;
            if n < u64::from(min) {
                return Err(bad(&expected));
            }
            u32::try_from(n).map_err(|_| bad(&format!("must be at most {}", u32::MAX)))
        };
        // A duration of at least `min` ms.
        let duration = |min: i64| -> Result<u64, CoreError> {
            let ms = parse_duration_ms(value)
                .ok_or_else(|| bad("expected a duration like 500ms, 10s, 1min or 1h"))?;
            if ms < min {
                return Err(bad(if min <= 0 {
                    "must not be negative"
                } else {
                    "must be greater than 0"
                }));
            }
            Ok(ms as u64)
        };
        let float = || -> Result<f64, CoreError> {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| bad("expected a number"))
        };
        let boolean = || -> Result<bool, CoreError> {
            parse_bool(value).ok_or_else(|| bad("expected true or false"))
        };
        let directory = || -> Result<String, CoreError> { check_directory(value).map_err(bad) };
        match key {
            PARALLELISM_DEFAULT => self.parallelism = positive(value)?,
            MAX_PARALLELISM => {
                let n = positive(value)?;
                if n > crate::keygroup::UPPER_BOUND_MAX_PARALLELISM {
                    return Err(bad("max parallelism must be at most 32768"));
                }
                self.max_parallelism = Some(n)
            }
            OPERATOR_CHAINING => self.chaining_enabled = boolean()?,
            BUFFER_TIMEOUT => {
                let ms = parse_duration_ms(value).ok_or_else(|| bad("expected a duration"))?;
                if ms < -1 {
                    return Err(bad("must be -1, 0 or positive"));
                }
                self.buffer_timeout_ms = ms
            }
            SEGMENT_SIZE => {
                let n = parse_bytes(value).ok_or_else(|| bad("expected a size like 32kb"))?;
                if n < 64 {
                    return Err(bad("must be at least 64 bytes"));
                }
                self.segment_size = n
            }
            BUFFERS_PER_CHANNEL => self.buffers_per_channel = positive(value)?,
            AUTO_WATERMARK_INTERVAL => {
                let ms = parse_duration_ms(value).ok_or_else(|| bad("expected a duration"))?;
                if ms < 0 {
                    return Err(bad("must be 0 (off) or positive"));
                }
                self.auto_watermark_interval_ms = ms
            }

            // Checkpointing.
            CHECKPOINTING_INTERVAL => self.checkpoint.interval_ms = Some(duration(1)?),
            CHECKPOINTING_MODE => {
                self.checkpoint.mode = match enum_name(value).as_str() {
                    "EXACTLY_ONCE" => CheckpointingMode::ExactlyOnce,
                    "AT_LEAST_ONCE" => CheckpointingMode::AtLeastOnce,
                    _ => return Err(bad("expected EXACTLY_ONCE or AT_LEAST_ONCE")),
                }
            }
            CHECKPOINTING_TIMEOUT => self.checkpoint.timeout_ms = duration(1)?,
            CHECKPOINTING_MIN_PAUSE => self.checkpoint.min_pause_ms = duration(0)?,
            CHECKPOINTING_MAX_CONCURRENT => self.checkpoint.max_concurrent = positive(value)?,
            CHECKPOINTING_TOLERABLE_FAILED => self.checkpoint.tolerable_failed = non_negative()?,
            CHECKPOINTING_RETENTION => {
                self.checkpoint.retention = match enum_name(value).as_str() {
                    "RETAIN_ON_CANCELLATION" => {
                        ExternalizedCheckpointRetention::RetainOnCancellation
                    }
                    "DELETE_ON_CANCELLATION" => {
                        ExternalizedCheckpointRetention::DeleteOnCancellation
                    }
                    "NO_EXTERNALIZED_CHECKPOINTS" => {
                        ExternalizedCheckpointRetention::NoExternalizedCheckpoints
                    }
                    _ => {
                        return Err(bad("expected RETAIN_ON_CANCELLATION, \
                             DELETE_ON_CANCELLATION or NO_EXTERNALIZED_CHECKPOINTS"))
                    }
                }
            }
            CHECKPOINTS_DIR => self.checkpoint.storage = Some(directory()?),
            SAVEPOINTS_DIR => self.checkpoint.savepoint_dir = Some(directory()?),
            CHECKPOINTS_NUM_RETAINED => self.checkpoint.num_retained = positive(value)?,

            // Restart strategy.
            RESTART_STRATEGY => {
                let kind = RestartKind::parse(value).ok_or_else(|| {
                    bad("expected none, fixed-delay, exponential-delay or failure-rate")
                })?;
                self.restart_strategy_of(kind);
            }
            FIXED_DELAY_ATTEMPTS => {
                let n = int32(0)?;
                if let RestartStrategyConfig::FixedDelay { attempts, .. } =
                    self.restart_strategy_of(RestartKind::FixedDelay)
                {
                    *attempts = n
                }
            }
            FIXED_DELAY_DELAY => {
                let ms = duration(0)?;
                if let RestartStrategyConfig::FixedDelay { delay_ms, .. } =
                    self.restart_strategy_of(RestartKind::FixedDelay)
                {
                    *delay_ms = ms
                }
            }
            EXPONENTIAL_DELAY_INITIAL_BACKOFF => {
                let ms = duration(1)?;
                if let RestartStrategyConfig::ExponentialDelay {
                    initial_backoff_ms, ..
                } = self.restart_strategy_of(RestartKind::ExponentialDelay)
                {
                    *initial_backoff_ms = ms
                }
            }
            EXPONENTIAL_DELAY_MAX_BACKOFF => {
                let ms = duration(1)?;
                if let RestartStrategyConfig::ExponentialDelay { max_backoff_ms, .. } =
                    self.restart_strategy_of(RestartKind::ExponentialDelay)
                {
                    *max_backoff_ms = ms
                }
            }
            EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER => {
                let f = float()?;
                if f < 1.0 {
                    return Err(bad("must be at least 1.0"));
                }
                if let RestartStrategyConfig::ExponentialDelay { multiplier, .. } =
                    self.restart_strategy_of(RestartKind::ExponentialDelay)
                {
                    *multiplier = f
                }
            }
            EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD => {
                let ms = duration(1)?;
                if let RestartStrategyConfig::ExponentialDelay {
                    reset_threshold_ms, ..
                } = self.restart_strategy_of(RestartKind::ExponentialDelay)
                {
                    *reset_threshold_ms = ms
                }
            }
            EXPONENTIAL_DELAY_JITTER_FACTOR => {
                let f = float()?;
                if !(0.0..=1.0).contains(&f) {
                    return Err(bad("must be between 0.0 and 1.0"));
                }
                if let RestartStrategyConfig::ExponentialDelay { jitter, .. } =
                    self.restart_strategy_of(RestartKind::ExponentialDelay)
                {
                    *jitter = f
                }
            }
            EXPONENTIAL_DELAY_ATTEMPTS => {
                let n = int32(1)?;
                if let RestartStrategyConfig::ExponentialDelay { attempts, .. } =
                    self.restart_strategy_of(RestartKind::ExponentialDelay)
                {
                    *attempts = n
                }
            }
            FAILURE_RATE_MAX_FAILURES => {
                let n = int32(1)?;
                if let RestartStrategyConfig::FailureRate { max_failures, .. } =
                    self.restart_strategy_of(RestartKind::FailureRate)
                {
                    *max_failures = n
                }
            }
            FAILURE_RATE_INTERVAL => {
                let ms = duration(1)?;
                if let RestartStrategyConfig::FailureRate { interval_ms, .. } =
                    self.restart_strategy_of(RestartKind::FailureRate)
                {
                    *interval_ms = ms
                }
            }
            FAILURE_RATE_DELAY => {
                let ms = duration(0)?;
                if let RestartStrategyConfig::FailureRate { delay_ms, .. } =
                    self.restart_strategy_of(RestartKind::FailureRate)
                {
                    *delay_ms = ms
                }
            }

            // Restore.
            SAVEPOINT_PATH => {
                let path = value.trim();
                if path.is_empty() {
                    return Err(bad("expected a savepoint or checkpoint path"));
                }
                self.restore_settings().path = path.to_string();
            }
            SAVEPOINT_IGNORE_UNCLAIMED_STATE => {
                let allow = boolean()?;
                // Kept until the path comes; `validate` reports it if it never does.
                if allow || self.savepoint_restore.is_some() {
                    self.restore_settings().allow_non_restored_state = allow;
                }
            }
            CLAIM_MODE | SAVEPOINT_RESTORE_MODE => {
                let mode = RecoveryClaimMode::parse(value).map_err(|r| bad(&r.to_string()))?;
                if mode != RecoveryClaimMode::NoClaim || self.savepoint_restore.is_some() {
                    self.restore_settings().claim_mode = mode;
                }
            }
            MINICLUSTER_TASKMANAGERS | MINICLUSTER_NUM_TASKMANAGERS => {
                let n = positive(value)?;
                if n > 64 {
                    return Err(bad("expected an integer in 1..=64"));
                }
                self.minicluster_taskmanagers = Some(n);
            }
            JOB_RESULT_STORE_PATH => {
                let path = value.trim();
                if path.is_empty() {
                    return Err(bad("expected a directory"));
                }
                self.job_result_store_path = Some(path.to_string());
            }
            _ if crate::cluster_config::CLUSTER_KEYS.contains(&key) => {
                return Err(CoreError::InvalidConfig {
                    key: key.to_string(),
                    reason: "a cluster setting, not a job setting: set it in the configuration \
                             of the jobmanager or taskmanager"
                        .into(),
                });
            }
            _ => {
                let hint = nearest_key(key)
                    .map(|k| format!("; did you mean '{k}'?"))
                    .unwrap_or_default();
                return Err(CoreError::InvalidConfig {
                    key: key.to_string(),
                    reason: format!("unknown configuration key{hint}"),
                });
            }
        }
        Ok(())
    }

    /// The configured restart strategy, switched to `kind` (with Flink's defaults) if it is
    /// another one.
    fn restart_strategy_of(&mut self, kind: RestartKind) -> &mut RestartStrategyConfig {
        let current = self.restart_strategy.get_or_insert_with(|| kind.defaults());
        if RestartKind::of(current) != kind {
            *current = kind.defaults();
        }
        current
    }

    /// Applies several `key: value` settings, as from a YAML map or `-D` flags. The order of
    /// the keys does not matter: `restart-strategy.type` is applied first, and an option of
    /// another strategy than the one it names is an error. Nothing changes when an error is
    /// returned.
    pub fn apply(&mut self, settings: &BTreeMap<String, String>) -> Result<(), CoreError> {
        let mut next = self.clone();
        if let Some(type_value) = settings.get(RESTART_STRATEGY) {
            next.set(RESTART_STRATEGY, type_value)?;
            let kind = next
                .restart_strategy
                .as_ref()
                .map(RestartKind::of)
                .unwrap_or(RestartKind::None);
            if let Some((key, _)) = settings
                .iter()
                .find(|(k, _)| RestartKind::of_option_key(k).is_some_and(|o| o != kind))
            {
                return Err(CoreError::InvalidConfig {
                    key: key.clone(),
                    reason: format!(
                        "'{key}' configures the {} restart strategy, but '{RESTART_STRATEGY}' \
                         is '{type_value}'",
                        RestartKind::of_option_key(key)
                            .map(|o| o.defaults().type_name())
                            .unwrap_or_default(),
                    ),
                });
            }
        }
        for (k, v) in settings {
            if k != RESTART_STRATEGY {
                next.set(k, v)?;
            }
        }
        *self = next;
        Ok(())
    }

    /// Checks constraints between keys, which single [`ExecutionConfig::set`] calls cannot
    /// check because keys come in any order. Call it before the job is submitted.
    pub fn validate(&self) -> Result<(), CoreError> {
        let invalid = |key: &str, reason: String| CoreError::InvalidConfig {
            key: key.to_string(),
            reason,
        };
        if let Some(restore) = &self.savepoint_restore {
            if restore.path.trim().is_empty() && restore.allow_non_restored_state {
                return Err(invalid(
                    SAVEPOINT_IGNORE_UNCLAIMED_STATE,
                    format!(
                        "{SAVEPOINT_IGNORE_UNCLAIMED_STATE} is set but {SAVEPOINT_PATH} is not"
                    ),
                ));
            }
        }
        if let Some(RestartStrategyConfig::ExponentialDelay {
            initial_backoff_ms,
            max_backoff_ms,
            ..
        }) = &self.restart_strategy
        {
            if initial_backoff_ms > max_backoff_ms {
                return Err(invalid(
                    EXPONENTIAL_DELAY_INITIAL_BACKOFF,
                    format!(
                        "the initial backoff ({initial_backoff_ms} ms) is larger than \
                         {EXPONENTIAL_DELAY_MAX_BACKOFF} ({max_backoff_ms} ms)"
                    ),
                ));
            }
        }
        let cp = &self.checkpoint;
        if cp.interval_ms == Some(0) {
            return Err(invalid(
                CHECKPOINTING_INTERVAL,
                "must be greater than 0".into(),
            ));
        }
        if cp.timeout_ms == 0 {
            return Err(invalid(
                CHECKPOINTING_TIMEOUT,
                "must be greater than 0".into(),
            ));
        }
        if cp.max_concurrent == 0 {
            return Err(invalid(
                CHECKPOINTING_MAX_CONCURRENT,
                "must be at least 1".into(),
            ));
        }
        if cp.num_retained == 0 {
            return Err(invalid(
                CHECKPOINTS_NUM_RETAINED,
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// `true`/`false` in any case, as Flink accepts them.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// An enum constant as Flink matches it: case-insensitive; `-` stands for `_`.
fn enum_name(v: &str) -> String {
    v.trim().to_ascii_uppercase().replace('-', "_")
}

/// A checkpoint or savepoint directory: `file:///abs`, `file:/abs` or a plain path, trimmed.
/// Other schemes are rejected until their storage exists.
fn check_directory(v: &str) -> Result<String, &'static str> {
    let v = v.trim();
    if v.is_empty() {
        return Err("expected a directory (file:///path or a plain path)");
    }
    if let Some(rest) = v.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err("a file URL needs an absolute path, like file:///tmp/checkpoints");
        }
    } else if let Some(rest) = v.strip_prefix("file:") {
        if !rest.starts_with('/') {
            return Err("a file URL needs an absolute path, like file:/tmp/checkpoints");
        }
    } else if v.contains("://") {
        return Err(
            "only file:// directories are supported for now (object stores like s3:// \
             come later)",
        );
    }
    Ok(v.to_string())
}

/// Parses `100`, `100ms`, `2s`, `1min`, `1h`, `1d` (also `10 s`) into milliseconds (`-1` stays -1).
pub fn parse_duration_ms(v: &str) -> Option<i64> {
    let v = v.trim();
    let (num, unit) = split_unit(v);
    let n: i64 = num.parse().ok()?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "min" | "m" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Parses `32768`, `32kb`, `1mb`, `1gb` into bytes.
pub fn parse_bytes(v: &str) -> Option<usize> {
    let (num, unit) = split_unit(v.trim());
    let n: usize = num.parse().ok()?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn split_unit(v: &str) -> (&str, &str) {
    let idx = v
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map(|(i, _)| i)
        .unwrap_or(v.len());
    (v[..idx].trim(), v[idx..].trim())
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
pub fn nearest_key(key: &str) -> Option<&'static str> {
    KNOWN_KEYS
        .iter()
        .chain(crate::cluster_config::CLUSTER_KEYS)
        .map(|k| (edit_distance(key, k), *k))
        .min()
        .filter(|(d, _)| *d <= key.len().max(4) / 3)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_suggests_nearest() {
        let mut c = ExecutionConfig::default();
        let err = c.set("parallelism.defualt", "2").unwrap_err().to_string();
        assert!(err.contains("did you mean 'parallelism.default'"), "{err}");
        assert!(c.set("parallelism.default", "0").is_err());
        c.set("execution.buffer-timeout", "5s").unwrap();
        assert_eq!(c.buffer_timeout_ms, 5000);
        c.set("taskmanager.memory.segment-size", "64kb").unwrap();
        assert_eq!(c.segment_size, 65536);
    }

    #[test]
    fn auto_watermark_interval_is_a_duration() {
        let mut c = ExecutionConfig::default();
        assert_eq!(c.auto_watermark_interval_ms, 200);
        c.set("pipeline.auto-watermark-interval", "1s").unwrap();
        assert_eq!(c.auto_watermark_interval_ms, 1000);
        c.set("pipeline.auto-watermark-interval", "0").unwrap();
        assert_eq!(c.auto_watermark_interval_ms, 0);
        assert!(c.set("pipeline.auto-watermark-interval", "-1").is_err());
        let err = c
            .set("pipeline.auto-watermark-intervall", "5")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did you mean 'pipeline.auto-watermark-interval'"),
            "{err}"
        );
    }

    /// Sets `key` to `value`, expecting an error that names both.
    fn set_err(c: &mut ExecutionConfig, key: &str, value: &str) -> String {
        let before = c.clone();
        let err = c
            .set(key, value)
            .expect_err(&format!("{key}={value} should fail"))
            .to_string();
        assert!(err.contains(&format!("'{key}'")), "key missing: {err}");
        assert!(err.contains(&format!("'{value}'")), "value missing: {err}");
        assert_eq!(*c, before, "a failed set must not change anything");
        err
    }

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_accept_flink_units() {
        assert_eq!(parse_duration_ms("100"), Some(100));
        assert_eq!(parse_duration_ms("100 ms"), Some(100));
        assert_eq!(parse_duration_ms("10 s"), Some(10_000));
        assert_eq!(parse_duration_ms("2min"), Some(120_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_duration_ms("1 fortnight"), None);
        assert_eq!(parse_duration_ms(""), None);
    }

    #[test]
    fn checkpointing_interval() {
        let mut c = ExecutionConfig::default();
        assert!(!c.checkpoint.is_enabled());
        c.set(CHECKPOINTING_INTERVAL, "10s").unwrap();
        assert_eq!(c.checkpoint.interval_ms, Some(10_000));
        c.set(CHECKPOINTING_INTERVAL, "500").unwrap();
        assert_eq!(c.checkpoint.interval_ms, Some(500));
        assert!(set_err(&mut c, CHECKPOINTING_INTERVAL, "0").contains("greater than 0"));
        set_err(&mut c, CHECKPOINTING_INTERVAL, "-1");
        set_err(&mut c, CHECKPOINTING_INTERVAL, "10 parsecs");
        set_err(&mut c, CHECKPOINTING_INTERVAL, "");
        // Checkpointing on makes exponential delay the default restart strategy.
        assert_eq!(
            c.effective_restart_strategy(),
            RestartStrategyConfig::exponential_default()
        );
    }

    #[test]
    fn checkpointing_mode() {
        let mut c = ExecutionConfig::default();
        for v in ["AT_LEAST_ONCE", "at_least_once", "at-least-once"] {
            c.set(CHECKPOINTING_MODE, v).unwrap();
            assert_eq!(c.checkpoint.mode, CheckpointingMode::AtLeastOnce);
        }
        for v in [
            "EXACTLY_ONCE",
            "exactly_once",
            "exactly-once",
            " Exactly_Once ",
        ] {
            c.set(CHECKPOINTING_MODE, "AT_LEAST_ONCE").unwrap();
            c.set(CHECKPOINTING_MODE, v).unwrap();
            assert_eq!(c.checkpoint.mode, CheckpointingMode::ExactlyOnce);
        }
        let err = set_err(&mut c, CHECKPOINTING_MODE, "at-most-once");
        assert!(err.contains("EXACTLY_ONCE or AT_LEAST_ONCE"), "{err}");
    }

    #[test]
    fn checkpointing_timeout_and_min_pause() {
        let mut c = ExecutionConfig::default();
        assert_eq!(c.checkpoint.timeout_ms, 600_000);
        c.set(CHECKPOINTING_TIMEOUT, "1min").unwrap();
        assert_eq!(c.checkpoint.timeout_ms, 60_000);
        set_err(&mut c, CHECKPOINTING_TIMEOUT, "0");
        set_err(&mut c, CHECKPOINTING_TIMEOUT, "-5s");
        set_err(&mut c, CHECKPOINTING_TIMEOUT, "soon");

        c.set(CHECKPOINTING_MIN_PAUSE, "500ms").unwrap();
        assert_eq!(c.checkpoint.min_pause_ms, 500);
        c.set(CHECKPOINTING_MIN_PAUSE, "0").unwrap();
        assert_eq!(c.checkpoint.min_pause_ms, 0);
        assert!(set_err(&mut c, CHECKPOINTING_MIN_PAUSE, "-1").contains("negative"));
        set_err(&mut c, CHECKPOINTING_MIN_PAUSE, "a while");
    }

    #[test]
    fn checkpointing_counts() {
        let mut c = ExecutionConfig::default();
        c.set(CHECKPOINTING_MAX_CONCURRENT, "3").unwrap();
        assert_eq!(c.checkpoint.max_concurrent, 3);
        set_err(&mut c, CHECKPOINTING_MAX_CONCURRENT, "0");
        set_err(&mut c, CHECKPOINTING_MAX_CONCURRENT, "-1");
        set_err(&mut c, CHECKPOINTING_MAX_CONCURRENT, "two");

        c.set(CHECKPOINTING_TOLERABLE_FAILED, "0").unwrap();
        assert_eq!(c.checkpoint.tolerable_failed, 0);
        c.set(CHECKPOINTING_TOLERABLE_FAILED, "5").unwrap();
        assert_eq!(c.checkpoint.tolerable_failed, 5);
        set_err(&mut c, CHECKPOINTING_TOLERABLE_FAILED, "-1");
        set_err(&mut c, CHECKPOINTING_TOLERABLE_FAILED, "1.5");

        c.set(CHECKPOINTS_NUM_RETAINED, "4").unwrap();
        assert_eq!(c.checkpoint.num_retained, 4);
        set_err(&mut c, CHECKPOINTS_NUM_RETAINED, "0");
        set_err(&mut c, CHECKPOINTS_NUM_RETAINED, "many");
    }

    #[test]
    fn checkpointing_retention() {
        let mut c = ExecutionConfig::default();
        for (v, want) in [
            (
                "RETAIN_ON_CANCELLATION",
                ExternalizedCheckpointRetention::RetainOnCancellation,
            ),
            (
                "delete_on_cancellation",
                ExternalizedCheckpointRetention::DeleteOnCancellation,
            ),
            (
                "NO_EXTERNALIZED_CHECKPOINTS",
                ExternalizedCheckpointRetention::NoExternalizedCheckpoints,
            ),
            (
                "retain-on-cancellation",
                ExternalizedCheckpointRetention::RetainOnCancellation,
            ),
        ] {
            c.set(CHECKPOINTING_RETENTION, v).unwrap();
            assert_eq!(c.checkpoint.retention, want, "{v}");
        }
        let err = set_err(&mut c, CHECKPOINTING_RETENTION, "RETAIN");
        assert!(err.contains("RETAIN_ON_CANCELLATION"), "{err}");
    }

    #[test]
    fn state_directories() {
        let mut c = ExecutionConfig::default();
        for key in [CHECKPOINTS_DIR, SAVEPOINTS_DIR] {
            for v in ["file:///tmp/cp", "file:/tmp/cp", "/tmp/cp", "relative/cp"] {
                c.set(key, v).unwrap();
                let got = if key == CHECKPOINTS_DIR {
                    &c.checkpoint.storage
                } else {
                    &c.checkpoint.savepoint_dir
                };
                assert_eq!(got.as_deref(), Some(v));
            }
            c.set(key, "  /tmp/trimmed ").unwrap();
            let err = set_err(&mut c, key, "s3://bucket/checkpoints");
            assert!(err.contains("only file://"), "{err}");
            set_err(&mut c, key, "hdfs://namenode:8020/cp");
            assert!(set_err(&mut c, key, "file://tmp/cp").contains("absolute"));
            set_err(&mut c, key, "file:tmp/cp");
            set_err(&mut c, key, "   ");
        }
        assert_eq!(c.checkpoint.storage.as_deref(), Some("/tmp/trimmed"));
        assert_eq!(c.checkpoint.savepoint_dir.as_deref(), Some("/tmp/trimmed"));
    }

    #[test]
    fn restart_strategy_type_installs_flink_defaults() {
        let mut c = ExecutionConfig::default();
        assert_eq!(c.effective_restart_strategy(), RestartStrategyConfig::None);
        for v in ["fixed-delay", "fixeddelay", "FIXED-DELAY"] {
            c.restart_strategy = None;
            c.set(RESTART_STRATEGY, v).unwrap();
            assert_eq!(
                c.restart_strategy,
                Some(RestartStrategyConfig::FixedDelay {
                    attempts: 1,
                    delay_ms: 1000
                })
            );
        }
        for v in ["exponential-delay", "exponentialdelay"] {
            c.set(RESTART_STRATEGY, v).unwrap();
            assert_eq!(
                c.restart_strategy,
                Some(RestartStrategyConfig::exponential_default())
            );
        }
        for v in ["failure-rate", "failurerate"] {
            c.set(RESTART_STRATEGY, v).unwrap();
            assert_eq!(
                c.restart_strategy,
                Some(RestartStrategyConfig::FailureRate {
                    max_failures: 1,
                    interval_ms: 60_000,
                    delay_ms: 1000
                })
            );
        }
        for v in ["none", "off", "disable", "NONE"] {
            c.set(RESTART_STRATEGY, "fixed-delay").unwrap();
            c.set(RESTART_STRATEGY, v).unwrap();
            assert_eq!(c.restart_strategy, Some(RestartStrategyConfig::None));
        }
        // Checkpointing does not override an explicit `none`.
        c.set(CHECKPOINTING_INTERVAL, "1s").unwrap();
        assert_eq!(c.effective_restart_strategy(), RestartStrategyConfig::None);
        let err = set_err(&mut c, RESTART_STRATEGY, "fixed-dleay");
        assert!(err.contains("fixed-delay"), "{err}");
    }

    #[test]
    fn restart_type_keeps_options_of_the_same_strategy() {
        let mut c = ExecutionConfig::default();
        c.set(FIXED_DELAY_ATTEMPTS, "3").unwrap();
        c.set(RESTART_STRATEGY, "fixed-delay").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::FixedDelay {
                attempts: 3,
                delay_ms: 1000
            })
        );
        c.set(RESTART_STRATEGY, "failure-rate").unwrap();
        c.set(RESTART_STRATEGY, "fixed-delay").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::fixed_delay_default())
        );
    }

    #[test]
    fn fixed_delay_options() {
        let mut c = ExecutionConfig::default();
        c.set(FIXED_DELAY_ATTEMPTS, "5").unwrap();
        c.set(FIXED_DELAY_DELAY, "10 s").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::FixedDelay {
                attempts: 5,
                delay_ms: 10_000
            })
        );
        c.set(FIXED_DELAY_ATTEMPTS, "0").unwrap();
        c.set(FIXED_DELAY_DELAY, "0").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::FixedDelay {
                attempts: 0,
                delay_ms: 0
            })
        );
        set_err(&mut c, FIXED_DELAY_ATTEMPTS, "-1");
        set_err(&mut c, FIXED_DELAY_ATTEMPTS, "three");
        assert!(set_err(&mut c, FIXED_DELAY_ATTEMPTS, "99999999999").contains("at most"));
        set_err(&mut c, FIXED_DELAY_DELAY, "-1s");
        set_err(&mut c, FIXED_DELAY_DELAY, "1 eon");
    }

    #[test]
    fn exponential_delay_options() {
        let mut c = ExecutionConfig::default();
        c.set(EXPONENTIAL_DELAY_INITIAL_BACKOFF, "2s").unwrap();
        c.set(EXPONENTIAL_DELAY_MAX_BACKOFF, "5min").unwrap();
        c.set(EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, "2").unwrap();
        c.set(EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD, "30min")
            .unwrap();
        c.set(EXPONENTIAL_DELAY_JITTER_FACTOR, "0.25").unwrap();
        c.set(EXPONENTIAL_DELAY_ATTEMPTS, "7").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::ExponentialDelay {
                initial_backoff_ms: 2000,
                max_backoff_ms: 300_000,
                multiplier: 2.0,
                reset_threshold_ms: 1_800_000,
                jitter: 0.25,
                attempts: 7,
            })
        );
        c.set(EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, "1.0").unwrap();
        c.set(EXPONENTIAL_DELAY_JITTER_FACTOR, "0").unwrap();
        c.set(EXPONENTIAL_DELAY_JITTER_FACTOR, "1").unwrap();
        set_err(&mut c, EXPONENTIAL_DELAY_INITIAL_BACKOFF, "0");
        set_err(&mut c, EXPONENTIAL_DELAY_MAX_BACKOFF, "0ms");
        assert!(set_err(&mut c, EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, "0.5").contains("at least"));
        set_err(&mut c, EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, "NaN");
        set_err(&mut c, EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, "inf");
        set_err(&mut c, EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER, "double");
        set_err(&mut c, EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD, "0");
        set_err(&mut c, EXPONENTIAL_DELAY_JITTER_FACTOR, "1.5");
        set_err(&mut c, EXPONENTIAL_DELAY_JITTER_FACTOR, "-0.1");
        set_err(&mut c, EXPONENTIAL_DELAY_ATTEMPTS, "0");
        set_err(&mut c, EXPONENTIAL_DELAY_ATTEMPTS, "-3");
    }

    #[test]
    fn failure_rate_options() {
        let mut c = ExecutionConfig::default();
        c.set(FAILURE_RATE_MAX_FAILURES, "3").unwrap();
        c.set(FAILURE_RATE_INTERVAL, "5min").unwrap();
        c.set(FAILURE_RATE_DELAY, "10s").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::FailureRate {
                max_failures: 3,
                interval_ms: 300_000,
                delay_ms: 10_000
            })
        );
        c.set(FAILURE_RATE_DELAY, "0").unwrap();
        set_err(&mut c, FAILURE_RATE_MAX_FAILURES, "0");
        set_err(&mut c, FAILURE_RATE_MAX_FAILURES, "lots");
        set_err(&mut c, FAILURE_RATE_INTERVAL, "0");
        set_err(&mut c, FAILURE_RATE_DELAY, "-1");
    }

    #[test]
    fn an_option_of_another_strategy_switches_with_defaults() {
        let mut c = ExecutionConfig::default();
        c.set(RESTART_STRATEGY, "failure-rate").unwrap();
        c.set(FAILURE_RATE_MAX_FAILURES, "9").unwrap();
        c.set(FIXED_DELAY_DELAY, "3s").unwrap();
        assert_eq!(
            c.restart_strategy,
            Some(RestartStrategyConfig::FixedDelay {
                attempts: 1,
                delay_ms: 3000
            })
        );
        c.set(EXPONENTIAL_DELAY_ATTEMPTS, "4").unwrap();
        let RestartStrategyConfig::ExponentialDelay {
            attempts,
            initial_backoff_ms,
            ..
        } = c.restart_strategy.clone().unwrap()
        else {
            panic!("expected exponential delay: {:?}", c.restart_strategy);
        };
        assert_eq!((attempts, initial_backoff_ms), (4, 1000));
        // A rejected value does not switch.
        set_err(&mut c, FIXED_DELAY_ATTEMPTS, "-2");
        assert!(matches!(
            c.restart_strategy,
            Some(RestartStrategyConfig::ExponentialDelay { .. })
        ));
    }

    #[test]
    fn apply_is_order_independent() {
        // BTreeMap order puts `restart-strategy.fixed-delay.*` before `restart-strategy.type`.
        let s = settings(&[
            (FIXED_DELAY_ATTEMPTS, "3"),
            (FIXED_DELAY_DELAY, "2s"),
            (RESTART_STRATEGY, "fixed-delay"),
            (CHECKPOINTING_INTERVAL, "1min"),
        ]);
        let mut c = ExecutionConfig::default();
        c.apply(&s).unwrap();
        let want = Some(RestartStrategyConfig::FixedDelay {
            attempts: 3,
            delay_ms: 2000,
        });
        assert_eq!(c.restart_strategy, want);
        assert_eq!(c.checkpoint.interval_ms, Some(60_000));

        // The same keys set one by one, in every rotation of the order.
        let pairs: Vec<_> = s.iter().collect();
        for start in 0..pairs.len() {
            let mut c = ExecutionConfig::default();
            c.set(RESTART_STRATEGY, "failure-rate").unwrap();
            let mut one = BTreeMap::new();
            for i in 0..pairs.len() {
                let (k, v) = pairs[(start + i) % pairs.len()];
                one.insert(k.clone(), v.clone());
            }
            c.apply(&one).unwrap();
            assert_eq!(c.restart_strategy, want);
        }

        // A previously configured other strategy is replaced, not merged.
        let mut c = ExecutionConfig::default();
        c.set(FAILURE_RATE_MAX_FAILURES, "5").unwrap();
        c.apply(&settings(&[
            (EXPONENTIAL_DELAY_ATTEMPTS, "2"),
            (RESTART_STRATEGY, "exponential-delay"),
        ]))
        .unwrap();
        let RestartStrategyConfig::ExponentialDelay { attempts, .. } =
            c.restart_strategy.clone().unwrap()
        else {
            panic!("{:?}", c.restart_strategy);
        };
        assert_eq!(attempts, 2);
    }

    #[test]
    fn apply_rejects_options_of_another_strategy_than_the_type() {
        let mut c = ExecutionConfig::default();
        let before = c.clone();
        let err = c
            .apply(&settings(&[
                (CHECKPOINTING_INTERVAL, "1s"),
                (FIXED_DELAY_ATTEMPTS, "3"),
                (RESTART_STRATEGY, "failure-rate"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(FIXED_DELAY_ATTEMPTS), "{err}");
        assert!(err.contains(RESTART_STRATEGY), "{err}");
        assert!(err.contains("failure-rate"), "{err}");
        assert_eq!(c, before, "a failed apply must not change anything");

        let err = c
            .apply(&settings(&[
                (EXPONENTIAL_DELAY_JITTER_FACTOR, "0.5"),
                (RESTART_STRATEGY, "none"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(EXPONENTIAL_DELAY_JITTER_FACTOR), "{err}");
        assert!(err.contains("'none'"), "{err}");

        // A bad value late in the map leaves the config untouched too.
        let err = c
            .apply(&settings(&[
                (CHECKPOINTING_INTERVAL, "1s"),
                (PARALLELISM_DEFAULT, "0"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(PARALLELISM_DEFAULT), "{err}");
        assert_eq!(c, before);
    }

    #[test]
    fn savepoint_restore_settings() {
        let mut c = ExecutionConfig::default();
        c.set(SAVEPOINT_PATH, "file:///tmp/sp/savepoint-1").unwrap();
        assert_eq!(
            c.savepoint_restore,
            Some(SavepointRestoreSettings {
                path: "file:///tmp/sp/savepoint-1".into(),
                allow_non_restored_state: false,
                claim_mode: RecoveryClaimMode::NoClaim,
            })
        );
        c.set(SAVEPOINT_IGNORE_UNCLAIMED_STATE, "TRUE").unwrap();
        assert!(
            c.savepoint_restore
                .as_ref()
                .unwrap()
                .allow_non_restored_state
        );
        c.validate().unwrap();
        set_err(&mut c, SAVEPOINT_PATH, " ");
        set_err(&mut c, SAVEPOINT_IGNORE_UNCLAIMED_STATE, "yes");

        // Ignore-unclaimed before the path: kept, and applied when the path comes.
        let mut c = ExecutionConfig::default();
        c.set(SAVEPOINT_IGNORE_UNCLAIMED_STATE, "true").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains(
                "execution.savepoint.ignore-unclaimed-state is set but \
                 execution.savepoint.path is not"
            ),
            "{err}"
        );
        c.set(SAVEPOINT_PATH, "/tmp/chk-7").unwrap();
        assert_eq!(
            c.savepoint_restore,
            Some(SavepointRestoreSettings {
                path: "/tmp/chk-7".into(),
                allow_non_restored_state: true,
                claim_mode: RecoveryClaimMode::NoClaim,
            })
        );
        c.validate().unwrap();

        // The claim mode under either of Flink's names, before or after the path.
        let mut c = ExecutionConfig::default();
        c.set(CLAIM_MODE, "claim").unwrap();
        c.set(SAVEPOINT_PATH, "/tmp/chk-7").unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.savepoint_restore.as_ref().map(|s| s.claim_mode),
            Some(RecoveryClaimMode::Claim)
        );
        c.set(SAVEPOINT_RESTORE_MODE, "NO_CLAIM").unwrap();
        assert_eq!(
            c.savepoint_restore.as_ref().map(|s| s.claim_mode),
            Some(RecoveryClaimMode::NoClaim)
        );
        let err = c.set(CLAIM_MODE, "LEGACY").unwrap_err().to_string();
        assert!(err.contains("LEGACY is not supported"), "{err}");
        set_err(&mut c, CLAIM_MODE, "maybe");
        set_err(&mut c, JOB_RESULT_STORE_PATH, " ");
        c.set(JOB_RESULT_STORE_PATH, "/data/jrs").unwrap();
        assert_eq!(c.job_result_store_path.as_deref(), Some("/data/jrs"));

        // `false` alone is the default and restores nothing.
        let mut c = ExecutionConfig::default();
        c.set(SAVEPOINT_IGNORE_UNCLAIMED_STATE, "false").unwrap();
        assert_eq!(c.savepoint_restore, None);
        c.validate().unwrap();

        // In one map, in either order.
        let mut c = ExecutionConfig::default();
        c.apply(&settings(&[
            (SAVEPOINT_PATH, "/tmp/sp"),
            (SAVEPOINT_IGNORE_UNCLAIMED_STATE, "true"),
        ]))
        .unwrap();
        c.validate().unwrap();
        assert!(c.savepoint_restore.unwrap().allow_non_restored_state);
    }

    #[test]
    fn validate_checks_cross_key_constraints() {
        let mut c = ExecutionConfig::default();
        c.validate().unwrap();
        c.set(EXPONENTIAL_DELAY_INITIAL_BACKOFF, "2min").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains(EXPONENTIAL_DELAY_MAX_BACKOFF), "{err}");
        c.set(EXPONENTIAL_DELAY_MAX_BACKOFF, "10min").unwrap();
        c.validate().unwrap();

        let mut c = ExecutionConfig::default();
        c.checkpoint.num_retained = 0;
        assert!(c.validate().is_err());
        let mut c = ExecutionConfig::default();
        c.checkpoint.interval_ms = Some(0);
        assert!(c.validate().is_err());
    }

    #[test]
    fn typos_suggest_the_right_key() {
        for (typo, want) in [
            ("execution.checkpointing.intervall", CHECKPOINTING_INTERVAL),
            ("execution.checkpoint.interval", CHECKPOINTING_INTERVAL),
            ("execution.checkpointing.mod", CHECKPOINTING_MODE),
            ("execution.checkpointing.timout", CHECKPOINTING_TIMEOUT),
            ("execution.checkpointing.min-paus", CHECKPOINTING_MIN_PAUSE),
            (
                "execution.checkpointing.max-concurent-checkpoints",
                CHECKPOINTING_MAX_CONCURRENT,
            ),
            (
                "execution.checkpointing.tolerable-failed-checkpoint",
                CHECKPOINTING_TOLERABLE_FAILED,
            ),
            (
                "execution.checkpointing.externalized-checkpoints-retention",
                CHECKPOINTING_RETENTION,
            ),
            ("state.checkpoint.dir", CHECKPOINTS_DIR),
            ("state.savepoint.dir", SAVEPOINTS_DIR),
            ("state.checkpoints.num-retain", CHECKPOINTS_NUM_RETAINED),
            ("restart-strategy.typ", RESTART_STRATEGY),
            ("restart-strategy.fixed-delay.attemps", FIXED_DELAY_ATTEMPTS),
            ("restart-strategy.fixed-delay.dealy", FIXED_DELAY_DELAY),
            (
                "restart-strategy.exponential-delay.initial-backof",
                EXPONENTIAL_DELAY_INITIAL_BACKOFF,
            ),
            (
                "restart-strategy.exponential-delay.max-backof",
                EXPONENTIAL_DELAY_MAX_BACKOFF,
            ),
            (
                "restart-strategy.exponential-delay.backoff-multiplyer",
                EXPONENTIAL_DELAY_BACKOFF_MULTIPLIER,
            ),
            (
                "restart-strategy.exponential-delay.reset-backoff-treshold",
                EXPONENTIAL_DELAY_RESET_BACKOFF_THRESHOLD,
            ),
            (
                "restart-strategy.exponential-delay.jitter",
                EXPONENTIAL_DELAY_JITTER_FACTOR,
            ),
            (
                "restart-strategy.exponential-delay.attempts-before-reset",
                EXPONENTIAL_DELAY_ATTEMPTS,
            ),
            (
                "restart-strategy.failure-rate.max-failure-per-interval",
                FAILURE_RATE_MAX_FAILURES,
            ),
            (
                "restart-strategy.failure-rate.failure-interval",
                FAILURE_RATE_INTERVAL,
            ),
            ("restart-strategy.failure-rate.dely", FAILURE_RATE_DELAY),
            ("execution.savepoint.paths", SAVEPOINT_PATH),
            (
                "execution.savepoint.ignore-unclaimed-states",
                SAVEPOINT_IGNORE_UNCLAIMED_STATE,
            ),
        ] {
            let mut c = ExecutionConfig::default();
            let err = c.set(typo, "1").unwrap_err().to_string();
            assert!(
                err.contains(&format!("did you mean '{want}'")),
                "{typo}: {err}"
            );
        }
        // Unknown keys under `restart-strategy.` go through the same check in `apply`.
        let mut c = ExecutionConfig::default();
        let err = c
            .apply(&settings(&[
                ("restart-strategy.fixed-delay.attemps", "3"),
                (RESTART_STRATEGY, "fixed-delay"),
            ]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("did you mean '{FIXED_DELAY_ATTEMPTS}'")),
            "{err}"
        );
    }

    #[test]
    fn minicluster_taskmanagers_in_both_spellings() {
        let mut c = ExecutionConfig::default();
        assert_eq!(c.minicluster_taskmanagers, None);
        c.set(MINICLUSTER_TASKMANAGERS, "2").unwrap();
        assert_eq!(c.minicluster_taskmanagers, Some(2));
        c.set(MINICLUSTER_NUM_TASKMANAGERS, "3").unwrap();
        assert_eq!(c.minicluster_taskmanagers, Some(3));
        for bad in ["0", "65", "two"] {
            let err = set_err(&mut c, MINICLUSTER_TASKMANAGERS, bad);
            assert!(err.contains(MINICLUSTER_TASKMANAGERS), "{err}");
        }
        assert_eq!(c.minicluster_taskmanagers, Some(3));
    }

    #[test]
    fn every_known_key_is_settable() {
        for key in KNOWN_KEYS {
            // Path keys accept any string; the rest reject it as a bad value, not a bad key.
            if let Err(e) = ExecutionConfig::default().set(key, "\u{1}") {
                let err = e.to_string();
                assert!(!err.contains("unknown configuration key"), "{key}: {err}");
            }
        }
    }
}
