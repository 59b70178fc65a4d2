//! The REST API's request and response bodies (Flink's `runtime.rest.messages`): one serde
//! type per body, with Flink's field names where the concept is the same. The server
//! (`eddy-web`) answers with them, the CLI reads them, and the MiniCluster's
//! [`crate::JobClient::details`] returns the same view; `eddy-web` generates the OpenAPI
//! document (`GET /openapi.json`) from their schemas.
//!
//! The views are built here from the Dispatcher's records ([`Dispatcher::overview`],
//! [`Dispatcher::taskmanagers_info`], [`Dispatcher::job_details_info`], …), so every reader
//! sees the same numbers.

use crate::jobmanager::checkpoint::{CheckpointStats, CheckpointStatus};
use crate::jobmanager::dispatcher::{Dispatcher, JobDetails, JobFailureView};
use crate::jobmanager::job_master::{now_ms, JobStatus};
use crate::jobmanager::resource_manager::TaskManagerRecord;
use crate::taskmanager::task_executor::ExecutionState;
use eddy_core::{CheckpointingMode, ExternalizedCheckpointRetention, JobId};
use eddy_runtime::checkpoint::SnapshotKind;
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

/// `GET /jobs/{id}/checkpoints` (Flink's `CheckpointingStatistics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointingStatistics {
    /// Checkpoints by outcome.
    pub counts: CheckpointCountsInfo,
    /// Min/avg/max over the completed checkpoints in the history.
    pub summary: CheckpointSummary,
    /// The latest completed checkpoint, savepoint, failed checkpoint and restore.
    pub latest: LatestCheckpoints,
    /// In-progress and recent checkpoints, newest first.
    pub history: Vec<CheckpointStatistics>,
}

/// Flink's `CheckpointingStatistics.Counts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointCountsInfo {
    /// Restores (failovers and starts from a savepoint).
    pub restored: u64,
    /// Triggered.
    pub total: u64,
    /// In progress now.
    pub in_progress: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
}

/// Flink's `CheckpointingStatistics.Summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointSummary {
    /// Bytes of state.
    pub state_size: StatsSummary,
    /// Trigger to completion, ms.
    pub end_to_end_duration: StatsSummary,
    /// Barrier alignment, ms (Flink reports buffered bytes here; Eddy's aligned
    /// checkpoints buffer nothing, they block channels).
    pub alignment_buffered: StatsSummary,
}

/// Min, max, average and percentiles of a checkpoint statistic (Flink's `StatsSummaryDto`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsSummary {
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
    /// Average.
    pub avg: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// Flink's `CheckpointingStatistics.LatestCheckpoints`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatestCheckpoints {
    /// The latest completed checkpoint.
    pub completed: Option<CheckpointStatistics>,
    /// The latest completed savepoint.
    pub savepoint: Option<CheckpointStatistics>,
    /// The latest failed checkpoint.
    pub failed: Option<CheckpointStatistics>,
    /// The latest restore.
    pub restored: Option<RestoredCheckpointStatistics>,
}

/// One checkpoint (Flink's `CheckpointStatistics` with the fields of its completed and
/// failed forms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointStatistics {
    /// Its id.
    pub id: u64,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// Whether it is a savepoint.
    pub is_savepoint: bool,
    /// `CHECKPOINT`, `SAVEPOINT` or `SYNC_SAVEPOINT` (stop-with-savepoint).
    pub checkpoint_type: String,
    /// Triggered at (ms since the epoch).
    pub trigger_timestamp: i64,
    /// The latest acknowledgement (ms since the epoch), or -1.
    pub latest_ack_timestamp: i64,
    /// Bytes of state stored.
    pub state_size: u64,
    /// Trigger to completion or failure (ms), or -1 while in progress.
    pub end_to_end_duration: i64,
    /// The longest barrier alignment of a subtask (ms).
    pub alignment_buffered: u64,
    /// Subtasks taking part.
    pub num_subtasks: usize,
    /// Subtasks that acknowledged.
    pub num_acknowledged_subtasks: usize,
    /// Where it is stored, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_path: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<String>,
}

/// Flink's `RestoredCheckpointStatistics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RestoredCheckpointStatistics {
    /// Its id.
    pub id: u64,
    /// When the restore happened (ms since the epoch).
    pub restore_timestamp: i64,
    /// Whether it was a savepoint.
    pub is_savepoint: bool,
    /// Its directory.
    pub external_path: String,
}

/// `GET /jobs/{id}/checkpoints/config` (Flink's `CheckpointConfigInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointConfigInfo {
    /// `EXACTLY_ONCE` or `AT_LEAST_ONCE`.
    pub mode: String,
    /// ms between triggers (`execution.checkpointing.interval`); 0 when disabled.
    pub interval: u64,
    /// ms after which a checkpoint is aborted.
    pub timeout: u64,
    /// ms from one checkpoint's end to the next trigger.
    pub min_pause: u64,
    /// Checkpoints in flight at once.
    pub max_concurrent: usize,
    /// Whether checkpoints outlive the job.
    pub externalization: ExternalizedCheckpointInfo,
    /// The state backend (`hashmap`).
    pub state_backend: String,
    /// Where checkpoints go (`state.checkpoints.dir`, or the JobManager's memory).
    pub checkpoint_storage: String,
    /// Whether checkpoints are unaligned (never, so far).
    pub unaligned_checkpoints: bool,
    /// Consecutive failed checkpoints the job survives.
    pub tolerable_failed_checkpoints: usize,
    /// Whether checkpoints continue after some tasks finished (FLIP-147: always).
    pub checkpoints_after_tasks_finish: bool,
}

/// Flink's `ExternalizedCheckpointInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExternalizedCheckpointInfo {
    /// Checkpoints are kept after the job ends in some way.
    pub enabled: bool,
    /// …but deleted when it is cancelled.
    pub delete_on_cancellation: bool,
}

/// `GET /jobs/{id}/exceptions` (Flink's `JobExceptionsInfoWithHistory`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobExceptionsInfoWithHistory {
    /// The latest failure's root cause, if the job failed at all.
    #[serde(rename = "root-exception")]
    pub root_exception: Option<String>,
    /// When it happened (ms since the epoch).
    pub timestamp: Option<i64>,
    /// Failures of the current attempt's tasks (Flink's deprecated list; kept empty).
    #[serde(rename = "all-exceptions")]
    pub all_exceptions: Vec<ExecutionExceptionInfo>,
    /// Whether `all-exceptions` was cut.
    pub truncated: bool,
    /// Every failure of the job, newest first.
    #[serde(rename = "exceptionHistory")]
    pub exception_history: JobExceptionHistory,
}

/// Flink's `ExecutionExceptionInfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionExceptionInfo {
    /// The failure.
    pub exception: String,
    /// The task.
    pub task: String,
    /// The taskmanager.
    pub location: String,
    /// When (ms since the epoch).
    pub timestamp: i64,
}

/// Flink's `JobExceptionHistory`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobExceptionHistory {
    /// The failures, newest first.
    pub entries: Vec<ExceptionInfo>,
    /// Whether older ones were dropped.
    pub truncated: bool,
}

/// One failure (Flink's `RootExceptionInfo`), with what Eddy adds: whether the job restarted
/// and which checkpoint it restored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionInfo {
    /// The kind of failure.
    pub exception_name: String,
    /// The failure, as the task reported it.
    pub stacktrace: String,
    /// When (ms since the epoch).
    pub timestamp: i64,
    /// Whether the job restarted after it.
    pub restarted: bool,
    /// The checkpoint the restart restored.
    pub restored_checkpoint: Option<u64>,
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

fn checkpoint_statistics(c: &CheckpointStats) -> CheckpointStatistics {
    let status = match c.status {
        CheckpointStatus::InProgress => "IN_PROGRESS",
        CheckpointStatus::Completed => "COMPLETED",
        CheckpointStatus::Failed => "FAILED",
    };
    let checkpoint_type = match c.kind {
        SnapshotKind::Checkpoint => "CHECKPOINT",
        SnapshotKind::Savepoint => "SAVEPOINT",
        SnapshotKind::SavepointTerminate { .. } => "SYNC_SAVEPOINT",
    };
    CheckpointStatistics {
        id: c.id,
        status: status.to_string(),
        is_savepoint: c.kind.is_savepoint(),
        checkpoint_type: checkpoint_type.to_string(),
        trigger_timestamp: c.trigger_timestamp,
        latest_ack_timestamp: c.latest_ack_timestamp.unwrap_or(-1),
        state_size: c.state_size,
        end_to_end_duration: c.end_to_end_duration_ms.map_or(-1, |d| d as i64),
        alignment_buffered: c
            .subtasks
            .iter()
            .map(|(_, m)| m.alignment_ms)
            .max()
            .unwrap_or(0),
        num_subtasks: c.num_subtasks,
        num_acknowledged_subtasks: c.num_acknowledged_subtasks,
        external_path: c.external_path.clone(),
        failure_message: c.failure_reason.clone(),
    }
}

/// Min, max, average and nearest-rank percentiles of `values`.
fn stats_summary(mut values: Vec<u64>) -> StatsSummary {
    if values.is_empty() {
        return StatsSummary::default();
    }
    values.sort_unstable();
    let n = values.len();
    let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64;
    StatsSummary {
        min: values[0],
        max: values[n - 1],
        avg: values.iter().sum::<u64>() / n as u64,
        p50: rank(0.5),
        p90: rank(0.9),
        p95: rank(0.95),
        p99: rank(0.99),
        p999: rank(0.999),
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

    /// `GET /jobs/{id}/checkpoints`.
    pub fn checkpointing_statistics(&self, id: JobId) -> Option<CheckpointingStatistics> {
        let stats = self.record(id)?.shared.lock().stats.clone();
        let completed: Vec<&CheckpointStats> = stats
            .history
            .iter()
            .filter(|c| c.status == CheckpointStatus::Completed)
            .collect();
        Some(CheckpointingStatistics {
            counts: CheckpointCountsInfo {
                restored: stats.counts.restored,
                total: stats.counts.total,
                in_progress: stats.counts.in_progress,
                completed: stats.counts.completed,
                failed: stats.counts.failed,
            },
            summary: CheckpointSummary {
                state_size: stats_summary(completed.iter().map(|c| c.state_size).collect()),
                end_to_end_duration: stats_summary(
                    completed
                        .iter()
                        .filter_map(|c| c.end_to_end_duration_ms)
                        .collect(),
                ),
                alignment_buffered: stats_summary(
                    completed
                        .iter()
                        .map(|c| checkpoint_statistics(c).alignment_buffered)
                        .collect(),
                ),
            },
            latest: LatestCheckpoints {
                completed: stats.latest_completed.as_ref().map(checkpoint_statistics),
                savepoint: stats.latest_savepoint.as_ref().map(checkpoint_statistics),
                failed: stats.latest_failed.as_ref().map(checkpoint_statistics),
                restored: stats
                    .latest_restored
                    .as_ref()
                    .map(|r| RestoredCheckpointStatistics {
                        id: r.id,
                        restore_timestamp: r.restore_timestamp,
                        is_savepoint: r.is_savepoint,
                        external_path: r.external_path.clone(),
                    }),
            },
            history: stats.history.iter().map(checkpoint_statistics).collect(),
        })
    }

    /// `GET /jobs/{id}/checkpoints/config`.
    pub fn checkpoint_config_info(&self, id: JobId) -> Option<CheckpointConfigInfo> {
        let g = self.job_graph(id)?;
        let c = &g.config.checkpoint;
        Some(CheckpointConfigInfo {
            mode: match c.mode {
                CheckpointingMode::ExactlyOnce => "EXACTLY_ONCE",
                CheckpointingMode::AtLeastOnce => "AT_LEAST_ONCE",
            }
            .to_string(),
            interval: c.interval_ms.unwrap_or(0),
            timeout: c.timeout_ms,
            min_pause: c.min_pause_ms,
            max_concurrent: c.max_concurrent,
            externalization: ExternalizedCheckpointInfo {
                enabled: c.retention != ExternalizedCheckpointRetention::NoExternalizedCheckpoints,
                delete_on_cancellation: c.retention
                    == ExternalizedCheckpointRetention::DeleteOnCancellation,
            },
            state_backend: "hashmap".to_string(),
            checkpoint_storage: c
                .storage
                .clone()
                .unwrap_or_else(|| "jobmanager (memory)".to_string()),
            unaligned_checkpoints: false,
            tolerable_failed_checkpoints: c.tolerable_failed,
            checkpoints_after_tasks_finish: true,
        })
    }

    /// `GET /jobs/{id}/exceptions`.
    pub fn job_exceptions(&self, id: JobId) -> Option<JobExceptionsInfoWithHistory> {
        let failures = self.record(id)?.shared.lock().failures.clone();
        let latest = failures.last();
        Some(JobExceptionsInfoWithHistory {
            root_exception: latest.map(|f| f.cause.clone()),
            timestamp: latest.map(|f| f.timestamp),
            all_exceptions: Vec::new(),
            truncated: false,
            exception_history: JobExceptionHistory {
                entries: failures
                    .iter()
                    .rev()
                    .map(|f| ExceptionInfo {
                        // What failed, before the cause's detail.
                        exception_name: f.cause.split(": ").next().unwrap_or_default().to_string(),
                        stacktrace: f.cause.clone(),
                        timestamp: f.timestamp,
                        restarted: f.restarted,
                        restored_checkpoint: f.restored_checkpoint,
                    })
                    .collect(),
                truncated: false,
            },
        })
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
