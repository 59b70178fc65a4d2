//! The Dispatcher (DESIGN §1): accepts jobs, runs one JobMaster per job, and answers what the
//! REST API asks (list, status, cancel, savepoints). A job is built here from its submission
//! (the binary's job registry), checked (configuration, `initialize_global`), fingerprinted,
//! and handed to a JobMaster thread running the shared supervision loop
//! ([`crate::jobmanager::job_master`]) with a [`ClusterDeployer`]: slots from the ResourceManager, tasks
//! to TaskExecutors over RPC.

use crate::deployment::{
    build_checked, slot_of_subtasks, JobSubmission, ProgramBuilder, TaskDeployment,
    TaskManagerLocation,
};
use crate::jobmanager::checkpoint::{CheckpointCoordinator, CheckpointStatsSnapshot};
use crate::jobmanager::job_master::{
    job_master, now_ms, prepare, DeployedAttempt, Deployer, JobExecutionError, JobFailure,
    JobMasterCtx, JobMasterEvent, JobShared, JobStatus, PreparedJob, RestoreSpec,
};
use crate::jobmanager::job_result_store::JobResult;
use crate::jobmanager::resource_manager::{ResourceManager, SlotRequestError};
use crate::taskmanager::gateway::{SubmitError, TaskExecutorGateway};
use crate::taskmanager::task_executor::{ExecutionState, TaskFailureReport};
use eddy_core::cluster_config::ClusterConfig;
use eddy_core::jobgraph::JobGraph;
use eddy_core::JobId;
use eddy_runtime::checkpoint::{CheckpointBarrier, CheckpointMail, SnapshotKind, SubtaskKey};
use eddy_runtime::{OperatorError, TaskError};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// One vertex of a job, for status pages.
#[derive(Clone, Debug, Serialize)]
pub struct VertexStatus {
    /// Vertex name (chained operators).
    pub name: String,
    /// Parallelism.
    pub parallelism: usize,
    /// Per subtask: its state in the current attempt and the taskmanager running it.
    pub subtasks: Vec<(ExecutionState, Option<String>)>,
}

/// A job as the REST API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct JobDetails {
    /// Its id.
    pub id: JobId,
    /// Its name.
    pub name: String,
    /// The built-in job it runs.
    pub entry: String,
    /// Its status.
    pub status: JobStatus,
    /// Status transitions (status, ms since the epoch), oldest first.
    pub transitions: Vec<(JobStatus, i64)>,
    /// When it was submitted (ms since the epoch).
    pub start_ms: i64,
    /// When it ended.
    pub end_ms: Option<i64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Failures so far (with restarts).
    pub failures: Vec<JobFailureView>,
    /// Its vertices.
    pub vertices: Vec<VertexStatus>,
    /// Its current attempt.
    pub attempt: u64,
    /// Checkpoint counts.
    pub checkpoints: CheckpointCounts,
}

/// A failure, for the REST API.
#[derive(Clone, Debug, Serialize)]
pub struct JobFailureView {
    /// When (ms since the epoch).
    pub timestamp: i64,
    /// The root cause.
    pub cause: String,
    /// Whether a restart followed.
    pub restarted: bool,
    /// For a restart: ms from the failure reaching the JobMaster until every task of the new
    /// attempt ran again.
    pub recovered_after_ms: Option<u64>,
}

/// Checkpoint counts, for the REST API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckpointCounts {
    /// Completed checkpoints.
    pub completed: u64,
    /// Failed checkpoints.
    pub failed: u64,
    /// The latest completed checkpoint's directory.
    pub latest: Option<String>,
}

fn counts(s: &CheckpointStatsSnapshot) -> CheckpointCounts {
    CheckpointCounts {
        completed: s.counts.completed,
        failed: s.counts.failed,
        latest: s
            .latest_completed
            .as_ref()
            .and_then(|c| c.external_path.clone()),
    }
}

/// Per task of an attempt: its state and the taskmanager running it.
type TaskTable = HashMap<SubtaskKey, (ExecutionState, Option<String>)>;

/// What the dispatcher knows of one job.
pub struct JobRecord {
    id: JobId,
    name: String,
    entry: String,
    start_ms: i64,
    graph: JobGraph,
    shared: Arc<Mutex<JobShared>>,
    events: Mutex<mpsc::Sender<JobMasterEvent>>,
    /// Set by a cancel: a JobMaster waiting for slots stops waiting.
    cancel_requested: std::sync::atomic::AtomicBool,
    end: Mutex<Option<(i64, Option<String>)>>,
    /// The current attempt and its tasks.
    tasks: Mutex<(u64, TaskTable)>,
}

impl JobRecord {
    fn send(&self, e: JobMasterEvent) {
        let _ = self.events.lock().send(e);
    }

    fn details(&self) -> JobDetails {
        let shared = self.shared.lock();
        let end = self.end.lock().clone();
        let tasks = self.tasks.lock();
        let vertices = self
            .graph
            .vertices
            .iter()
            .enumerate()
            .map(|(vi, v)| VertexStatus {
                name: v.name.clone(),
                parallelism: v.parallelism,
                subtasks: (0..v.parallelism)
                    .map(|s| {
                        tasks
                            .1
                            .get(&SubtaskKey {
                                vertex: vi,
                                subtask: s,
                            })
                            .cloned()
                            .unwrap_or((ExecutionState::Created, None))
                    })
                    .collect(),
            })
            .collect();
        JobDetails {
            id: self.id,
            name: self.name.clone(),
            entry: self.entry.clone(),
            status: shared.status,
            transitions: shared.transitions.clone(),
            start_ms: self.start_ms,
            end_ms: end.as_ref().map(|e| e.0),
            error: end.and_then(|e| e.1),
            failures: shared
                .failures
                .iter()
                .map(|f: &JobFailure| JobFailureView {
                    timestamp: f.timestamp,
                    cause: f.cause.clone(),
                    restarted: f.restarted,
                    recovered_after_ms: f.recovered_after.map(|d| d.as_millis() as u64),
                })
                .collect(),
            vertices,
            attempt: tasks.0,
            checkpoints: counts(&shared.stats),
        }
    }
}

/// Why a submission started no job.
#[derive(Debug)]
pub enum SubmitRejection {
    /// The job cannot run as submitted (unknown job, bad arguments or settings, an unusable
    /// savepoint): the message says what.
    Invalid(String),
    /// `execution.savepoint.path: latest` found the logical job finished in the JobResultStore:
    /// there is nothing to run.
    AlreadyFinished(Box<JobResult>),
}

impl From<String> for SubmitRejection {
    fn from(s: String) -> Self {
        SubmitRejection::Invalid(s)
    }
}

impl std::fmt::Display for SubmitRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitRejection::Invalid(m) => f.write_str(m),
            SubmitRejection::AlreadyFinished(r) => write!(
                f,
                "job {} ('{}') already finished at {} ms since the epoch",
                r.job_id, r.job_name, r.end_time_ms
            ),
        }
    }
}

/// The state of an asynchronous savepoint operation (REST: trigger, then poll).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SavepointStatus {
    /// Still running.
    InProgress,
    /// Done: the savepoint's path.
    Completed(String),
    /// Failed: why.
    Failed(String),
}

/// The registered taskmanagers as the jobs see them: losing one (heartbeat timeout, failed
/// deployment) removes it from the ResourceManager and the RPC links and tells every running
/// job, whoever noticed.
#[derive(Clone)]
pub(crate) struct TaskManagerTracker {
    rm: Arc<ResourceManager>,
    links: Arc<dyn TaskExecutorGateway>,
    jobs: Arc<Mutex<Vec<Arc<JobRecord>>>>,
}

impl TaskManagerTracker {
    /// Removes a taskmanager and tells the jobs (once: a second call finds it gone).
    pub(crate) fn lose(&self, resource_id: &str, reason: &str) {
        if self.rm.remove(resource_id).is_some() {
            self.links.remove(resource_id);
            self.notify(resource_id, reason);
        }
    }

    /// Tells every running job that its tasks on the taskmanager are gone.
    pub(crate) fn notify(&self, resource_id: &str, reason: &str) {
        tracing::warn!("taskmanager {resource_id} lost: {reason}");
        let jobs: Vec<Arc<JobRecord>> = self.jobs.lock().clone();
        for j in jobs {
            if !j.shared.lock().status.is_terminal() {
                j.send(JobMasterEvent::TaskManagerLost {
                    resource_id: resource_id.to_string(),
                    reason: reason.to_string(),
                });
            }
        }
    }
}

/// The Dispatcher of a jobmanager.
pub struct Dispatcher {
    rm: Arc<ResourceManager>,
    links: Arc<dyn TaskExecutorGateway>,
    builder: Arc<dyn ProgramBuilder>,
    config: ClusterConfig,
    job_defaults: BTreeMap<String, String>,
    jobs: Arc<Mutex<Vec<Arc<JobRecord>>>>,
    savepoints: Arc<Mutex<HashMap<String, SavepointStatus>>>,
    next_trigger: std::sync::atomic::AtomicU64,
}

impl Dispatcher {
    /// A dispatcher submitting to `rm`'s slots. `job_defaults` are job settings of the
    /// jobmanager's configuration, under those of each submission.
    pub(crate) fn new(
        rm: Arc<ResourceManager>,
        links: Arc<dyn TaskExecutorGateway>,
        builder: Arc<dyn ProgramBuilder>,
        config: ClusterConfig,
        job_defaults: BTreeMap<String, String>,
    ) -> Self {
        Dispatcher {
            rm,
            links,
            builder,
            config,
            job_defaults,
            jobs: Arc::new(Mutex::new(Vec::new())),
            savepoints: Arc::new(Mutex::new(HashMap::new())),
            next_trigger: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The ResourceManager.
    pub fn resource_manager(&self) -> &Arc<ResourceManager> {
        &self.rm
    }

    /// The cluster configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    fn record(&self, id: JobId) -> Option<Arc<JobRecord>> {
        self.jobs.lock().iter().find(|j| j.id == id).cloned()
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<JobDetails> {
        let jobs: Vec<Arc<JobRecord>> = self.jobs.lock().clone();
        jobs.iter().map(|j| j.details()).collect()
    }

    /// One job.
    pub fn job(&self, id: JobId) -> Option<JobDetails> {
        self.record(id).map(|j| j.details())
    }

    /// The job's graph.
    pub fn job_graph(&self, id: JobId) -> Option<JobGraph> {
        self.record(id).map(|j| j.graph.clone())
    }

    /// Accepts a job: builds and checks it, then starts its JobMaster. Returns its id; the
    /// job then waits for slots and runs (errors after this point show in its status).
    pub fn submit(&self, mut submission: JobSubmission) -> Result<JobId, SubmitRejection> {
        self.submit_inner(&mut submission)
    }

    fn submit_inner(&self, submission: &mut JobSubmission) -> Result<JobId, SubmitRejection> {
        submission.job_id = JobId::generate();
        let mut settings = self.job_defaults.clone();
        settings.extend(submission.settings.clone());
        submission.settings = settings;
        submission.fingerprint.clear();
        let program = build_checked(self.builder.as_ref(), submission)?;
        submission.fingerprint = program.fingerprint();
        let g = program.job_graph.clone();
        g.config.validate().map_err(|e| e.to_string())?;
        check_cluster_checkpoint_storage(&g)?;
        for op in &g.operators {
            if let Some(f) = program.factories.get(&op.id) {
                f.initialize_global().map_err(|e| {
                    format!("job initialization failed in operator '{}': {e}", op.name)
                })?;
            }
        }
        let PreparedJob {
            coordinator,
            initial,
            ..
        } = prepare(&g, None).map_err(|e| match e {
            JobExecutionError::AlreadyFinished(r) => SubmitRejection::AlreadyFinished(r),
            e => SubmitRejection::Invalid(e.to_string()),
        })?;
        let submission = submission.clone();
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Mutex::new(JobShared::default()));
        shared.lock().set_status(JobStatus::Created);
        let record = Arc::new(JobRecord {
            id: g.job_id,
            name: g.job_name.clone(),
            entry: submission.entry.clone(),
            start_ms: now_ms(),
            graph: g.clone(),
            shared: shared.clone(),
            events: Mutex::new(tx),
            cancel_requested: Default::default(),
            end: Mutex::new(None),
            tasks: Mutex::new((0, HashMap::new())),
        });
        self.jobs.lock().push(record.clone());
        let deployer = ClusterDeployer {
            allow_non_restored: g
                .config
                .savepoint_restore
                .as_ref()
                .is_some_and(|s| s.allow_non_restored_state),
            submission,
            graph: g.clone(),
            rm: self.rm.clone(),
            links: self.links.clone(),
            tracker: self.taskmanager_tracker(),
            last_attempt: 0,
            slot_timeout: Duration::from_millis(self.config.slot_request_timeout_ms),
            record: record.clone(),
        };
        let id = g.job_id;
        std::thread::Builder::new()
            .name(format!("jobmaster-{}", &id.to_string()[..8]))
            .spawn(move || run_job(record, deployer, coordinator, initial, rx))
            .map_err(|e| SubmitRejection::Invalid(format!("cannot start the job master: {e}")))?;
        tracing::info!(job = %id, name = %g.job_name, "job submitted");
        Ok(id)
    }

    /// Cancels a job.
    pub fn cancel(&self, id: JobId) -> Result<(), String> {
        let r = self.record(id).ok_or_else(|| format!("no job {id}"))?;
        if r.shared.lock().status.is_terminal() {
            return Err(format!(
                "job {id} already ended ({})",
                r.shared.lock().status
            ));
        }
        r.cancel_requested
            .store(true, std::sync::atomic::Ordering::Release);
        r.send(JobMasterEvent::Cancel);
        Ok(())
    }

    /// Starts a savepoint (`SnapshotKind::Savepoint`) or stop-with-savepoint; returns the
    /// trigger id to poll with [`Dispatcher::savepoint_status`].
    pub fn trigger_savepoint(
        &self,
        id: JobId,
        dir: Option<PathBuf>,
        kind: SnapshotKind,
    ) -> Result<String, String> {
        let r = self.record(id).ok_or_else(|| format!("no job {id}"))?;
        if r.shared.lock().status != JobStatus::Running {
            return Err(format!(
                "job {id} is {}, not RUNNING",
                r.shared.lock().status
            ));
        }
        let (tx, rx) = mpsc::channel();
        r.send(JobMasterEvent::Savepoint {
            kind,
            dir,
            reply: tx,
        });
        let n = self
            .next_trigger
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let trigger = format!("{:08x}{:016x}", n, JobId::generate().0 as u64);
        self.savepoints
            .lock()
            .insert(trigger.clone(), SavepointStatus::InProgress);
        let ops = self.savepoints.clone();
        let t = trigger.clone();
        std::thread::spawn(move || {
            let status = match rx.recv() {
                Ok(Ok(path)) => SavepointStatus::Completed(path),
                Ok(Err(e)) => SavepointStatus::Failed(e),
                Err(_) => SavepointStatus::Failed("the job ended before the savepoint".into()),
            };
            ops.lock().insert(t, status);
        });
        Ok(trigger)
    }

    /// The state of a savepoint operation.
    pub fn savepoint_status(&self, trigger: &str) -> Option<SavepointStatus> {
        self.savepoints.lock().get(trigger).cloned()
    }

    /// A task changed state (reported by its TaskExecutor).
    pub fn on_task_state(
        &self,
        job: JobId,
        attempt: u64,
        task: SubtaskKey,
        state: ExecutionState,
        failure: Option<TaskFailureReport>,
    ) {
        let Some(r) = self.record(job) else {
            return;
        };
        {
            let mut t = r.tasks.lock();
            if t.0 == attempt {
                if let Some(e) = t.1.get_mut(&task) {
                    e.0 = state;
                }
            }
        }
        match state {
            ExecutionState::Running => r.send(JobMasterEvent::TaskRunning { attempt }),
            ExecutionState::Finished => r.send(JobMasterEvent::TaskDone {
                attempt,
                task: Some(task),
                result: Ok(()),
            }),
            ExecutionState::Canceled | ExecutionState::Failed => {
                let f = failure.unwrap_or(TaskFailureReport {
                    operator: format!("task {}", task.vertex),
                    subtask_display: format!("{}", task.subtask + 1),
                    cause: "unknown".into(),
                });
                let cause = if state == ExecutionState::Canceled {
                    OperatorError::Cancelled
                } else {
                    OperatorError::Remote(f.cause)
                };
                r.send(JobMasterEvent::TaskDone {
                    attempt,
                    task: Some(task),
                    result: Err(TaskError::new(
                        f.operator,
                        task.subtask,
                        f.subtask_display,
                        cause,
                    )),
                });
            }
            _ => {}
        }
    }

    /// Forwards a checkpoint message of a job's task to its JobMaster.
    pub(crate) fn to_job(&self, job: JobId, e: JobMasterEvent) {
        if let Some(r) = self.record(job) {
            r.send(e);
        }
    }

    pub(crate) fn taskmanager_tracker(&self) -> TaskManagerTracker {
        TaskManagerTracker {
            rm: self.rm.clone(),
            links: self.links.clone(),
            jobs: self.jobs.clone(),
        }
    }
}

/// A checkpointed job on a cluster needs checkpoint storage every process reaches: without
/// `state.checkpoints.dir`, each taskmanager would keep its state in its own memory and the
/// first failover would lose it. (A relative path would name another directory in each
/// process.)
fn check_cluster_checkpoint_storage(g: &JobGraph) -> Result<(), String> {
    let cfg = &g.config.checkpoint;
    if !cfg.is_enabled() {
        return Ok(());
    }
    let Some(url) = cfg.storage.as_deref() else {
        return Err(format!(
            "job '{}' enables checkpointing ({} = {} ms) but {} is not set: on a cluster, \
             checkpoints must go to a directory every jobmanager and taskmanager process \
             reaches (a shared file system), or the first failover would lose the state",
            g.job_name,
            eddy_core::config::CHECKPOINTING_INTERVAL,
            cfg.interval_ms.unwrap_or(0),
            eddy_core::config::CHECKPOINTS_DIR
        ));
    };
    let path = eddy_runtime::checkpoint::storage::path_of_url(url).map_err(|e| e.to_string())?;
    if !path.is_absolute() {
        return Err(format!(
            "{} = '{url}' is a relative path, which names a different directory in each \
             cluster process: give an absolute path or a file:/// URL",
            eddy_core::config::CHECKPOINTS_DIR
        ));
    }
    Ok(())
}

fn run_job(
    record: Arc<JobRecord>,
    mut deployer: ClusterDeployer,
    coordinator: CheckpointCoordinator,
    initial: RestoreSpec,
    rx: mpsc::Receiver<JobMasterEvent>,
) {
    let started = Instant::now();
    // A first deployment that fails (no slots in time) goes to the restart strategy like any
    // later failure.
    let first = deployer.deploy(1, &initial, &coordinator);
    let mut ctx = JobMasterCtx {
        graph: record.graph.clone(),
        shared: record.shared.clone(),
        deployer: Box::new(deployer),
    };
    let result = job_master(&mut ctx, coordinator, first, &rx, started).map(|_| ());
    let error = result.err().and_then(|e| match &e {
        JobExecutionError::TaskFailed(t) if t.is_cancellation() => None,
        _ => Some(e.to_string()),
    });
    if let Some(e) = &error {
        tracing::warn!(job = %record.id, "job failed: {e}");
    }
    *record.end.lock() = Some((now_ms(), error));
}

/// Deploys attempts of a job onto the cluster's TaskExecutors.
pub(crate) struct ClusterDeployer {
    submission: JobSubmission,
    graph: JobGraph,
    rm: Arc<ResourceManager>,
    links: Arc<dyn TaskExecutorGateway>,
    tracker: TaskManagerTracker,
    /// The id of the last attempt deployed: every try gets a new one, so commands of a
    /// try given up (cancel, free slots) never hit the next.
    last_attempt: u64,
    slot_timeout: Duration,
    record: Arc<JobRecord>,
    allow_non_restored: bool,
}

/// Why deploying an attempt did not work.
enum DeployFailure {
    /// A taskmanager could not be reached: it is dropped and the attempt tried again.
    Unreachable(String, String),
    /// Anything else fails the attempt.
    Fatal(JobExecutionError),
}

impl From<JobExecutionError> for DeployFailure {
    fn from(e: JobExecutionError) -> Self {
        DeployFailure::Fatal(e)
    }
}

impl Deployer for ClusterDeployer {
    /// Deploys the attempt; a taskmanager that cannot be reached (it died and its heartbeat
    /// timeout has not passed yet) is removed and the attempt placed again on the others, until
    /// the slot request timeout.
    fn deploy(
        &mut self,
        attempt: u64,
        restore: &RestoreSpec,
        _coordinator: &CheckpointCoordinator,
    ) -> Result<Box<dyn DeployedAttempt>, JobExecutionError> {
        let deadline = Instant::now() + self.slot_timeout;
        loop {
            let id = attempt.max(self.last_attempt + 1);
            self.last_attempt = id;
            match self.try_deploy(id, restore) {
                Ok(a) => return Ok(Box::new(a)),
                Err(DeployFailure::Fatal(e)) => return Err(e),
                Err(DeployFailure::Unreachable(rid, e)) => {
                    tracing::warn!(job = %self.graph.job_id, "taskmanager {rid} is unreachable, dropping it: {e}");
                    // Every job with tasks there fails over, not only this one.
                    self.tracker
                        .lose(&rid, &format!("unreachable during deployment: {e}"));
                    if Instant::now() >= deadline {
                        return Err(JobExecutionError::Deployment(format!(
                            "taskmanager {rid} is unreachable: {e}"
                        )));
                    }
                }
            }
        }
    }
}

impl ClusterDeployer {
    fn try_deploy(
        &mut self,
        attempt: u64,
        restore: &RestoreSpec,
    ) -> Result<ClusterAttempt, DeployFailure> {
        let g = &self.graph;
        let job = g.job_id;
        let needed = g.required_slots();
        self.rm.release(job);
        {
            let mut t = self.record.tasks.lock();
            t.0 = attempt;
            t.1.clear();
            for (vi, v) in g.vertices.iter().enumerate() {
                for s in 0..v.parallelism {
                    t.1.insert(
                        SubtaskKey {
                            vertex: vi,
                            subtask: s,
                        },
                        (ExecutionState::Scheduled, None),
                    );
                }
            }
        }
        let record = &self.record;
        let cancelled = || {
            record
                .cancel_requested
                .load(std::sync::atomic::Ordering::Acquire)
        };
        let slots = self
            .rm
            .request_slots(job, needed, self.slot_timeout, &cancelled)
            .map_err(|e| match e {
                SlotRequestError::NotEnoughSlots {
                    needed, available, ..
                } => JobExecutionError::NotEnoughSlots { needed, available },
                SlotRequestError::Cancelled => JobExecutionError::TaskFailed(TaskError::new(
                    g.job_name.clone(),
                    0,
                    "-",
                    OperatorError::Cancelled,
                )),
            })?;
        let slot_of = slot_of_subtasks(g);
        let mut tms: Vec<String> = Vec::new();
        for (rid, _) in &slots {
            if !tms.contains(rid) {
                tms.push(rid.clone());
            }
        }
        let mut locations = Vec::new();
        for rid in &tms {
            let rec = self.rm.taskmanager(rid).ok_or_else(|| {
                JobExecutionError::Deployment(format!("taskmanager {rid} went away"))
            })?;
            locations.push(TaskManagerLocation {
                resource_id: rid.clone(),
                data_address: rec.data_address,
            });
        }
        let tm_index = |rid: &str| tms.iter().position(|t| t == rid).unwrap_or(0);
        let placement: Vec<Vec<usize>> = slot_of
            .iter()
            .map(|v| v.iter().map(|slot| tm_index(&slots[*slot].0)).collect())
            .collect();
        let restore_from = restore.checkpoint.as_ref().map(|c| c.location.dir.clone());
        let mut tasks_on: BTreeMap<String, Vec<SubtaskKey>> = BTreeMap::new();
        let mut sources: BTreeSet<String> = BTreeSet::new();
        for (vi, v) in g.vertices.iter().enumerate() {
            let is_source = g
                .operator(v.head)
                .is_some_and(|o| o.kind == eddy_core::jobgraph::OperatorKind::Source);
            for s in 0..v.parallelism {
                let rid = &tms[placement[vi][s]];
                tasks_on.entry(rid.clone()).or_default().push(SubtaskKey {
                    vertex: vi,
                    subtask: s,
                });
                if is_source {
                    sources.insert(rid.clone());
                }
            }
        }
        let attempt_handle = ClusterAttempt {
            job,
            attempt,
            total: g.vertices.iter().map(|v| v.parallelism).sum(),
            tasks_on: tasks_on.clone(),
            sources,
            stopped: BTreeSet::new(),
            links: self.links.clone(),
            rm: self.rm.clone(),
        };
        for (i, rid) in tms.iter().enumerate() {
            let mine = tasks_on.get(rid).cloned().unwrap_or_default();
            {
                let mut t = self.record.tasks.lock();
                for k in &mine {
                    t.1.insert(*k, (ExecutionState::Deploying, Some(rid.clone())));
                }
            }
            let d = TaskDeployment {
                submission: self.submission.clone(),
                attempt,
                tasks: mine.iter().map(|k| (k.vertex, k.subtask)).collect(),
                slots: slots
                    .iter()
                    .filter(|(r, _)| r == rid)
                    .map(|(_, s)| *s)
                    .collect(),
                placement: placement.clone(),
                taskmanagers: locations.clone(),
                restore_from: restore_from.clone(),
                allow_non_restored_state: self.allow_non_restored,
            };
            if let Err(e) = self.links.submit(rid, &d) {
                tracing::warn!(job = %job, "deploying to {rid} failed: {e}");
                for other in &tms[..i] {
                    self.links.cancel(other, job, attempt);
                    self.links.free(other, job, attempt);
                }
                self.rm.release(job);
                return Err(match e {
                    SubmitError::Unreachable(m) => DeployFailure::Unreachable(rid.clone(), m),
                    SubmitError::Refused(m) => DeployFailure::Fatal(JobExecutionError::Deployment(
                        format!("taskmanager {rid}: {m}"),
                    )),
                });
            }
        }
        Ok(attempt_handle)
    }
}

/// One attempt's tasks on the cluster.
struct ClusterAttempt {
    job: JobId,
    attempt: u64,
    total: usize,
    tasks_on: BTreeMap<String, Vec<SubtaskKey>>,
    sources: BTreeSet<String>,
    stopped: BTreeSet<SubtaskKey>,
    links: Arc<dyn TaskExecutorGateway>,
    rm: Arc<ResourceManager>,
}

impl DeployedAttempt for ClusterAttempt {
    fn attempt(&self) -> u64 {
        self.attempt
    }

    fn task_count(&self) -> usize {
        self.total
    }

    fn trigger_sources(&self, barrier: &CheckpointBarrier) {
        for rid in &self.sources {
            self.links.mail(
                rid,
                self.job,
                self.attempt,
                CheckpointMail::Trigger(barrier.clone()),
            );
        }
    }

    fn deliver_all(&self, mail: CheckpointMail) {
        for rid in self.tasks_on.keys() {
            self.links.mail(rid, self.job, self.attempt, mail.clone());
        }
    }

    fn cancel(&self) {
        for rid in self.tasks_on.keys() {
            self.links.cancel(rid, self.job, self.attempt);
        }
    }

    fn on_task_done(&mut self, task: Option<SubtaskKey>) {
        if let Some(t) = task {
            self.stopped.insert(t);
        }
    }

    fn on_taskmanager_lost(&mut self, resource_id: &str) -> usize {
        let Some(tasks) = self.tasks_on.get(resource_id) else {
            return 0;
        };
        let mut n = 0;
        for t in tasks {
            if self.stopped.insert(*t) {
                n += 1;
            }
        }
        n
    }

    fn all_stopped(&self) -> bool {
        self.stopped.len() >= self.total
    }

    fn finish(&mut self) {
        for rid in self.tasks_on.keys() {
            self.links.free(rid, self.job, self.attempt);
        }
        self.rm.release(self.job);
    }
}
