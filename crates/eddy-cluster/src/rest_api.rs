//! The REST API's request and response bodies (Flink's `runtime.rest.messages`): one serde
//! type per body, with Flink's field names where the concept is the same. The server
//! (`eddy-web`) answers with them, the CLI reads them, and the MiniCluster's
//! [`crate::JobClient::details`] returns the same view; `eddy-web` generates the OpenAPI
//! document (`GET /openapi.json`) from their schemas.
//!
//! The views are built here from the Dispatcher's records ([`Dispatcher::overview`],
//! [`Dispatcher::taskmanagers_info`], [`Dispatcher::job_details_info`], …), so every reader
//! sees the same numbers.

use crate::jobmanager::dispatcher::{Dispatcher, JobDetails, JobFailureView};
use crate::jobmanager::job_master::{now_ms, JobStatus};
use crate::jobmanager::resource_manager::TaskManagerRecord;
use crate::taskmanager::task_executor::ExecutionState;
use eddy_core::JobId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub use crate::jobmanager::dispatcher::CheckpointCounts;

/// Every error answer: `{"errors": ["…"]}` (Flink's `ErrorResponseBody`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong.
    pub errors: Vec<String>,
}

/// `GET /overview` (Flink's `ClusterOverviewWithVersion`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterOverview {
    /// Registered taskmanagers.
    pub taskmanagers: usize,
    /// Slots of all taskmanagers.
    pub slots_total: usize,
    /// Slots no job holds.
    pub slots_available: usize,
    /// Jobs not in a terminal state.
    pub jobs_running: usize,
    /// Finished jobs.
    pub jobs_finished: usize,
    /// Cancelled jobs.
    pub jobs_cancelled: usize,
    /// Failed jobs.
    pub jobs_failed: usize,
    /// Slot requests waiting for slots.
    pub pending_slot_requests: Vec<PendingSlotRequestInfo>,
    /// Eddy's version.
    pub eddy_version: String,
}

/// A slot request that waits for slots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PendingSlotRequestInfo {
    /// The job.
    pub job_id: String,
    /// Slots asked for.
    pub slots: usize,
    /// Waiting for this long (ms).
    pub waiting_ms: u64,
}

/// `GET /taskmanagers` (Flink's `TaskManagersInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskManagersInfo {
    /// Every registered taskmanager.
    pub taskmanagers: Vec<TaskManagerInfo>,
}

/// One taskmanager (Flink's `TaskManagerInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerInfo {
    /// Its resource id.
    pub id: String,
    /// Its TaskExecutor RPC address.
    pub path: String,
    /// Its data port (`host:port`).
    pub data_address: String,
    /// Milliseconds since its last heartbeat answer.
    pub time_since_last_heartbeat: u64,
    /// Its slots.
    pub slots_number: usize,
    /// Slots no job holds.
    pub free_slots: usize,
    /// Running task threads.
    pub running_tasks: usize,
    /// Its memory.
    pub memory: TaskManagerMemory,
    /// Its network traffic.
    pub network: TaskManagerNetwork,
}

/// A taskmanager's memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerMemory {
    /// Network buffers in the pool.
    pub network_buffers_total: usize,
    /// Network buffers not in use.
    pub network_buffers_available: usize,
    /// Bytes per network buffer.
    pub network_segment_size: usize,
    /// Managed memory per slot, in bytes.
    pub managed_memory_per_slot: u64,
    /// Resident set size of the process, in bytes.
    pub rss: u64,
}

/// Bytes a taskmanager's network stack moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerNetwork {
    /// Received.
    pub bytes_received: u64,
    /// Sent.
    pub bytes_sent: u64,
}

/// `GET /jobs` (Flink's `JobIdsWithStatusOverview`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobIdsWithStatusOverview {
    /// Every job.
    pub jobs: Vec<JobIdWithStatus>,
}

/// A job's id and status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobIdWithStatus {
    /// The job id (32 hex digits).
    pub id: String,
    /// Its status.
    pub status: JobStatus,
}

/// `GET /jobs/overview` (Flink's `MultipleJobsDetails`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MultipleJobsDetails {
    /// Every job.
    pub jobs: Vec<JobOverview>,
}

/// One job of `GET /jobs/overview` (Flink's `JobDetails`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobOverview {
    /// The job id.
    pub jid: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub state: JobStatus,
    /// Submitted at (ms since the epoch).
    pub start_time: i64,
    /// Ended at, or -1.
    pub end_time: i64,
    /// Running for (ms), until now or its end.
    pub duration: i64,
}

/// `POST /jobs`: a built-in job of the binary (Eddy's body; Flink posts a JobGraph).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSubmitRequest {
    /// The job's name in the binary's registry (`eddy jobs`).
    pub entry: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Job settings by Flink key (`parallelism.default`, `execution.checkpointing.interval`).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The answer to `POST /jobs`: 202 with `jobid` and `jobUrl` (Flink's `JobSubmitResponseBody`),
/// or 200 with `already-finished` when `execution.savepoint.path: latest` found the job
/// finished before (nothing started).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSubmitResponse {
    /// The job id.
    pub jobid: String,
    /// Where its details are (202).
    #[serde(rename = "jobUrl", default, skip_serializing_if = "Option::is_none")]
    pub job_url: Option<String>,
    /// The finished job's name (200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The logical job finished before; nothing was started (200).
    #[serde(rename = "already-finished", default)]
    pub already_finished: bool,
    /// When it finished (ms since the epoch; 200).
    #[serde(rename = "end-time", default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
}

/// `GET /jobs/{id}` (Flink's `JobDetailsInfo`, with Eddy's additions: entry, attempt,
/// status history, failures, checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobDetailsInfo {
    /// The job id.
    pub jid: String,
    /// Its name.
    pub name: String,
    /// The built-in job it runs (`<in-process>` on the MiniCluster).
    pub entry: String,
    /// Its status.
    pub state: JobStatus,
    /// Submitted at (ms since the epoch).
    pub start_time: i64,
    /// Ended at, or -1.
    pub end_time: i64,
    /// Running for (ms), until now or its end.
    pub duration: i64,
    /// The server's clock (ms since the epoch).
    pub now: i64,
    /// Per status, when the job last entered it.
    pub timestamps: BTreeMap<String, i64>,
    /// Every transition in order (Flink's `timestamps` keeps one time per state, which loses
    /// the order once a job restarts).
    pub status_history: Vec<StatusTransition>,
    /// The current attempt (1 for the first).
    pub attempt: u64,
    /// Its vertices.
    pub vertices: Vec<JobVertexDetails>,
    /// Failures so far, oldest first.
    pub failures: Vec<JobFailureView>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Checkpoint counts.
    pub checkpoints: CheckpointCounts,
}

/// A job entered a status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusTransition {
    /// The status.
    pub state: JobStatus,
    /// When (ms since the epoch).
    pub timestamp: i64,
}

/// One vertex of `GET /jobs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobVertexDetails {
    /// Its index in the job graph.
    pub id: usize,
    /// Its name (the chained operators).
    pub name: String,
    /// Its parallelism.
    pub parallelism: usize,
    /// Subtasks per execution state.
    pub tasks: BTreeMap<String, usize>,
    /// Each subtask.
    pub subtasks: Vec<SubtaskStatus>,
}

/// One subtask of a vertex.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SubtaskStatus {
    /// Its index.
    pub subtask: usize,
    /// Its state in the current attempt.
    pub status: ExecutionState,
    /// The taskmanager running it.
    pub taskmanager_id: Option<String>,
}

/// `GET /jobs/{id}/plan`: the JobGraph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobPlanInfo {
    /// The JobGraph as JSON (vertices, edges, configuration).
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
}

/// `POST /jobs/{id}/savepoints` (Flink's `SavepointTriggerRequestBody`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SavepointTriggerRequest {
    /// Where to write it; `state.savepoints.dir` when absent.
    #[serde(default)]
    pub target_directory: Option<String>,
    /// Cancel the job once it is taken (stop-with-savepoint without draining).
    #[serde(default)]
    pub cancel_job: bool,
}

/// `POST /jobs/{id}/stop` (Flink's `StopWithSavepointRequestBody`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopWithSavepointRequest {
    /// Where to write it; `state.savepoints.dir` when absent.
    #[serde(default)]
    pub target_directory: Option<String>,
    /// Emit the final watermark first, so every event-time window fires.
    #[serde(default)]
    pub drain: bool,
}

/// The answer to an asynchronous operation's trigger (Flink's `TriggerResponse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TriggerResponse {
    /// Poll `GET /jobs/{id}/savepoints/{request-id}` with it.
    #[serde(rename = "request-id")]
    pub request_id: String,
}

/// `GET /jobs/{id}/savepoints/{request-id}` (Flink's `AsynchronousOperationResult`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SavepointStatusResponse {
    /// `IN_PROGRESS` or `COMPLETED`.
    pub status: QueueStatus,
    /// Once completed: the location or the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<SavepointInfo>,
}

/// Where an asynchronous operation stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueStatus {
    /// The state.
    pub id: QueueStatusId,
}

/// Flink's `QueueStatus.Id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueStatusId {
    /// Still running.
    InProgress,
    /// Done (succeeded or failed).
    Completed,
}

/// A completed savepoint operation (Flink's `SavepointInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SavepointInfo {
    /// The savepoint's directory, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Why it failed, when it did.
    #[serde(
        rename = "failure-cause",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_cause: Option<FailureCause>,
}

/// A failure (Flink's `SerializedThrowable` as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FailureCause {
    /// What kind of failure (the error's variant).
    pub class: String,
    /// The message.
    #[serde(rename = "stack-trace")]
    pub stack_trace: String,
}

fn job_overview(j: &JobDetails) -> JobOverview {
    JobOverview {
        jid: j.id.to_string(),
        name: j.name.clone(),
        state: j.status,
        start_time: j.start_ms,
        end_time: j.end_ms.unwrap_or(-1),
        duration: duration(j),
    }
}

fn duration(j: &JobDetails) -> i64 {
    j.end_ms.unwrap_or_else(now_ms) - j.start_ms
}

fn taskmanager_info(t: &TaskManagerRecord) -> TaskManagerInfo {
    TaskManagerInfo {
        id: t.resource_id.clone(),
        path: t.rpc_address.clone(),
        data_address: t.data_address.clone(),
        time_since_last_heartbeat: t.last_heartbeat.elapsed().as_millis() as u64,
        slots_number: t.slots.len(),
        free_slots: t.slots.iter().filter(|s| s.is_none()).count(),
        running_tasks: t.report.running_tasks,
        memory: TaskManagerMemory {
            network_buffers_total: t.report.network_buffers_total,
            network_buffers_available: t.report.network_buffers_available,
            network_segment_size: t.report.network_segment_size,
            managed_memory_per_slot: t.report.managed_memory_per_slot,
            rss: t.report.rss_bytes,
        },
        network: TaskManagerNetwork {
            bytes_received: t.report.network_bytes.0,
            bytes_sent: t.report.network_bytes.1,
        },
    }
}

impl From<JobDetails> for JobDetailsInfo {
    fn from(j: JobDetails) -> Self {
        let timestamps = j
            .transitions
            .iter()
            .map(|(s, t)| (s.to_string(), *t))
            .collect();
        let status_history = j
            .transitions
            .iter()
            .map(|&(state, timestamp)| StatusTransition { state, timestamp })
            .collect();
        let vertices = j
            .vertices
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut tasks: BTreeMap<String, usize> = BTreeMap::new();
                for (s, _) in &v.subtasks {
                    *tasks.entry(s.to_string()).or_default() += 1;
                }
                JobVertexDetails {
                    id: i,
                    name: v.name.clone(),
                    parallelism: v.parallelism,
                    tasks,
                    subtasks: v
                        .subtasks
                        .iter()
                        .enumerate()
                        .map(|(k, (s, tm))| SubtaskStatus {
                            subtask: k,
                            status: *s,
                            taskmanager_id: tm.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        JobDetailsInfo {
            jid: j.id.to_string(),
            duration: duration(&j),
            end_time: j.end_ms.unwrap_or(-1),
            now: now_ms(),
            timestamps,
            status_history,
            vertices,
            name: j.name,
            entry: j.entry,
            state: j.status,
            start_time: j.start_ms,
            attempt: j.attempt,
            failures: j.failures,
            error: j.error,
            checkpoints: j.checkpoints,
        }
    }
}

impl Dispatcher {
    /// `GET /overview`.
    pub fn overview(&self) -> ClusterOverview {
        let rm = self.resource_manager();
        let (total, free) = rm.slot_counts();
        let jobs = self.jobs();
        let count = |s: JobStatus| jobs.iter().filter(|j| j.status == s).count();
        ClusterOverview {
            taskmanagers: rm.taskmanagers().len(),
            slots_total: total,
            slots_available: free,
            jobs_running: jobs.iter().filter(|j| !j.status.is_terminal()).count(),
            jobs_finished: count(JobStatus::Finished),
            jobs_cancelled: count(JobStatus::Canceled),
            jobs_failed: count(JobStatus::Failed),
            pending_slot_requests: rm
                .pending_requests()
                .into_iter()
                .map(|p| PendingSlotRequestInfo {
                    job_id: p.job_id.to_string(),
                    slots: p.slots,
                    waiting_ms: p.waiting_ms,
                })
                .collect(),
            eddy_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// `GET /taskmanagers`.
    pub fn taskmanagers_info(&self) -> TaskManagersInfo {
        TaskManagersInfo {
            taskmanagers: self
                .resource_manager()
                .taskmanagers()
                .iter()
                .map(taskmanager_info)
                .collect(),
        }
    }

    /// `GET /jobs`.
    pub fn job_ids_with_status(&self) -> JobIdsWithStatusOverview {
        JobIdsWithStatusOverview {
            jobs: self
                .jobs()
                .iter()
                .map(|j| JobIdWithStatus {
                    id: j.id.to_string(),
                    status: j.status,
                })
                .collect(),
        }
    }

    /// `GET /jobs/overview`.
    pub fn jobs_overview(&self) -> MultipleJobsDetails {
        MultipleJobsDetails {
            jobs: self.jobs().iter().map(job_overview).collect(),
        }
    }

    /// `GET /jobs/{id}`.
    pub fn job_details_info(&self, id: JobId) -> Option<JobDetailsInfo> {
        self.job(id).map(JobDetailsInfo::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `tasks` counts subtasks by `ExecutionState`'s Display, the subtasks show its serde form:
    /// both must be Flink's name.
    #[test]
    fn execution_states_print_as_they_serialize() {
        use ExecutionState::*;
        for s in [
            Created,
            Scheduled,
            Deploying,
            Initializing,
            Running,
            Finished,
            Canceling,
            Canceled,
            Failed,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.to_string());
        }
    }
}
