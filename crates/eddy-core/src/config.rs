//! Execution configuration with Flink's key names, validated when it is set.

use crate::checkpointing::{CheckpointConfig, RestartStrategyConfig, SavepointRestoreSettings};
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

/// Every key the embedded runtime understands, for "did you mean" suggestions.
pub const KNOWN_KEYS: &[&str] = &[
    PARALLELISM_DEFAULT,
    MAX_PARALLELISM,
    OPERATOR_CHAINING,
    BUFFER_TIMEOUT,
    SEGMENT_SIZE,
    BUFFERS_PER_CHANNEL,
    AUTO_WATERMARK_INTERVAL,
];

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
        }
    }
}

impl ExecutionConfig {
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
    /// and bad values.
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
        match key {
            PARALLELISM_DEFAULT => self.parallelism = positive(value)?,
            MAX_PARALLELISM => {
                let n = positive(value)?;
                if n > crate::keygroup::UPPER_BOUND_MAX_PARALLELISM {
                    return Err(bad("max parallelism must be at most 32768"));
                }
                self.max_parallelism = Some(n)
            }
            OPERATOR_CHAINING => {
                self.chaining_enabled = value
                    .trim()
                    .parse::<bool>()
                    .map_err(|_| bad("expected true or false"))?
            }
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

    /// Applies several `key: value` settings, as from a YAML map or `-D` flags.
    pub fn apply(&mut self, settings: &BTreeMap<String, String>) -> Result<(), CoreError> {
        for (k, v) in settings {
            self.set(k, v)?;
        }
        Ok(())
    }
}

/// Parses `100`, `100ms`, `2s`, `1min` into milliseconds (`-1` stays -1).
pub fn parse_duration_ms(v: &str) -> Option<i64> {
    let v = v.trim();
    let (num, unit) = split_unit(v);
    let n: i64 = num.parse().ok()?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "min" | "m" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Parses `32768`, `32kb`, `1mb` into bytes.
pub fn parse_bytes(v: &str) -> Option<usize> {
    let (num, unit) = split_unit(v.trim());
    let n: usize = num.parse().ok()?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
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
}
