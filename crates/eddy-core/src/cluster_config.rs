//! Configuration of the cluster processes (jobmanager, taskmanager, client), with Flink's key
//! names, and [`Configuration`]: the flat `key: value` settings of `conf/config.yaml` plus
//! `-D` overrides, split into the job's [`ExecutionConfig`] keys and these. Every key is
//! checked when a process starts: an unknown key or a bad value is an error naming the key, the
//! value and the nearest known key.

use crate::config::{nearest_key, parse_bytes, parse_duration_ms, ExecutionConfig, KNOWN_KEYS};
use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `jobmanager.rpc.address` (where taskmanagers reach the jobmanager's RPC services)
pub const JOBMANAGER_RPC_ADDRESS: &str = "jobmanager.rpc.address";
/// `jobmanager.rpc.port` (0 picks a free port)
pub const JOBMANAGER_RPC_PORT: &str = "jobmanager.rpc.port";
/// `jobmanager.bind-host` (the interface the jobmanager's RPC listens on)
pub const JOBMANAGER_BIND_HOST: &str = "jobmanager.bind-host";
/// `rest.address` (where clients reach the REST endpoint; setting it makes `eddy run` submit
/// there instead of running on the embedded MiniCluster)
pub const REST_ADDRESS: &str = "rest.address";
/// `rest.port` (0 picks a free port)
pub const REST_PORT: &str = "rest.port";
/// `rest.enabled` (whether `eddy run` without a jobmanager serves the REST API of its embedded
/// MiniCluster on `rest.port`; a jobmanager always serves it)
pub const REST_ENABLED: &str = "rest.enabled";
/// `rest.bind-address` (the interface the REST endpoint listens on)
pub const REST_BIND_ADDRESS: &str = "rest.bind-address";
/// `taskmanager.host` (the address other processes reach this taskmanager at; also bound)
pub const TASKMANAGER_HOST: &str = "taskmanager.host";
/// `taskmanager.rpc.port` (0 picks a free port)
pub const TASKMANAGER_RPC_PORT: &str = "taskmanager.rpc.port";
/// `taskmanager.data.port` (the network stack; 0 picks a free port)
pub const TASKMANAGER_DATA_PORT: &str = "taskmanager.data.port";
/// `taskmanager.resource-id` (a stable name; generated when unset)
pub const TASKMANAGER_RESOURCE_ID: &str = "taskmanager.resource-id";
/// `taskmanager.numberOfTaskSlots`
pub const NUMBER_OF_TASK_SLOTS: &str = "taskmanager.numberOfTaskSlots";
/// `taskmanager.memory.process.size` (the budget the fractions below apply to)
pub const PROCESS_SIZE: &str = "taskmanager.memory.process.size";
/// `taskmanager.memory.network.fraction`
pub const NETWORK_FRACTION: &str = "taskmanager.memory.network.fraction";
/// `taskmanager.memory.network.min`
pub const NETWORK_MIN: &str = "taskmanager.memory.network.min";
/// `taskmanager.memory.network.max`
pub const NETWORK_MAX: &str = "taskmanager.memory.network.max";
/// `taskmanager.network.numberOfBuffers` (a fixed buffer count; overrides the fraction)
pub const NETWORK_BUFFERS: &str = "taskmanager.network.numberOfBuffers";
/// `taskmanager.memory.managed.fraction`
pub const MANAGED_FRACTION: &str = "taskmanager.memory.managed.fraction";
/// `taskmanager.memory.managed.size` (overrides the fraction)
pub const MANAGED_SIZE: &str = "taskmanager.memory.managed.size";
/// `heartbeat.interval`
pub const HEARTBEAT_INTERVAL: &str = "heartbeat.interval";
/// `heartbeat.timeout`
pub const HEARTBEAT_TIMEOUT: &str = "heartbeat.timeout";
/// `heartbeat.rpc-failure-threshold` (consecutive failed heartbeat RPCs after which a
/// taskmanager is lost; -1 disables)
pub const HEARTBEAT_RPC_FAILURE_THRESHOLD: &str = "heartbeat.rpc-failure-threshold";
/// `taskmanager.network.max-connections` (open data connections beyond which a taskmanager
/// refuses new inbound ones)
pub const NETWORK_MAX_CONNECTIONS: &str = "taskmanager.network.max-connections";
/// `slot.request.timeout` (how long a job waits for slots before failing)
pub const SLOT_REQUEST_TIMEOUT: &str = "slot.request.timeout";

/// Every cluster key.
pub const CLUSTER_KEYS: &[&str] = &[
    JOBMANAGER_RPC_ADDRESS,
    JOBMANAGER_RPC_PORT,
    JOBMANAGER_BIND_HOST,
    REST_ADDRESS,
    REST_PORT,
    REST_ENABLED,
    REST_BIND_ADDRESS,
    TASKMANAGER_HOST,
    TASKMANAGER_RPC_PORT,
    TASKMANAGER_DATA_PORT,
    TASKMANAGER_RESOURCE_ID,
    NUMBER_OF_TASK_SLOTS,
    PROCESS_SIZE,
    NETWORK_FRACTION,
    NETWORK_MIN,
    NETWORK_MAX,
    NETWORK_BUFFERS,
    MANAGED_FRACTION,
    MANAGED_SIZE,
    HEARTBEAT_INTERVAL,
    HEARTBEAT_TIMEOUT,
    HEARTBEAT_RPC_FAILURE_THRESHOLD,
    NETWORK_MAX_CONNECTIONS,
    SLOT_REQUEST_TIMEOUT,
];

/// Settings of the cluster processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// `jobmanager.rpc.address`
    pub jobmanager_rpc_address: String,
    /// `jobmanager.rpc.port`
    pub jobmanager_rpc_port: u16,
    /// `jobmanager.bind-host`
    pub jobmanager_bind_host: String,
    /// `rest.address`, when set (then clients submit there).
    pub rest_address: Option<String>,
    /// `rest.port`
    pub rest_port: u16,
    /// `rest.bind-address`
    pub rest_bind_address: String,
    /// `rest.enabled` (for the embedded MiniCluster).
    #[serde(default)]
    pub rest_enabled: bool,
    /// `taskmanager.host`
    pub taskmanager_host: String,
    /// `taskmanager.rpc.port`
    pub taskmanager_rpc_port: u16,
    /// `taskmanager.data.port`
    pub taskmanager_data_port: u16,
    /// `taskmanager.resource-id`
    pub taskmanager_resource_id: Option<String>,
    /// `taskmanager.numberOfTaskSlots`
    pub slots: usize,
    /// `taskmanager.memory.process.size` in bytes.
    pub process_size: usize,
    /// `taskmanager.memory.network.fraction`
    pub network_fraction: f64,
    /// `taskmanager.memory.network.min` in bytes.
    pub network_min: usize,
    /// `taskmanager.memory.network.max` in bytes.
    pub network_max: usize,
    /// `taskmanager.network.numberOfBuffers`, when set.
    pub network_buffers: Option<usize>,
    /// `taskmanager.memory.managed.fraction`
    pub managed_fraction: f64,
    /// `taskmanager.memory.managed.size` in bytes, when set.
    pub managed_size: Option<usize>,
    /// `heartbeat.interval` in ms.
    pub heartbeat_interval_ms: u64,
    /// `heartbeat.timeout` in ms.
    pub heartbeat_timeout_ms: u64,
    /// `heartbeat.rpc-failure-threshold`; `None` (-1) only the timeout counts.
    #[serde(default = "default_rpc_failure_threshold")]
    pub heartbeat_rpc_failure_threshold: Option<u32>,
    /// `taskmanager.network.max-connections`.
    #[serde(default = "default_network_max_connections")]
    pub network_max_connections: usize,
    /// `slot.request.timeout` in ms.
    pub slot_request_timeout_ms: u64,
}

fn default_rpc_failure_threshold() -> Option<u32> {
    Some(2)
}

fn default_network_max_connections() -> usize {
    1024
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            jobmanager_rpc_address: "localhost".into(),
            jobmanager_rpc_port: 6123,
            jobmanager_bind_host: "127.0.0.1".into(),
            rest_address: None,
            rest_port: 8081,
            rest_bind_address: "127.0.0.1".into(),
            rest_enabled: false,
            taskmanager_host: "127.0.0.1".into(),
            taskmanager_rpc_port: 0,
            taskmanager_data_port: 0,
            taskmanager_resource_id: None,
            slots: 1,
            process_size: 1728 << 20,
            network_fraction: 0.1,
            network_min: 64 << 20,
            network_max: 1 << 30,
            network_buffers: None,
            managed_fraction: 0.4,
            managed_size: None,
            heartbeat_interval_ms: 10_000,
            heartbeat_timeout_ms: 50_000,
            heartbeat_rpc_failure_threshold: default_rpc_failure_threshold(),
            network_max_connections: default_network_max_connections(),
            slot_request_timeout_ms: 300_000,
        }
    }
}

impl ClusterConfig {
    /// Sets one cluster key from its string form.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), CoreError> {
        let bad = |reason: &str| CoreError::InvalidConfig {
            key: key.to_string(),
            reason: format!("{reason}, got '{value}'"),
        };
        let v = value.trim();
        let port = || {
            v.parse::<u16>()
                .map_err(|_| bad("expected a port number 0..=65535"))
        };
        let host = || {
            if v.is_empty() || v.contains(char::is_whitespace) || v.contains('/') {
                Err(bad("expected a host name or IP address"))
            } else {
                Ok(v.to_string())
            }
        };
        let bytes = || parse_bytes(v).ok_or_else(|| bad("expected a size like 64mb or 1gb"));
        let fraction = || {
            v.parse::<f64>()
                .ok()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| bad("expected a fraction between 0 and 1"))
        };
        let duration = || {
            parse_duration_ms(v)
                .filter(|ms| *ms > 0)
                .map(|ms| ms as u64)
                .ok_or_else(|| bad("expected a positive duration like 500ms, 10s or 1min"))
        };
        match key {
            JOBMANAGER_RPC_ADDRESS => self.jobmanager_rpc_address = host()?,
            JOBMANAGER_RPC_PORT => self.jobmanager_rpc_port = port()?,
            JOBMANAGER_BIND_HOST => self.jobmanager_bind_host = host()?,
            REST_ADDRESS => self.rest_address = Some(host()?),
            REST_PORT => self.rest_port = port()?,
            REST_BIND_ADDRESS => self.rest_bind_address = host()?,
            REST_ENABLED => {
                self.rest_enabled =
                    crate::config::parse_bool(v).ok_or_else(|| bad("expected true or false"))?
            }
            TASKMANAGER_HOST => self.taskmanager_host = host()?,
            TASKMANAGER_RPC_PORT => self.taskmanager_rpc_port = port()?,
            TASKMANAGER_DATA_PORT => self.taskmanager_data_port = port()?,
            TASKMANAGER_RESOURCE_ID => {
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(bad("expected letters, digits, '-', '_' or '.'"));
                }
                self.taskmanager_resource_id = Some(v.to_string());
            }
            NUMBER_OF_TASK_SLOTS => {
                self.slots = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| bad("expected an integer in 1..=1024"))?
            }
            PROCESS_SIZE => self.process_size = bytes()?,
            NETWORK_FRACTION => self.network_fraction = fraction()?,
            NETWORK_MIN => self.network_min = bytes()?,
            NETWORK_MAX => self.network_max = bytes()?,
            NETWORK_BUFFERS => {
                self.network_buffers = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad("expected a positive integer"))?,
                )
            }
            MANAGED_FRACTION => self.managed_fraction = fraction()?,
            MANAGED_SIZE => self.managed_size = Some(bytes()?),
            HEARTBEAT_INTERVAL => self.heartbeat_interval_ms = duration()?,
            HEARTBEAT_TIMEOUT => self.heartbeat_timeout_ms = duration()?,
            HEARTBEAT_RPC_FAILURE_THRESHOLD => {
                self.heartbeat_rpc_failure_threshold = match v.trim() {
                    "-1" => None,
                    n => Some(
                        n.parse::<u32>()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| bad("expected a positive integer, or -1 to disable"))?,
                    ),
                }
            }
            NETWORK_MAX_CONNECTIONS => {
                self.network_max_connections = v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 2)
                    .ok_or_else(|| bad("expected an integer of at least 2"))?
            }
            SLOT_REQUEST_TIMEOUT => self.slot_request_timeout_ms = duration()?,
            _ => return Err(unknown_key(key)),
        }
        Ok(())
    }

    /// Checks constraints between keys.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.network_min > self.network_max {
            return Err(CoreError::InvalidConfig {
                key: NETWORK_MIN.into(),
                reason: format!(
                    "the minimum ({} bytes) is larger than {NETWORK_MAX} ({} bytes)",
                    self.network_min, self.network_max
                ),
            });
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return Err(CoreError::InvalidConfig {
                key: HEARTBEAT_TIMEOUT.into(),
                reason: format!(
                    "must be larger than {HEARTBEAT_INTERVAL} ({} ms), got {} ms",
                    self.heartbeat_interval_ms, self.heartbeat_timeout_ms
                ),
            });
        }
        Ok(())
    }

    /// Network buffers of a taskmanager with segments of `segment_size` bytes: the configured
    /// count, else network memory (the fraction of the process size, clamped to min..=max)
    /// divided by the segment size.
    pub fn network_buffer_count(&self, segment_size: usize) -> usize {
        if let Some(n) = self.network_buffers {
            return n;
        }
        let bytes = (self.process_size as f64 * self.network_fraction) as usize;
        let bytes = bytes.clamp(self.network_min, self.network_max);
        (bytes / segment_size.max(1)).max(1)
    }

    /// Managed memory of one slot, in bytes.
    pub fn managed_memory_per_slot(&self) -> u64 {
        let total = self
            .managed_size
            .unwrap_or((self.process_size as f64 * self.managed_fraction) as usize);
        (total / self.slots.max(1)) as u64
    }
}

fn unknown_key(key: &str) -> CoreError {
    let hint = nearest_key(key)
        .map(|k| format!("; did you mean '{k}'?"))
        .unwrap_or_default();
    CoreError::InvalidConfig {
        key: key.to_string(),
        reason: format!("unknown configuration key{hint}"),
    }
}

/// Flat `key: value` settings from the configuration file and `-D` flags, checked and split
/// into the cluster's and the jobs' settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    /// Every setting, by key.
    pub settings: BTreeMap<String, String>,
}

impl Configuration {
    /// Adds or replaces a setting (later sources win: file, then `-D`).
    pub fn set(&mut self, key: &str, value: &str) {
        self.settings
            .insert(key.trim().to_string(), value.to_string());
    }

    /// Parses `key=value` (a `-D` flag's argument).
    pub fn set_pair(&mut self, pair: &str) -> Result<(), CoreError> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| CoreError::InvalidConfig {
                key: pair.to_string(),
                reason: "expected key=value".into(),
            })?;
        self.set(k, v);
        Ok(())
    }

    /// The job settings (keys of [`ExecutionConfig`]).
    pub fn job_settings(&self) -> BTreeMap<String, String> {
        self.settings
            .iter()
            .filter(|(k, _)| KNOWN_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Checks every setting and returns the cluster configuration and the default execution
    /// configuration of jobs.
    pub fn resolve(&self) -> Result<(ClusterConfig, ExecutionConfig), CoreError> {
        let mut cluster = ClusterConfig::default();
        for (k, v) in &self.settings {
            if CLUSTER_KEYS.contains(&k.as_str()) {
                cluster.set(k, v)?;
            } else if !KNOWN_KEYS.contains(&k.as_str()) {
                return Err(unknown_key(k));
            }
        }
        cluster.validate()?;
        let mut exec = ExecutionConfig::default();
        exec.apply(&self.job_settings())?;
        exec.validate()?;
        Ok((cluster, exec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_bad_keys_name_key_value_and_nearest() {
        let mut c = Configuration::default();
        c.set("taskmanager.numberOfTaskSlot", "2");
        let err = c.resolve().unwrap_err().to_string();
        assert!(err.contains("taskmanager.numberOfTaskSlot'"), "{err}");
        assert!(
            err.contains("did you mean 'taskmanager.numberOfTaskSlots'"),
            "{err}"
        );
        let mut c = Configuration::default();
        c.set("rest.port", "80x");
        let err = c.resolve().unwrap_err().to_string();
        assert!(
            err.contains("'rest.port'") && err.contains("'80x'"),
            "{err}"
        );
        let mut c = Configuration::default();
        c.set("paralelism.default", "2");
        let err = c.resolve().unwrap_err().to_string();
        assert!(err.contains("did you mean 'parallelism.default'"), "{err}");
    }

    #[test]
    fn job_and_cluster_keys_are_split() {
        let mut c = Configuration::default();
        c.set_pair("taskmanager.numberOfTaskSlots=4").unwrap();
        c.set_pair("parallelism.default=3").unwrap();
        c.set_pair("heartbeat.timeout=2s").unwrap();
        c.set_pair("heartbeat.interval=500ms").unwrap();
        let (cluster, exec) = c.resolve().unwrap();
        assert_eq!(cluster.slots, 4);
        assert_eq!(cluster.heartbeat_timeout_ms, 2000);
        assert_eq!(exec.parallelism, 3);
        assert_eq!(c.job_settings().len(), 1);
        assert_eq!(cluster.heartbeat_rpc_failure_threshold, Some(2));
        c.set("heartbeat.rpc-failure-threshold", "-1");
        assert_eq!(c.resolve().unwrap().0.heartbeat_rpc_failure_threshold, None);
        c.set("heartbeat.rpc-failure-threshold", "0");
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("heartbeat.rpc-failure-threshold"));
        c.set("heartbeat.rpc-failure-threshold", "3");
        c.set("heartbeat.timeout", "100ms");
        assert!(c
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("heartbeat.timeout"));
    }

    #[test]
    fn network_buffers_follow_fraction_min_max_or_count() {
        let mut c = ClusterConfig::default();
        // 10% of 1728 MiB = 172.8 MiB in 32 KiB buffers.
        assert_eq!(c.network_buffer_count(32 << 10), 5529);
        c.set(NETWORK_MAX, "64mb").unwrap();
        assert_eq!(c.network_buffer_count(32 << 10), 2048);
        c.set(NETWORK_BUFFERS, "100").unwrap();
        assert_eq!(c.network_buffer_count(32 << 10), 100);
    }
}
