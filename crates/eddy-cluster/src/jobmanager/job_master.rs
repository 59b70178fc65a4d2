//! The JobMaster's supervision loop (DESIGN §6), shared by the MiniCluster and the
//! distributed jobmanager: it runs a job's attempts, drives the [`CheckpointCoordinator`],
//! and on a failure cancels the attempt, asks the restart strategy, and deploys a new attempt
//! from the latest completed checkpoint (falling back to older retained ones if one cannot be
//! read). How tasks are deployed and reached is behind [`Deployer`] and [`DeployedAttempt`]:
//! threads in this process for the MiniCluster, TaskExecutors over RPC for a cluster.

use crate::jobmanager::checkpoint::restore::{
    self, FailedCandidate, LoadedCheckpoint, NoUsableCheckpoint, RestoreError,
};
use crate::jobmanager::checkpoint::{
    CheckpointCoordinator, CheckpointStatsSnapshot, CompletedCheckpoint, CoordinatorAction, JobEnd,
    OperatorInfo, SavepointError,
};
use crate::jobmanager::execution_graph::ExecutionGraph;
use crate::jobmanager::job_result_store::{FileJobResultStore, JobResult, JOB_RESULT_VERSION};
use crate::jobmanager::restart::RestartBackoff;
use eddy_core::jobgraph::{JobGraph, OperatorKind};
use eddy_core::{CoreError, JobId};
use eddy_runtime::checkpoint::metadata::operator_state_key;
use eddy_runtime::checkpoint::storage::storage_for_url;
use eddy_runtime::checkpoint::{
    CheckpointBarrier, CheckpointId, CheckpointMail, SnapshotKind, SubtaskKey, TaskAcknowledgement,
};
use eddy_runtime::{OperatorError, TaskError};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// What a finished job reports (Flink's `JobExecutionResult`).
#[derive(Clone, Debug)]
pub struct JobExecutionResult {
    /// The job's id.
    pub job_id: JobId,
    /// The job's name.
    pub job_name: String,
    /// Wall time from deployment to the last task finishing.
    pub net_runtime: Duration,
}

/// Why a job did not finish.
#[derive(Debug, Error)]
pub enum JobExecutionError {
    /// The program is not a valid job (found before anything ran).
    #[error("invalid job: {0}")]
    InvalidJob(#[from] CoreError),
    /// An operator's one-time initialization failed (found before anything ran).
    #[error("job initialization failed in operator '{operator}': {cause}")]
    Initialization {
        /// The operator.
        operator: String,
        /// Why.
        cause: OperatorError,
    },
    /// The cluster has fewer slots than the job needs.
    #[error("not enough slots: needed {needed}, available {available}")]
    NotEnoughSlots {
        /// Slots the job needs.
        needed: usize,
        /// Slots available.
        available: usize,
    },
    /// A task failed while running.
    #[error("job failed: {0}")]
    TaskFailed(TaskError),
    /// A task thread died outside the operator code (a bug in Eddy).
    #[error("task '{task}' crashed: {message}")]
    TaskCrashed {
        /// The task.
        task: String,
        /// The panic message.
        message: String,
    },
    /// The job's checkpoint or savepoint settings are unusable (found before anything ran).
    #[error("invalid checkpoint configuration: {0}")]
    CheckpointConfig(String),
    /// The checkpoint or savepoint to start from cannot be restored.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Checkpoints failed more often in a row than tolerated.
    #[error("job failed: {0}")]
    CheckpointFailure(String),
    /// The job failed and the restart strategy allows no more restarts.
    #[error("recovery is suppressed by the restart strategy {strategy}: {cause}")]
    RecoverySuppressed {
        /// The restart strategy.
        strategy: String,
        /// The last failure.
        cause: Box<JobExecutionError>,
    },
    /// A taskmanager running tasks of the job was lost.
    #[error("taskmanager {resource_id} was lost: {reason}")]
    TaskManagerLost {
        /// The taskmanager.
        resource_id: String,
        /// Why it is considered lost (heartbeat timeout, disconnect).
        reason: String,
    },
    /// Tasks could not be deployed to a taskmanager.
    #[error("deploying the job failed: {0}")]
    Deployment(String),
    /// A service of the local cluster (its REST endpoint) could not start (found before
    /// anything ran).
    #[error("starting the local cluster's {service} failed: {cause}")]
    ClusterService {
        /// The service.
        service: &'static str,
        /// Why.
        cause: String,
    },
    /// `execution.savepoint.path: latest` found that the job already finished after its last
    /// checkpoint (in the JobResultStore): nothing was run.
    #[error(
        "job {} ('{}') already finished at {} ms since the epoch: nothing to do",
        .0.job_id, .0.job_name, .0.end_time_ms
    )]
    AlreadyFinished(Box<JobResult>),
    /// The JobMaster thread died (a bug in Eddy).
    #[error("the job master crashed: {0}")]
    JobMasterCrashed(String),
}

/// A failure of a job attempt, as Flink's exception history shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// When it happened (ms since the epoch).
    pub timestamp: i64,
    /// The root cause.
    pub cause: String,
    /// Whether the job was restarted after it.
    pub restarted: bool,
    /// The checkpoint the restart restored, if any.
    pub restored_checkpoint: Option<CheckpointId>,
    /// For a restart: how long from the failure reaching the JobMaster until every task of
    /// the new attempt had restored its state and was running again (restart delay included);
    /// `None` until then.
    pub recovered_after: Option<Duration>,
}

/// Milliseconds since the epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) type SavepointReply = mpsc::Sender<Result<String, SavepointError>>;

/// What reaches the JobMaster: task ends, checkpoint messages, client commands.
pub(crate) enum JobMasterEvent {
    TaskDone {
        attempt: u64,
        task: SubtaskKey,
        result: Result<(), TaskError>,
    },
    Ack(TaskAcknowledgement),
    Decline {
        id: CheckpointId,
        task: SubtaskKey,
        reason: String,
    },
    SourceFinished {
        attempt: u64,
        task: SubtaskKey,
    },
    TaskRunning {
        attempt: u64,
    },
    Cancel,
    Savepoint {
        kind: SnapshotKind,
        dir: Option<std::path::PathBuf>,
        reply: SavepointReply,
    },
    /// A taskmanager stopped answering heartbeats (or disconnected).
    TaskManagerLost {
        resource_id: String,
        reason: String,
    },
}

/// A job's status, with Flink's names.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Accepted, waiting for its first deployment (e.g. for slots).
    #[default]
    Created,
    /// Deployed.
    Running,
    /// Failed; a new attempt is on its way.
    Restarting,
    /// Every task finished.
    Finished,
    /// Cancelled by the user.
    Canceled,
    /// Failed for good.
    Failed,
}

impl JobStatus {
    /// Whether the job ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Canceled | JobStatus::Failed
        )
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            JobStatus::Created => "CREATED",
            JobStatus::Running => "RUNNING",
            JobStatus::Restarting => "RESTARTING",
            JobStatus::Finished => "FINISHED",
            JobStatus::Canceled => "CANCELED",
            JobStatus::Failed => "FAILED",
        };
        f.write_str(s)
    }
}

/// What a new attempt starts from.
pub(crate) struct RestoreSpec {
    /// Per subtask (vertex index, subtask): its state, read and matched by the JobMaster.
    pub states: Arc<crate::deployment::SubtaskStates>,
    /// The checkpoint it came from.
    pub checkpoint: Option<CompletedCheckpoint>,
}

/// Deploys attempts of one job.
pub(crate) trait Deployer: Send {
    /// Deploys every task of attempt `attempt` and starts them.
    fn deploy(
        &mut self,
        attempt: u64,
        restore: &RestoreSpec,
        coordinator: &CheckpointCoordinator,
    ) -> Result<Box<dyn DeployedAttempt>, JobExecutionError>;
}

/// The tasks of one deployed attempt, as the JobMaster reaches them.
pub(crate) trait DeployedAttempt: Send {
    /// The attempt's id, which task reports carry (unique per deployment, also across
    /// retries of one restart).
    fn attempt(&self) -> u64;
    /// Tasks in the attempt.
    fn task_count(&self) -> usize;
    /// Delivers a checkpoint trigger to every source task.
    fn trigger_sources(&self, barrier: &CheckpointBarrier);
    /// Delivers checkpoint mail to every task.
    fn deliver_all(&self, mail: CheckpointMail);
    /// Cancels every task.
    fn cancel(&self);
    /// A task of this attempt stopped.
    fn on_task_done(&mut self, _task: SubtaskKey) {}
    /// A taskmanager was lost: returns how many still running tasks of this attempt it had.
    fn on_taskmanager_lost(&mut self, _resource_id: &str) -> usize {
        0
    }
    /// Whether every task stopped.
    fn all_stopped(&self) -> bool;
    /// Releases what the attempt held once it stopped (joins threads, frees slots).
    fn finish(&mut self);
}

/// What the JobMaster needs across attempts.
pub(crate) struct JobMasterCtx {
    pub graph: JobGraph,
    pub shared: Arc<Mutex<JobShared>>,
    pub deployer: Box<dyn Deployer>,
}

/// What clients can read while the job runs.
#[derive(Default)]
pub(crate) struct JobShared {
    pub stats: CheckpointStatsSnapshot,
    pub failures: Vec<JobFailure>,
    pub status: JobStatus,
    /// Status transitions with their time (ms since the epoch), oldest first.
    pub transitions: Vec<(JobStatus, i64)>,
}

impl JobShared {
    pub(crate) fn set_status(&mut self, s: JobStatus) {
        if self.status != s || self.transitions.is_empty() {
            self.status = s;
            self.transitions.push((s, now_ms()));
        }
    }
}

pub(crate) fn file_safe(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn source_tasks(g: &JobGraph, eg: &ExecutionGraph) -> BTreeSet<SubtaskKey> {
    eg.subtasks
        .iter()
        .filter(|st| {
            g.operator(g.vertices[st.vertex].head)
                .is_some_and(|o| o.kind == OperatorKind::Source)
        })
        .map(|st| SubtaskKey {
            vertex: st.vertex,
            subtask: st.subtask,
        })
        .collect()
}

/// The name each operator's state files get: `op-<uid or id>`, made file-safe.
pub(crate) fn operator_files(g: &JobGraph) -> BTreeMap<eddy_core::OperatorId, String> {
    g.operators
        .iter()
        .map(|o| {
            (
                o.id,
                format!(
                    "op-{}",
                    file_safe(&operator_state_key(o.uid.as_deref(), o.id))
                ),
            )
        })
        .collect()
}

/// What every deployment needs before the first attempt: the ExecutionGraph, the checkpoint
/// coordinator and the state to start from (a savepoint, read and matched to the job before
/// anything runs).
pub(crate) struct PreparedJob {
    pub eg: ExecutionGraph,
    pub coordinator: CheckpointCoordinator,
    pub initial: RestoreSpec,
}

/// Checks the job's checkpoint settings and start savepoint and sets up its coordinator.
pub(crate) fn prepare(
    g: &JobGraph,
    slots: Option<usize>,
) -> Result<PreparedJob, JobExecutionError> {
    let eg = ExecutionGraph::build(g)?;
    if let Some(available) = slots {
        if eg.slots.len() > available {
            return Err(JobExecutionError::NotEnoughSlots {
                needed: eg.slots.len(),
                available,
            });
        }
    }
    let cfg = g.config.checkpoint.clone();
    let storage = storage_for_url(cfg.storage.as_deref())
        .map_err(|e| JobExecutionError::CheckpointConfig(e.to_string()))?;
    let operators: Vec<OperatorInfo> = g
        .operators
        .iter()
        .map(|o| OperatorInfo {
            id: o.id,
            uid: o.uid.clone(),
            name: o.name.clone(),
            parallelism: o.parallelism,
            max_parallelism: o.max_parallelism,
        })
        .collect();
    let tasks: BTreeSet<SubtaskKey> = eg
        .subtasks
        .iter()
        .map(|st| SubtaskKey {
            vertex: st.vertex,
            subtask: st.subtask,
        })
        .collect();
    let mut coordinator = CheckpointCoordinator::new(
        cfg,
        g.job_id,
        g.job_name.clone(),
        storage,
        tasks,
        source_tasks(g, &eg),
        operators,
        1,
    );
    // The state to start from is read and matched to the job before anything runs.
    let mut initial = HashMap::new();
    let mut initial_checkpoint = None;
    if let Some(sp) = g
        .config
        .savepoint_restore
        .as_ref()
        .filter(|s| !s.path.is_empty())
    {
        let loaded = if sp.path == restore::LATEST {
            match resolve_latest_of(g)? {
                restore::Latest::Fresh => None,
                restore::Latest::Restore(l) => Some(*l),
                restore::Latest::AlreadyFinished(r) => {
                    return Err(JobExecutionError::AlreadyFinished(r))
                }
            }
        } else {
            Some(restore::load(&restore::open_path(&sp.path)?)?)
        };
        if let Some(loaded) = loaded {
            initial = restore::assign(&loaded, g, sp.allow_non_restored_state)?;
            let c = loaded.checkpoint;
            tracing::info!(
                path = %c.location,
                checkpoint = c.metadata.checkpoint_id,
                claim_mode = %sp.claim_mode,
                "restoring job"
            );
            initial_checkpoint = Some(c.clone());
            coordinator.add_restored(c, sp.claim_mode, now_ms());
        }
    }
    Ok(PreparedJob {
        eg,
        coordinator,
        initial: RestoreSpec {
            states: Arc::new(initial),
            checkpoint: initial_checkpoint,
        },
    })
}

/// `execution.savepoint.path: latest`: the job's newest checkpoint under its checkpoint
/// directory, unless the JobResultStore says a run of the job finished after it.
fn resolve_latest_of(g: &JobGraph) -> Result<restore::Latest, JobExecutionError> {
    let cfg = &g.config.checkpoint;
    let root = cfg
        .storage
        .as_deref()
        .map(eddy_runtime::checkpoint::storage::path_of_url)
        .transpose()
        .map_err(|e| JobExecutionError::CheckpointConfig(e.to_string()))?
        .ok_or_else(|| {
            JobExecutionError::CheckpointConfig(format!(
                "{} = {} resumes from the job's checkpoint directory, but {} is not set",
                eddy_core::config::SAVEPOINT_PATH,
                restore::LATEST,
                eddy_core::config::CHECKPOINTS_DIR
            ))
        })?;
    let store = FileJobResultStore::for_job(&g.config)
        .map_err(|e| JobExecutionError::CheckpointConfig(e.to_string()))?
        .unwrap_or_else(|| FileJobResultStore::in_checkpoint_dir(&root));
    let (latest, warnings) = restore::resolve_latest(&root, &store, &g.job_name)
        .map_err(|e| JobExecutionError::Restore(e.into()))?;
    for w in warnings {
        tracing::warn!(job = %g.job_name, "{w}");
    }
    Ok(latest)
}

/// How one attempt ended.
enum AttemptEnd {
    Finished,
    Cancelled(Option<TaskError>),
    Failed(JobExecutionError),
}

/// Runs the job's attempts until it finishes, is cancelled, or fails for good.
pub(crate) fn job_master(
    ctx: &mut JobMasterCtx,
    mut coordinator: CheckpointCoordinator,
    first: Result<Box<dyn DeployedAttempt>, JobExecutionError>,
    rx: &mpsc::Receiver<JobMasterEvent>,
    started: Instant,
) -> Result<JobExecutionResult, JobExecutionError> {
    let r = job_master_loop(ctx, &mut coordinator, first, rx, started);
    let status = match &r {
        Ok(_) => JobStatus::Finished,
        Err(e) if is_cancellation(e) => JobStatus::Canceled,
        Err(_) => JobStatus::Failed,
    };
    ctx.shared.lock().set_status(status);
    r
}

fn job_master_loop(
    ctx: &mut JobMasterCtx,
    coordinator: &mut CheckpointCoordinator,
    first: Result<Box<dyn DeployedAttempt>, JobExecutionError>,
    rx: &mpsc::Receiver<JobMasterEvent>,
    started: Instant,
) -> Result<JobExecutionResult, JobExecutionError> {
    let g = ctx.graph.clone();
    let g = &g;
    ctx.shared.lock().set_status(JobStatus::Running);
    let mut backoff = RestartBackoff::new(&g.config.effective_restart_strategy());
    let mut replies: HashMap<u64, SavepointReply> = HashMap::new();
    let mut attempt = 1u64;
    let mut next = first;
    let mut recovering_since: Option<Instant> = None;
    loop {
        let failure = match next {
            // Deploying failed (no slots within the timeout, a taskmanager refused): a
            // failure like any other, for the restart strategy to judge.
            Err(e) if is_cancellation(&e) => {
                end_job(ctx, coordinator, JobEnd::Cancelled, None);
                return Err(e);
            }
            Err(e) => e,
            Ok(mut deployment) => {
                let id = deployment.attempt();
                let end = run_attempt(
                    ctx,
                    coordinator,
                    deployment.as_mut(),
                    (id, recovering_since.take()),
                    rx,
                    &mut replies,
                );
                // Stop what is left of the attempt and wait for every task.
                deployment.cancel();
                let cancel_requested = drain_attempt(coordinator, deployment.as_mut(), id, rx);
                deployment.finish();
                let end = match end {
                    // A cancel that came while the failed attempt wound down wins over a
                    // restart.
                    AttemptEnd::Failed(_) if cancel_requested => AttemptEnd::Cancelled(None),
                    end => end,
                };
                match end {
                    AttemptEnd::Finished => {
                        end_job(ctx, coordinator, JobEnd::Finished, None);
                        return Ok(JobExecutionResult {
                            job_id: g.job_id,
                            job_name: g.job_name.clone(),
                            net_runtime: started.elapsed(),
                        });
                    }
                    AttemptEnd::Cancelled(e) => {
                        end_job(ctx, coordinator, JobEnd::Cancelled, None);
                        let e = e.unwrap_or_else(|| {
                            TaskError::new(g.job_name.clone(), 0, "-", OperatorError::Cancelled)
                        });
                        return Err(JobExecutionError::TaskFailed(e));
                    }
                    AttemptEnd::Failed(e) => e,
                }
            }
        };
        let now = now_ms();
        let failed_at = Instant::now();
        let delay = backoff.on_failure(now);
        let record = |restarted: bool, restored: Option<CheckpointId>| {
            ctx.shared.lock().failures.push(JobFailure {
                timestamp: now,
                cause: failure.to_string(),
                restarted,
                restored_checkpoint: restored,
                recovered_after: None,
            });
        };
        let Some(delay) = delay else {
            record(false, None);
            end_job(ctx, coordinator, JobEnd::Failed, Some(failure.to_string()));
            if matches!(
                g.config.effective_restart_strategy(),
                eddy_core::RestartStrategyConfig::None
            ) && attempt == 1
            {
                return Err(failure);
            }
            return Err(JobExecutionError::RecoverySuppressed {
                strategy: backoff.describe(),
                cause: Box::new(failure),
            });
        };
        tracing::warn!(job = %g.job_id, attempt, "job failed, restarting in {delay:?}: {failure}");
        ctx.shared.lock().set_status(JobStatus::Restarting);
        // Wait out the restart delay; a cancel meanwhile ends the job.
        let deadline = Instant::now() + delay;
        let mut cancelled = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(JobMasterEvent::Cancel) => {
                    cancelled = true;
                    break;
                }
                Ok(JobMasterEvent::Savepoint { reply, .. }) => {
                    let _ = reply.send(Err(SavepointError::NotNow("the job is restarting")));
                }
                Ok(JobMasterEvent::Ack(a)) => {
                    coordinator.acknowledge(a, now_ms());
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if cancelled {
            record(false, None);
            end_job(ctx, coordinator, JobEnd::Cancelled, None);
            return Err(JobExecutionError::TaskFailed(TaskError::new(
                g.job_name.clone(),
                0,
                "-",
                OperatorError::Cancelled,
            )));
        }
        for a in coordinator.reset_for_restart(now_ms()) {
            if let CoordinatorAction::SavepointDone { request, result } = a {
                if let Some(r) = replies.remove(&request) {
                    let _ = r.send(result);
                }
            }
        }
        record(true, None);
        recovering_since = Some(failed_at);
        attempt += 1;
        next = match restore_latest(coordinator, g) {
            Ok(spec) => {
                if let Some(c) = &spec.checkpoint {
                    if let Some(f) = ctx.shared.lock().failures.last_mut() {
                        f.restored_checkpoint = Some(c.metadata.checkpoint_id);
                    }
                }
                ctx.deployer.deploy(attempt, &spec, coordinator)
            }
            // Fails this restart: the restart strategy judges it like any failure (the files
            // may be readable again on the next try), and no attempt runs without its state.
            Err(e) => Err(JobExecutionError::Restore(e.into())),
        };
        if next.is_ok() {
            ctx.shared.lock().set_status(JobStatus::Running);
        }
        publish(ctx, coordinator);
    }
}

/// The state a restart deploys: the latest completed checkpoint that can be read, older
/// retained ones otherwise, and empty state only if the job never completed a checkpoint.
fn restore_latest(
    coordinator: &mut CheckpointCoordinator,
    g: &JobGraph,
) -> Result<RestoreSpec, NoUsableCheckpoint> {
    let candidates: Vec<CompletedCheckpoint> =
        coordinator.completed_checkpoints().cloned().collect();
    let allow = g
        .config
        .savepoint_restore
        .as_ref()
        .is_some_and(|s| s.allow_non_restored_state);
    let mut tried = Vec::new();
    for c in candidates {
        match restore::load(&c).and_then(|l: LoadedCheckpoint| restore::assign(&l, g, allow)) {
            Ok(states) => {
                coordinator.record_restore(&c, now_ms());
                return Ok(RestoreSpec {
                    states: Arc::new(states),
                    checkpoint: Some(c),
                });
            }
            Err(e) => {
                tracing::error!(
                    "cannot restore checkpoint {}, trying an older one: {e}",
                    c.metadata.checkpoint_id
                );
                tried.push(FailedCandidate {
                    id: c.metadata.checkpoint_id,
                    location: c.location.dir.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if tried.is_empty() {
        Ok(RestoreSpec {
            states: Arc::default(),
            checkpoint: None,
        })
    } else {
        Err(NoUsableCheckpoint { tried })
    }
}

/// Whether a job error is only the user's cancellation.
pub(crate) fn is_cancellation(e: &JobExecutionError) -> bool {
    matches!(e, JobExecutionError::TaskFailed(t) if t.is_cancellation())
}

/// The job ended: its result goes to the JobResultStore *before* its checkpoints are cleaned
/// up, so a restart of the same logical job that comes at any moment after this finds it and
/// does nothing. If the result cannot be recorded, the checkpoints are kept instead (a restart
/// then resumes from the newest one, which holds the job's final state).
fn end_job(
    ctx: &JobMasterCtx,
    coordinator: &mut CheckpointCoordinator,
    end: JobEnd,
    error: Option<String>,
) {
    let g = &ctx.graph;
    let state = match end {
        JobEnd::Finished => JobStatus::Finished,
        JobEnd::Cancelled => JobStatus::Canceled,
        JobEnd::Failed => JobStatus::Failed,
    };
    let store = match FileJobResultStore::for_job(&g.config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(job = %g.job_id, "no job result store: {e}");
            None
        }
    };
    let recorded = store.as_ref().map(|s| {
        s.create_dirty(&JobResult {
            version: JOB_RESULT_VERSION,
            job_id: g.job_id,
            job_name: g.job_name.clone(),
            state,
            end_time_ms: now_ms(),
            error,
        })
    });
    match recorded {
        Some(Err(e)) => {
            tracing::error!(
                job = %g.job_id,
                "cannot record the job's result ({e}); keeping its checkpoints"
            );
            coordinator.on_job_end_retaining();
        }
        Some(Ok(())) => {
            coordinator.on_job_end(end);
            if let Some(Err(e)) = store.map(|s| s.mark_clean(g.job_id)) {
                tracing::warn!(job = %g.job_id, "cannot mark the job result clean: {e}");
            }
        }
        None => coordinator.on_job_end(end),
    }
    publish(ctx, coordinator);
}

pub(crate) fn publish(ctx: &JobMasterCtx, coordinator: &CheckpointCoordinator) {
    ctx.shared.lock().stats = coordinator.stats();
}

/// Delivers the coordinator's actions; returns a job failure if one says so.
fn apply_actions(
    actions: Vec<CoordinatorAction>,
    d: &dyn DeployedAttempt,
    replies: &mut HashMap<u64, SavepointReply>,
) -> Option<String> {
    let mut fail = None;
    for a in actions {
        match a {
            CoordinatorAction::TriggerSources(b) => d.trigger_sources(&b),
            CoordinatorAction::NotifyComplete(id) => d.deliver_all(CheckpointMail::Complete(id)),
            CoordinatorAction::NotifyAborted(id) => d.deliver_all(CheckpointMail::Abort(id)),
            CoordinatorAction::FailJob(reason) => {
                fail.get_or_insert(reason);
            }
            CoordinatorAction::SavepointDone { request, result } => {
                if let Some(r) = replies.remove(&request) {
                    let _ = r.send(result);
                }
            }
        }
    }
    fail
}

fn run_attempt(
    ctx: &JobMasterCtx,
    coordinator: &mut CheckpointCoordinator,
    d: &mut dyn DeployedAttempt,
    (attempt, mut recovering_since): (u64, Option<Instant>),
    rx: &mpsc::Receiver<JobMasterEvent>,
    replies: &mut HashMap<u64, SavepointReply>,
) -> AttemptEnd {
    let g = &ctx.graph;
    let mut finished = 0usize;
    let mut running = 0usize;
    let mut cancelling = false;
    let mut cancel_echo: Option<TaskError> = None;
    loop {
        let now = now_ms();
        let wait = (coordinator.next_tick(now) - now).clamp(1, 1000) as u64;
        let ev = match rx.recv_timeout(Duration::from_millis(wait)) {
            Ok(ev) => Some(ev),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return AttemptEnd::Failed(JobExecutionError::JobMasterCrashed(
                    "event channel closed".into(),
                ))
            }
        };
        let now = now_ms();
        let actions = match ev {
            None => {
                if cancelling {
                    Vec::new()
                } else {
                    coordinator.tick(now)
                }
            }
            Some(JobMasterEvent::TaskDone { attempt: a, .. }) if a != attempt => Vec::new(),
            Some(JobMasterEvent::TaskDone { result, task, .. }) => {
                d.on_task_done(task);
                match result {
                    // A root cause (not only the echo of a cancellation) ends the attempt now.
                    Err(e) if !cancelling && !e.is_cancellation() => {
                        return AttemptEnd::Failed(JobExecutionError::TaskFailed(e))
                    }
                    // Echoes of a cancellation: the root cause may still be on its way.
                    Err(e) => {
                        cancel_echo.get_or_insert(e);
                    }
                    Ok(()) => {}
                }
                finished += 1;
                if finished == d.task_count() {
                    return match (cancelling, cancel_echo) {
                        (true, echo) => AttemptEnd::Cancelled(echo),
                        (false, Some(echo)) => {
                            AttemptEnd::Failed(JobExecutionError::TaskFailed(echo))
                        }
                        (false, None) => AttemptEnd::Finished,
                    };
                }
                Vec::new()
            }
            Some(JobMasterEvent::Ack(a)) => coordinator.acknowledge(a, now),
            Some(JobMasterEvent::Decline { id, task, reason }) => {
                coordinator.decline(id, task, &reason, now)
            }
            Some(JobMasterEvent::SourceFinished { attempt: a, task }) if a == attempt => {
                coordinator.source_finished(task, now)
            }
            Some(JobMasterEvent::SourceFinished { .. }) => Vec::new(),
            Some(JobMasterEvent::TaskRunning { attempt: a }) if a == attempt => {
                running += 1;
                if running == d.task_count() {
                    if let Some(since) = recovering_since.take() {
                        let mut shared = ctx.shared.lock();
                        if let Some(f) = shared.failures.iter_mut().rev().find(|f| f.restarted) {
                            f.recovered_after = Some(since.elapsed());
                        }
                    }
                }
                Vec::new()
            }
            Some(JobMasterEvent::TaskRunning { .. }) => Vec::new(),
            Some(JobMasterEvent::Cancel) => {
                cancelling = true;
                d.cancel();
                Vec::new()
            }
            Some(JobMasterEvent::TaskManagerLost {
                resource_id,
                reason,
            }) => {
                let lost = d.on_taskmanager_lost(&resource_id);
                if lost > 0 && !cancelling {
                    return AttemptEnd::Failed(JobExecutionError::TaskManagerLost {
                        resource_id,
                        reason,
                    });
                }
                finished += lost;
                if lost > 0 && finished >= d.task_count() {
                    return AttemptEnd::Cancelled(cancel_echo);
                }
                Vec::new()
            }
            Some(JobMasterEvent::Savepoint { kind, dir, reply }) => {
                let target = dir.or_else(|| {
                    g.config
                        .checkpoint
                        .savepoint_dir
                        .as_deref()
                        .and_then(|u| eddy_runtime::checkpoint::storage::path_of_url(u).ok())
                });
                match target {
                    None => {
                        let _ = reply.send(Err(SavepointError::NoTargetDirectory));
                        Vec::new()
                    }
                    Some(t) => {
                        let (request, actions) = coordinator.trigger_savepoint(now, kind, &t);
                        replies.insert(request, reply);
                        actions
                    }
                }
            }
        };
        if let Some(reason) = apply_actions(actions, &*d, replies) {
            publish(ctx, coordinator);
            return AttemptEnd::Failed(JobExecutionError::CheckpointFailure(reason));
        }
        publish(ctx, coordinator);
    }
}

/// After an attempt ended: waits until every task thread of it has stopped, handling what
/// arrives meanwhile. Returns whether the user asked to cancel the job.
fn drain_attempt(
    coordinator: &mut CheckpointCoordinator,
    d: &mut dyn DeployedAttempt,
    attempt: u64,
    rx: &mpsc::Receiver<JobMasterEvent>,
) -> bool {
    let mut cancel_requested = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.all_stopped() && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(JobMasterEvent::TaskDone {
                attempt: a, task, ..
            }) if a == attempt => d.on_task_done(task),
            Ok(JobMasterEvent::TaskManagerLost { resource_id, .. }) => {
                d.on_taskmanager_lost(&resource_id);
            }
            Ok(JobMasterEvent::Ack(a)) => {
                coordinator.acknowledge(a, now_ms());
            }
            Ok(JobMasterEvent::Savepoint { reply, .. }) => {
                let _ = reply.send(Err(SavepointError::NotNow("the job is ending")));
            }
            Ok(JobMasterEvent::Cancel) => cancel_requested = true,
            Ok(_) | Err(_) => {}
        }
    }
    cancel_requested
}
