//! Eddy's REST API, served by the jobmanager and by a MiniCluster that is asked to (DESIGN §8).
//! Paths and field names follow Flink's REST API where the concept is the same, so Flink users
//! and tools find their way:
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
//! | `GET /jobs/{id}/plan` | the JobGraph |
//! | `GET /jobs/{id}/checkpoints` | counts, min/avg/max summary, latest completed/savepoint/failed/restored, history |
//! | `GET /jobs/{id}/checkpoints/config` | mode, interval, timeout, min pause, retention, storage |
//! | `GET /jobs/{id}/exceptions` | the latest root cause and every failure, newest first |
//! | `POST /jobs/{id}/savepoints` | `{"target-directory", "cancel-job"}` → `{"request-id"}` |
//! | `POST /jobs/{id}/stop` | stop with savepoint: `{"targetDirectory", "drain"}` → `{"request-id"}` |
//! | `GET /jobs/{id}/savepoints/{request-id}` | `{"status": {"id": IN_PROGRESS/COMPLETED}, "operation": …}` |
//! | `GET /openapi.json` | this API as an OpenAPI 3.1 document, generated from the body types |
//!
//! Bodies are the types of `eddy_cluster::rest_api`. Errors are `{"errors": ["…"]}`: 400 for a
//! malformed request or a job that cannot be built as submitted, 404 for an unknown job or
//! operation, 409 for a request the job's state does not allow, 502 when a taskmanager could
//! not be reached, 500 for a bug. The Web UI and the rest of Flink's API (checkpoints, metrics,
//! backpressure) come with the REST/Web UI issue.
#![warn(missing_docs)]

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eddy_cluster::deployment::{JobSubmission, ProgramBuildError};
use eddy_cluster::jobmanager::checkpoint::SavepointError;
use eddy_cluster::jobmanager::dispatcher::{DispatcherError, SavepointStatus, SubmitRejection};
use eddy_cluster::jobmanager::gateways::DispatcherGateway;
use eddy_cluster::rest_api::{
    CheckpointConfigInfo, CheckpointCounts, CheckpointingStatistics, ClusterOverview,
    ErrorResponse, FailureCause, JobDetailsInfo, JobExceptionsInfoWithHistory, JobIdWithStatus,
    JobIdsWithStatusOverview, JobOverview, JobPlanInfo, JobSubmitRequest, JobSubmitResponse,
    JobVertexDetails, MultipleJobsDetails, PendingSlotRequestInfo, QueueStatus, QueueStatusId,
    SavepointInfo, SavepointStatusResponse, SavepointTriggerRequest, StatusTransition,
    StopWithSavepointRequest, SubtaskStatus, TaskManagerInfo, TaskManagerMemory,
    TaskManagerNetwork, TaskManagersInfo, TriggerResponse,
};
use eddy_cluster::JobExecutionError;
use eddy_core::JobId;
use eddy_runtime::checkpoint::SnapshotKind;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::OpenApi;

type AppState = Arc<dyn DispatcherGateway>;

/// Why a request was not done, grouped by who caused it; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The request is malformed (path, query or body): 400.
    #[error("{0}")]
    BadRequest(String),
    /// What the Dispatcher refused: 404 for an unknown job or operation, 409 for a request
    /// the job's state does not allow.
    #[error(transparent)]
    Dispatcher(#[from] DispatcherError),
    /// A submission that started no job; its cause decides the status.
    #[error(transparent)]
    Submit(SubmitRejection),
    /// A bug in Eddy (a panicked handler): 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RestError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            RestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RestError::Dispatcher(e) => match e {
                DispatcherError::UnknownJob(_) | DispatcherError::UnknownOperation(_) => {
                    StatusCode::NOT_FOUND
                }
                DispatcherError::JobEnded { .. } | DispatcherError::NotRunning { .. } => {
                    StatusCode::CONFLICT
                }
            },
            RestError::Submit(SubmitRejection::Build(e)) => match e {
                ProgramBuildError::UnknownJob { .. }
                | ProgramBuildError::InvalidSettings(_)
                | ProgramBuildError::BadArguments { .. }
                | ProgramBuildError::InvalidJob(_)
                | ProgramBuildError::NotHandedOver(_) => StatusCode::BAD_REQUEST,
                // The jobmanager and this binary disagree: a deployment fault, not the request.
                ProgramBuildError::FingerprintMismatch { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
            RestError::Submit(SubmitRejection::AlreadyFinished(_)) => StatusCode::CONFLICT,
            RestError::Submit(SubmitRejection::Start(e)) => start_error_status(e),
            RestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Who caused a job not to start: the user (400), the cluster's capacity (409), an external
/// system (502), or Eddy (500). Exhaustive, so a new error makes its author choose.
fn start_error_status(e: &JobExecutionError) -> StatusCode {
    match e {
        JobExecutionError::InvalidJob(_)
        | JobExecutionError::Initialization { .. }
        | JobExecutionError::CheckpointConfig(_)
        | JobExecutionError::Restore(_)
        | JobExecutionError::AlreadyFinished(_) => StatusCode::BAD_REQUEST,
        JobExecutionError::NotEnoughSlots { .. } => StatusCode::CONFLICT,
        JobExecutionError::TaskManagerLost { .. }
        | JobExecutionError::Deployment(_)
        | JobExecutionError::ClusterService { .. } => StatusCode::BAD_GATEWAY,
        JobExecutionError::TaskFailed(_)
        | JobExecutionError::CheckpointFailure(_)
        | JobExecutionError::RecoverySuppressed { .. } => StatusCode::BAD_REQUEST,
        JobExecutionError::TaskCrashed { .. } | JobExecutionError::JobMasterCrashed(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            errors: vec![self.to_string()],
        };
        (self.status(), Json(body)).into_response()
    }
}

/// A request's JSON body (`None` when it is empty). Parsed here rather than by axum's `Json`
/// extractor, so a bad body gets the API's `{"errors": [..]}` answer with 400, naming where it
/// is wrong, whatever content type the client sent.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>, RestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| RestError::BadRequest(format!("request body: {e}")))
}

/// A view of the job named by the path's `id`: 400 for a malformed id, 404 when no job has it.
fn of_job<T>(id: &str, view: impl FnOnce(JobId) -> Option<T>) -> Result<Json<T>, RestError> {
    let id = job_id(id)?;
    view(id)
        .map(Json)
        .ok_or(RestError::Dispatcher(DispatcherError::UnknownJob(id)))
}

fn job_id(s: &str) -> Result<JobId, RestError> {
    s.parse()
        .map_err(|e: eddy_core::ParseJobIdError| RestError::BadRequest(e.to_string()))
}

/// The REST API as an OpenAPI document (served at `GET /openapi.json`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Eddy REST API",
        description = "Apache Flink's REST API, as Eddy's jobmanager and MiniCluster serve it."
    ),
    paths(
        overview,
        taskmanagers,
        jobs,
        jobs_overview,
        submit,
        job,
        cancel,
        plan,
        checkpoints,
        checkpoints_config,
        exceptions,
        savepoint,
        stop,
        savepoint_status,
        openapi_json
    ),
    components(schemas(
        ErrorResponse,
        ClusterOverview,
        PendingSlotRequestInfo,
        TaskManagersInfo,
        TaskManagerInfo,
        TaskManagerMemory,
        TaskManagerNetwork,
        JobIdsWithStatusOverview,
        JobIdWithStatus,
        MultipleJobsDetails,
        JobOverview,
        JobSubmitRequest,
        JobSubmitResponse,
        JobDetailsInfo,
        StatusTransition,
        JobVertexDetails,
        SubtaskStatus,
        CheckpointCounts,
        JobPlanInfo,
        SavepointTriggerRequest,
        StopWithSavepointRequest,
        TriggerResponse,
        SavepointStatusResponse,
        QueueStatus,
        QueueStatusId,
        SavepointInfo,
        FailureCause
    ))
)]
pub struct ApiDoc;

/// The REST API's routes over a Dispatcher's gateway.
pub fn router(dispatcher: Arc<dyn DispatcherGateway>) -> Router {
    Router::new()
        .route("/overview", get(overview))
        .route("/taskmanagers", get(taskmanagers))
        .route("/jobs", get(jobs).post(submit))
        .route("/jobs/overview", get(jobs_overview))
        .route("/jobs/{id}", get(job).patch(cancel))
        .route("/jobs/{id}/plan", get(plan))
        .route("/jobs/{id}/checkpoints", get(checkpoints))
        .route("/jobs/{id}/checkpoints/config", get(checkpoints_config))
        .route("/jobs/{id}/exceptions", get(exceptions))
        .route("/jobs/{id}/savepoints", post(savepoint))
        .route("/jobs/{id}/stop", post(stop))
        .route("/jobs/{id}/savepoints/{trigger}", get(savepoint_status))
        .route("/openapi.json", get(openapi_json))
        .with_state(dispatcher)
}

/// Serves the REST API on `listener` until the process ends (or the task is aborted).
pub async fn serve(dispatcher: Arc<dyn DispatcherGateway>, listener: tokio::net::TcpListener) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!("REST endpoint listening on {addr:?}");
    if let Err(e) = axum::serve(listener, router(dispatcher)).await {
        tracing::error!("REST endpoint stopped: {e}");
    }
}

/// The cluster at a glance.
#[utoipa::path(get, path = "/overview", responses((status = 200, body = ClusterOverview)))]
async fn overview(State(d): State<AppState>) -> Json<ClusterOverview> {
    Json(d.overview())
}

/// Every registered taskmanager.
#[utoipa::path(get, path = "/taskmanagers", responses((status = 200, body = TaskManagersInfo)))]
async fn taskmanagers(State(d): State<AppState>) -> Json<TaskManagersInfo> {
    Json(d.taskmanagers_info())
}

/// Every job's id and status.
#[utoipa::path(get, path = "/jobs", responses((status = 200, body = JobIdsWithStatusOverview)))]
async fn jobs(State(d): State<AppState>) -> Json<JobIdsWithStatusOverview> {
    Json(d.job_ids_with_status())
}

/// Every job's overview.
#[utoipa::path(get, path = "/jobs/overview", responses((status = 200, body = MultipleJobsDetails)))]
async fn jobs_overview(State(d): State<AppState>) -> Json<MultipleJobsDetails> {
    Json(d.jobs_overview())
}

/// Submits a built-in job of the binary.
#[utoipa::path(
    post,
    path = "/jobs",
    request_body = JobSubmitRequest,
    responses(
        (status = 202, description = "the job was started", body = JobSubmitResponse),
        (status = 200, description = "execution.savepoint.path: latest found the job finished before; nothing was started", body = JobSubmitResponse),
        (status = 400, description = "the job cannot be built or started as submitted", body = ErrorResponse),
        (status = 409, description = "not enough slots", body = ErrorResponse),
        (status = 502, description = "a taskmanager could not be reached", body = ErrorResponse),
        (status = 500, body = ErrorResponse)
    )
)]
async fn submit(State(d): State<AppState>, body: Bytes) -> Result<Response, RestError> {
    let Some(b) = json_body::<JobSubmitRequest>(&body)? else {
        return Err(RestError::BadRequest(
            "expected a JSON body {\"entry\": job name, \"args\": [..], \"settings\": {..}}".into(),
        ));
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
    let submitted = tokio::task::spawn_blocking(move || d2.submit(submission))
        .await
        .map_err(|e| RestError::Internal(format!("submitting the job: {e}")))?;
    match submitted {
        Ok(id) => Ok((
            StatusCode::ACCEPTED,
            Json(JobSubmitResponse {
                jobid: id.to_string(),
                job_url: Some(format!("/jobs/{id}")),
                name: None,
                already_finished: false,
                end_time: None,
            }),
        )
            .into_response()),
        // Nothing started: the logical job finished before (its result is recorded).
        Err(SubmitRejection::AlreadyFinished(r)) => Ok((
            StatusCode::OK,
            Json(JobSubmitResponse {
                jobid: r.job_id.to_string(),
                job_url: None,
                name: Some(r.job_name.clone()),
                already_finished: true,
                end_time: Some(r.end_time_ms),
            }),
        )
            .into_response()),
        Err(e) => Err(RestError::Submit(e)),
    }
}

/// One job in detail.
#[utoipa::path(
    get,
    path = "/jobs/{id}",
    params(("id" = String, Path, description = "the job id (32 hex digits)")),
    responses(
        (status = 200, body = JobDetailsInfo),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)
    )
)]
async fn job(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDetailsInfo>, RestError> {
    of_job(&id, |id| d.job_details_info(id))
}

/// A job's JobGraph.
#[utoipa::path(
    get,
    path = "/jobs/{id}/plan",
    params(("id" = String, Path, description = "the job id")),
    responses(
        (status = 200, body = JobPlanInfo),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)
    )
)]
async fn plan(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobPlanInfo>, RestError> {
    let Json(g) = of_job(&id, |id| d.job_graph(id))?;
    let plan = serde_json::to_value(&g)
        .map_err(|e| RestError::Internal(format!("the job graph of {} as JSON: {e}", g.job_id)))?;
    Ok(Json(JobPlanInfo { plan }))
}

/// A job's checkpoint counts, summary, latest checkpoints and history.
#[utoipa::path(
    get,
    path = "/jobs/{id}/checkpoints",
    params(("id" = String, Path, description = "the job id")),
    responses(
        (status = 200, body = CheckpointingStatistics),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)
    )
)]
async fn checkpoints(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CheckpointingStatistics>, RestError> {
    of_job(&id, |id| d.checkpointing_statistics(id))
}

/// A job's checkpointing configuration.
#[utoipa::path(
    get,
    path = "/jobs/{id}/checkpoints/config",
    params(("id" = String, Path, description = "the job id")),
    responses(
        (status = 200, body = CheckpointConfigInfo),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)
    )
)]
async fn checkpoints_config(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CheckpointConfigInfo>, RestError> {
    of_job(&id, |id| d.checkpoint_config_info(id))
}

/// A job's failures: the latest root cause and the history.
#[utoipa::path(
    get,
    path = "/jobs/{id}/exceptions",
    params(("id" = String, Path, description = "the job id")),
    responses(
        (status = 200, body = JobExceptionsInfoWithHistory),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse)
    )
)]
async fn exceptions(
    State(d): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobExceptionsInfoWithHistory>, RestError> {
    of_job(&id, |id| d.job_exceptions(id))
}

/// The query of `PATCH /jobs/{id}`.
#[derive(Debug, Deserialize)]
struct CancelQuery {
    mode: Option<String>,
}

/// Cancels a job.
#[utoipa::path(
    patch,
    path = "/jobs/{id}",
    params(
        ("id" = String, Path, description = "the job id"),
        ("mode" = Option<String>, Query, description = "`cancel` (the default)")
    ),
    responses(
        (status = 202, description = "cancellation requested"),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job already ended", body = ErrorResponse)
    )
)]
async fn cancel(
    State(d): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<CancelQuery>, QueryRejection>,
) -> Result<Response, RestError> {
    let id = job_id(&id)?;
    let Query(q) = q.map_err(|e| RestError::BadRequest(format!("query: {}", e.body_text())))?;
    match q.mode.as_deref() {
        None | Some("cancel") => {}
        Some(other) => {
            return Err(RestError::BadRequest(format!(
                "unknown mode '{other}' (expected 'cancel')"
            )))
        }
    }
    d.cancel(id)?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::Map::new())).into_response())
}

fn trigger(
    d: &dyn DispatcherGateway,
    id: &str,
    dir: Option<String>,
    kind: SnapshotKind,
) -> Result<Response, RestError> {
    let id = job_id(id)?;
    let request_id = d.trigger_savepoint(id, dir.map(Into::into), kind)?;
    Ok((StatusCode::ACCEPTED, Json(TriggerResponse { request_id })).into_response())
}

/// Triggers a savepoint (with `cancel-job`, then cancels the job).
#[utoipa::path(
    post,
    path = "/jobs/{id}/savepoints",
    params(("id" = String, Path, description = "the job id")),
    request_body = SavepointTriggerRequest,
    responses(
        (status = 202, body = TriggerResponse),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job is not running", body = ErrorResponse)
    )
)]
async fn savepoint(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, RestError> {
    let b: SavepointTriggerRequest = json_body(&body)?.unwrap_or_default();
    let kind = if b.cancel_job {
        SnapshotKind::SavepointTerminate { drain: false }
    } else {
        SnapshotKind::Savepoint
    };
    trigger(d.as_ref(), &id, b.target_directory, kind)
}

/// Stops a job with a savepoint (with `drain`, after the final watermark).
#[utoipa::path(
    post,
    path = "/jobs/{id}/stop",
    params(("id" = String, Path, description = "the job id")),
    request_body = StopWithSavepointRequest,
    responses(
        (status = 202, body = TriggerResponse),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "the job is not running", body = ErrorResponse)
    )
)]
async fn stop(
    State(d): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, RestError> {
    let b: StopWithSavepointRequest = json_body(&body)?.unwrap_or_default();
    trigger(
        d.as_ref(),
        &id,
        b.target_directory,
        SnapshotKind::SavepointTerminate { drain: b.drain },
    )
}

/// The failure class a savepoint error is shown with.
fn savepoint_failure_class(e: &SavepointError) -> &'static str {
    match e {
        SavepointError::NoTargetDirectory => "NoTargetDirectory",
        SavepointError::NotNow(_) => "NotNow",
        SavepointError::Storage(_) => "Storage",
        SavepointError::Aborted(_) => "Aborted",
    }
}

/// Where a savepoint operation stands.
#[utoipa::path(
    get,
    path = "/jobs/{id}/savepoints/{trigger}",
    params(
        ("id" = String, Path, description = "the job id"),
        ("trigger" = String, Path, description = "the request id of the trigger")
    ),
    responses(
        (status = 200, body = SavepointStatusResponse),
        (status = 404, description = "no such operation", body = ErrorResponse)
    )
)]
async fn savepoint_status(
    State(d): State<AppState>,
    Path((_id, trigger)): Path<(String, String)>,
) -> Result<Json<SavepointStatusResponse>, RestError> {
    let completed = |operation| SavepointStatusResponse {
        status: QueueStatus {
            id: QueueStatusId::Completed,
        },
        operation: Some(operation),
    };
    Ok(Json(match d.savepoint_status(&trigger)? {
        SavepointStatus::InProgress => SavepointStatusResponse {
            status: QueueStatus {
                id: QueueStatusId::InProgress,
            },
            operation: None,
        },
        SavepointStatus::Completed(path) => completed(SavepointInfo {
            location: Some(path),
            failure_cause: None,
        }),
        SavepointStatus::Failed(e) => completed(SavepointInfo {
            location: None,
            failure_cause: Some(FailureCause {
                class: savepoint_failure_class(&e).to_string(),
                stack_trace: e.to_string(),
            }),
        }),
    }))
}

/// This API as an OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "the OpenAPI document")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
