//! What both sides of the gRPC control plane (DESIGN §8) share: the errors of starting a
//! cluster process, endpoints, the conversions between the wire types of `eddy-rpc` and the
//! cluster's own, and how a transport failure is told from an answer. The jobmanager's
//! services are in [`crate::jobmanager::rpc_services`], the taskmanager's in
//! [`crate::taskmanager::rpc_services`].

use crate::taskmanager::task_executor::{ExecutionState, TaskExecutorReport};
use eddy_core::JobId;
use eddy_rpc::tonic::transport::Endpoint;
use eddy_rpc::tonic::{self, Status};
use eddy_rpc::v1;
use eddy_runtime::checkpoint::SubtaskKey;
use std::time::Duration;

/// Errors starting a cluster process.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The jobmanager's address is unusable.
    #[error("invalid jobmanager address: {0}")]
    Address(InvalidAddress),
}

/// A `host:port` that is not an RPC endpoint.
#[derive(Debug, thiserror::Error)]
#[error("invalid address '{address}': {reason}")]
pub struct InvalidAddress {
    /// The address.
    pub address: String,
    /// Why.
    pub reason: String,
}

pub(crate) fn parse_job(id: &str) -> Result<JobId, Status> {
    id.parse()
        .map_err(|e: eddy_core::ParseJobIdError| Status::invalid_argument(e.to_string()))
}

pub(crate) fn endpoint(address: &str) -> Result<Endpoint, InvalidAddress> {
    Endpoint::from_shared(format!("http://{address}"))
        .map(|e| {
            e.connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
        })
        .map_err(|e| InvalidAddress {
            address: address.to_string(),
            reason: e.to_string(),
        })
}

pub(crate) fn report_to_proto(r: &TaskExecutorReport) -> v1::TaskExecutorStatus {
    v1::TaskExecutorStatus {
        resource_id: r.resource_id.clone(),
        slots: r
            .slots
            .iter()
            .enumerate()
            .map(|(i, j)| v1::SlotStatus {
                index: i as u32,
                job_id: j.map(|j| j.to_string()).unwrap_or_default(),
            })
            .collect(),
        network_buffers_total: r.network_buffers_total as u32,
        network_buffers_available: r.network_buffers_available as u32,
        network_segment_size: r.network_segment_size as u32,
        managed_memory_per_slot: r.managed_memory_per_slot,
        rss_bytes: r.rss_bytes,
        running_tasks: r.running_tasks as u32,
        network_bytes_received: r.network_bytes.0,
        network_bytes_sent: r.network_bytes.1,
    }
}

pub(crate) fn report_from_proto(s: &v1::TaskExecutorStatus) -> TaskExecutorReport {
    TaskExecutorReport {
        resource_id: s.resource_id.clone(),
        slots: s.slots.iter().map(|x| x.job_id.parse().ok()).collect(),
        network_buffers_total: s.network_buffers_total as usize,
        network_buffers_available: s.network_buffers_available as usize,
        network_segment_size: s.network_segment_size as usize,
        managed_memory_per_slot: s.managed_memory_per_slot,
        rss_bytes: s.rss_bytes,
        running_tasks: s.running_tasks as usize,
        network_bytes: (s.network_bytes_received, s.network_bytes_sent),
    }
}

/// Whether an RPC failed in the transport (peer gone, connection refused or reset), as
/// opposed to an answer: retried for commands, counted by the heartbeat monitor.
pub(crate) fn is_transport_failure(s: &Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

/// How long a failed command waits before it is sent again (doubling up to a second).
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(50);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(1);
/// How soon a heartbeat is sent again after one failed in the transport.
pub(crate) const FAST_PROBE: Duration = Duration::from_millis(100);

pub(crate) fn execution_state(s: i32) -> ExecutionState {
    match v1::ExecutionState::try_from(s).unwrap_or(v1::ExecutionState::Failed) {
        v1::ExecutionState::Created => ExecutionState::Created,
        v1::ExecutionState::Scheduled => ExecutionState::Scheduled,
        v1::ExecutionState::Deploying => ExecutionState::Deploying,
        v1::ExecutionState::Initializing => ExecutionState::Initializing,
        v1::ExecutionState::Running => ExecutionState::Running,
        v1::ExecutionState::Finished => ExecutionState::Finished,
        v1::ExecutionState::Canceling => ExecutionState::Canceling,
        v1::ExecutionState::Canceled => ExecutionState::Canceled,
        v1::ExecutionState::Failed => ExecutionState::Failed,
    }
}

pub(crate) fn execution_state_proto(s: ExecutionState) -> v1::ExecutionState {
    match s {
        ExecutionState::Created => v1::ExecutionState::Created,
        ExecutionState::Scheduled => v1::ExecutionState::Scheduled,
        ExecutionState::Deploying => v1::ExecutionState::Deploying,
        ExecutionState::Initializing => v1::ExecutionState::Initializing,
        ExecutionState::Running => v1::ExecutionState::Running,
        ExecutionState::Finished => v1::ExecutionState::Finished,
        ExecutionState::Canceling => v1::ExecutionState::Canceling,
        ExecutionState::Canceled => v1::ExecutionState::Canceled,
        ExecutionState::Failed => v1::ExecutionState::Failed,
    }
}

pub(crate) fn key(vertex: u32, subtask: u32) -> SubtaskKey {
    SubtaskKey {
        vertex: vertex as usize,
        subtask: subtask as usize,
    }
}
