//! Eddy's REST API, served by the jobmanager (DESIGN §8). Paths and field names follow Flink's
//! REST API where the concept is the same, so Flink users and tools find their way:
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /overview` | taskmanagers, slots (total/available), jobs by state |
//! | `GET /taskmanagers` | per taskmanager: slots, network buffers, managed memory, RSS |
//! | `GET /jobs` | ids and states |
//! | `GET /jobs/overview` | id, name, state, start, end, duration |
//! | `POST /jobs` | submit a built-in job: `{"entry", "args", "settings"}` (Eddy's body; Flink posts a JobGraph) |
//! | `GET /jobs/{id}` | state, timestamps per state, vertices with task states, failures |
//! | `PATCH /jobs/{id}?mode=cancel` | cancel |
//! | `POST /jobs/{id}/savepoints` | `{"target-directory", "cancel-job"}` → `{"request-id"}` |
//! | `POST /jobs/{id}/stop` | stop with savepoint: `{"targetDirectory", "drain"}` → `{"request-id"}` |
//! | `GET /jobs/{id}/savepoints/{request-id}` | `{"status": {"id": IN_PROGRESS/COMPLETED}, "operation": …}` |
//!
//! Errors are `{"errors": ["…"]}` with a 4xx status. The Web UI and the rest of Flink's API
//! (checkpoints, metrics, backpressure) come with the REST/Web UI issue.
#![warn(missing_docs)]

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eddy_cluster::deployment::JobSubmission;
use eddy_cluster::jobmanager::dispatcher::{
    Dispatcher, JobDetails, SavepointStatus, SubmitRejection,
};
use eddy_cluster::jobmanager::job_master::JobStatus;
use eddy_cluster::taskmanager::task_executor::ExecutionState;
use eddy_core::JobId;
use eddy_runtime::checkpoint::SnapshotKind;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

type AppState = Arc<Dispatcher>;

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "errors": [msg.into()] }))).into_response()
}

fn job_id(s: &str) -> Result<JobId, String> {
    s.parse()
}

/// The REST API's routes over a Dispatcher.
pub fn router(dispatcher: Arc<Dispatcher>) -> Router {
    Router::new()
        .route("/overview", get(overview))
        .route("/taskmanagers", get(taskmanagers))
        .route("/jobs", get(jobs).post(submit))
        .route("/jobs/overview", get(jobs_overview))
        .route("/jobs/{id}", get(job).patch(cancel))
        .route("/jobs/{id}/plan", get(plan))
        .route("/jobs/{id}/savepoints", post(savepoint))
        .route("/jobs/{id}/stop", post(stop))
        .route("/jobs/{id}/savepoints/{trigger}", get(savepoint_status))
        .with_state(dispatcher)
}

/// Serves the REST API on `listener` until the process ends.
pub async fn serve(dispatcher: Arc<Dispatcher>, listener: tokio::net::TcpListener) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!("REST endpoint listening on {addr:?}");
    if let Err(e) = axum::serve(listener, router(dispatcher)).await {
        tracing::error!("REST endpoint stopped: {e}");
    }
}

async fn overview(State(d): State<AppState>) -> Json<Value> {
    let (total, free) = d.resource_manager().slot_counts();
    let jobs = d.jobs();
    let count = |s: JobStatus| jobs.iter().filter(|j| j.status == s).count();
    Json(json!({
        "taskmanagers": d.resource_manager().taskmanagers().len(),
        "slots-total": total,
        "slots-available": free,
        "jobs-running": jobs.iter().filter(|j| !j.status.is_terminal()).count(),
        "jobs-finished": count(JobStatus::Finished),
        "jobs-cancelled": count(JobStatus::Canceled),
        "jobs-failed": count(JobStatus::Failed),
        "pending-slot-requests": d.resource_manager().pending_requests(),
        "eddy-version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn taskmanagers(State(d): State<AppState>) -> Json<Value> {
    let tms: Vec<Value> = d
        .resource_manager()
        .taskmanagers()
        .into_iter()
        .map(|t| {
            json!({
                "id": t.resource_id,
                "path": t.rpc_address,
                "dataAddress": t.data_address,
                "timeSinceLastHeartbeat": t.last_heartbeat.elapsed().as_millis() as u64,
                "slotsNumber": t.slots.len(),
                "freeSlots": t.slots.iter().filter(|s| s.is_none()).count(),
                "runningTasks": t.report.running_tasks,
                "memory": {
                    "networkBuffersTotal": t.report.network_buffers_total,
                    "networkBuffersAvailable": t.report.network_buffers_available,
                    "networkSegmentSize": t.report.network_segment_size,
                    "managedMemoryPerSlot": t.report.managed_memory_per_slot,
                    "rss": t.report.rss_bytes,
                },
                "network": {
                    "bytesReceived": t.report.network_bytes.0,
                    "bytesSent": t.report.network_bytes.1,
                },
            })
        })
        .collect();
    Json(json!({ "taskmanagers": tms }))
}

async fn jobs(State(d): State<AppState>) -> Json<Value> {
    let jobs: Vec<Value> = d
        .jobs()
        .iter()
        .map(|j| json!({"id": j.id, "status": j.status}))
        .collect();
    Json(json!({ "jobs": jobs }))
}

fn duration(j: &JobDetails) -> i64 {
    let end = j.end_ms.unwrap_or_else(now_ms);
    end - j.start_ms
}

use eddy_cluster::jobmanager::job_master::now_ms;

async fn jobs_overview(State(d): State<AppState>) -> Json<Value> {
    let jobs: Vec<Value> = d
        .jobs()
        .iter()
        .map(|j| {
            json!({
                "jid": j.id,
                "name": j.name,
                "state": j.status,
                "start-time": j.start_ms,
                "end-time": j.end_ms.unwrap_or(-1),
                "duration": duration(j),
            })
        })
        .collect();
    Json(json!({ "jobs": jobs }))
}

/// The body of `POST /jobs`.
#[derive(Debug, Deserialize)]
struct SubmitBody {
    entry: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    settings: BTreeMap<String, String>,
}

async fn submit(State(d): State<AppState>, body: Option<Json<SubmitBody>>) -> Response {
    let Some(Json(b)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"entry\": job name, \"args\": [..], \"settings\": {..}}",
        );
    };
    let submission = JobSubmission {
        job_id: JobId(0),
        entry: b.entry,
        args: b.args,
        settings: b.settings,
        fingerprint: String::new(),
    };
    // Building a job runs user code (argument parsing, input checks): off the async workers.
    let d2 = d.clone();
    match tokio::task::spawn_blocking(move || d2.submit(submission)).await {
        Ok(Ok(id)) => (
            StatusCode::ACCEPTED,
            Json(json!({ "jobid": id, "jobUrl": format!("/jobs/{id}") })),
        )
            .into_response(),
        // Nothing started: the logical job finished before (its result is recorded).
        Ok(Err(SubmitRejection::AlreadyFinished(r))) => (
            StatusCode::OK,
            Json(json!({
                "jobid": r.job_id,
                "name": r.job_name,
                "already-finished": true,
                "end-time": r.end_time_ms,
            })),
        )
            .into_response(),
        Ok(Err(SubmitRejection::Invalid(e))) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn job(State(d): State<AppState>, Path(id): Path<String>) -> Response {
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(j) = d.job(id) else {
        return error(StatusCode::NOT_FOUND, format!("no job {id}"));
    };
    let timestamps: BTreeMap<String, i64> = j
        .transitions
        .iter()
        .map(|(s, t)| (s.to_string(), *t))
        .collect();
    let vertices: Vec<Value> = j
        .vertices
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut tasks: BTreeMap<String, usize> = BTreeMap::new();
            for (s, _) in &v.subtasks {
                *tasks.entry(state_name(*s)).or_default() += 1;
            }
            json!({
                "id": i,
                "name": v.name,
                "parallelism": v.parallelism,
                "tasks": tasks,
                "subtasks": v.subtasks.iter().enumerate().map(|(k, (s, tm))| json!({
                    "subtask": k, "status": state_name(*s), "taskmanager-id": tm,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "jid": j.id,
        "name": j.name,
        "entry": j.entry,
        "state": j.status,
        "start-time": j.start_ms,
        "end-time": j.end_ms.unwrap_or(-1),
        "duration": duration(&j),
        "now": now_ms(),
        "timestamps": timestamps,
        // Every transition in order (Flink's `timestamps` keeps one time per state, which
        // loses the order once a job restarts).
        "status-history": j.transitions.iter().map(|(s, t)| json!({"state": s, "timestamp": t})).collect::<Vec<_>>(),
        "attempt": j.attempt,
        "vertices": vertices,
        "failures": j.failures,
        "error": j.error,
        "checkpoints": j.checkpoints,
    }))
    .into_response()
}

fn state_name(s: ExecutionState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn plan(State(d): State<AppState>, Path(id): Path<String>) -> Response {
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match d.job_graph(id) {
        Some(g) => Json(json!({ "plan": g })).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no job {id}")),
    }
}

async fn cancel(
    State(d): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match q.get("mode").map(String::as_str) {
        None | Some("cancel") => {}
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown mode '{other}' (expected 'cancel')"),
            )
        }
    }
    match d.cancel(id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct SavepointBody {
    #[serde(rename = "target-directory")]
    target_directory: Option<String>,
    #[serde(rename = "cancel-job", default)]
    cancel_job: bool,
}

#[derive(Debug, Default, Deserialize)]
struct StopBody {
    #[serde(rename = "targetDirectory")]
    target_directory: Option<String>,
    #[serde(default)]
    drain: bool,
}

fn trigger(d: &Dispatcher, id: &str, dir: Option<String>, kind: SnapshotKind) -> Response {
    let id = match job_id(id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match d.trigger_savepoint(id, dir.map(Into::into), kind) {
        Ok(t) => (StatusCode::ACCEPTED, Json(json!({ "request-id": t }))).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

async fn savepoint(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<SavepointBody>>,
) -> Response {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let kind = if b.cancel_job {
        SnapshotKind::SavepointTerminate { drain: false }
    } else {
        SnapshotKind::Savepoint
    };
    trigger(&d, &id, b.target_directory, kind)
}

async fn stop(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: Option<Json<StopBody>>,
) -> Response {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    trigger(
        &d,
        &id,
        b.target_directory,
        SnapshotKind::SavepointTerminate { drain: b.drain },
    )
}

async fn savepoint_status(
    State(d): State<AppState>,
    Path((_id, trigger)): Path<(String, String)>,
) -> Response {
    match d.savepoint_status(&trigger) {
        None => error(
            StatusCode::NOT_FOUND,
            format!("no savepoint operation {trigger}"),
        ),
        Some(SavepointStatus::InProgress) => {
            Json(json!({"status": {"id": "IN_PROGRESS"}})).into_response()
        }
        Some(SavepointStatus::Completed(path)) => Json(json!({
            "status": {"id": "COMPLETED"},
            "operation": {"location": path},
        }))
        .into_response(),
        Some(SavepointStatus::Failed(cause)) => Json(json!({
            "status": {"id": "COMPLETED"},
            "operation": {"failure-cause": {"class": "SavepointFailure", "stack-trace": cause}},
        }))
        .into_response(),
    }
}
