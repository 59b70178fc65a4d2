//! The Dispatcher (DESIGN §1): accepts jobs, runs one JobMaster per job, and answers what the
//! REST API asks (list, status, cancel, savepoints). A job is built here from its submission
//! (the binary's job registry), checked (configuration, `initialize_global`), fingerprinted,
//! and handed to a JobMaster thread running the shared supervision loop
//! ([`crate::jobmanager::job_master`]) with its [`Scheduler`]: slots from the ResourceManager,
//! tasks to TaskExecutors through their gateway (over RPC on a cluster, direct calls in the
//! MiniCluster, which hands its jobs over already built).

use crate::deployment::{build_checked, JobSubmission, ProgramBuildError, ProgramBuilder};
use crate::jobmanager::checkpoint::{
    CheckpointCoordinator, CheckpointStatsSnapshot, SavepointError,
};
use crate::jobmanager::job_master::{
    job_master, now_ms, prepare, DeployedAttempt, Deployer, JobExecutionError, JobExecutionResult,
    JobFailure, JobMasterCtx, JobMasterEvent, JobShared, JobStatus, PreparedJob, RestoreSpec,
};
use crate::jobmanager::job_result_store::JobResult;
use crate::jobmanager::resource_manager::ResourceManager;
use crate::jobmanager::scheduler::Scheduler;
use crate::taskmanager::gateway::TaskExecutorGateway;
use crate::taskmanager::task_executor::ExecutionState;
use eddy_core::cluster_config::ClusterConfig;
use eddy_core::jobgraph::JobGraph;
use eddy_core::JobId;
use eddy_runtime::checkpoint::{SnapshotKind, SubtaskKey};
use eddy_runtime::factory::JobProgram;
use eddy_runtime::TaskError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
pub(crate) type TaskTable = HashMap<SubtaskKey, (ExecutionState, Option<String>)>;

/// What the dispatcher knows of one job.
pub struct JobRecord {
    id: JobId,
    name: String,
    entry: String,
    start_ms: i64,
    graph: JobGraph,
    pub(crate) shared: Arc<Mutex<JobShared>>,
    events: Mutex<mpsc::Sender<JobMasterEvent>>,
    /// Set by a cancel: a JobMaster waiting for slots stops waiting.
    pub(crate) cancel_requested: std::sync::atomic::AtomicBool,
    end: Mutex<Option<(i64, Option<String>)>>,
    /// The current attempt and its tasks.
    pub(crate) tasks: Mutex<(u64, TaskTable)>,
}

impl JobRecord {
    pub(crate) fn send(&self, e: JobMasterEvent) {
        self.try_send(e);
    }

    /// Sends to the JobMaster; false once it has ended.
    pub(crate) fn try_send(&self, e: JobMasterEvent) -> bool {
        self.events.lock().send(e).is_ok()
    }

    /// Asks the JobMaster to cancel the job (also ending a wait for slots).
    pub(crate) fn request_cancel(&self) {
        self.cancel_requested
            .store(true, std::sync::atomic::Ordering::Release);
        self.send(JobMasterEvent::Cancel);
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
#[derive(Debug, thiserror::Error)]
pub enum SubmitRejection {
    /// The submission cannot be built into a job as it stands (unknown job, bad arguments or
    /// settings, an invalid program).
    #[error(transparent)]
    Build(#[from] ProgramBuildError),
    /// The job was built but could not start; the error says who caused it (a bad setting or
    /// savepoint, a taskmanager that cannot be reached, a bug).
    #[error(transparent)]
    Start(JobExecutionError),
    /// `execution.savepoint.path: latest` found the logical job finished in the JobResultStore:
    /// there is nothing to run.
    #[error(
        "job {} ('{}') already finished at {} ms since the epoch",
        .0.job_id, .0.job_name, .0.end_time_ms
    )]
    AlreadyFinished(Box<JobResult>),
}

/// Why the Dispatcher could not do what a client asked of a job: all caused by the client
/// (a job that does not exist, or is not in a state that allows it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DispatcherError {
    /// No job has this id.
    #[error("no job {0}")]
    UnknownJob(JobId),
    /// The job has ended; it cannot be cancelled any more.
    #[error("job {id} already ended ({status})")]
    JobEnded {
        /// The job.
        id: JobId,
        /// How it ended.
        status: JobStatus,
    },
    /// A savepoint needs a running job.
    #[error("job {id} is {status}, not RUNNING")]
    NotRunning {
        /// The job.
        id: JobId,
        /// Its status.
        status: JobStatus,
    },
    /// No savepoint operation has this trigger id.
    #[error("no savepoint operation {0}")]
    UnknownOperation(String),
}

/// The state of an asynchronous savepoint operation (REST: trigger, then poll).
#[derive(Clone, Debug)]
pub enum SavepointStatus {
    /// Still running.
    InProgress,
    /// Done: the savepoint's path.
    Completed(String),
    /// Failed: why.
    Failed(SavepointError),
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

    pub(crate) fn record(&self, id: JobId) -> Option<Arc<JobRecord>> {
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
        program
            .job_graph
            .config
            .validate()
            .map_err(|e| SubmitRejection::Start(JobExecutionError::InvalidJob(e)))?;
        check_cluster_checkpoint_storage(&program.job_graph).map_err(SubmitRejection::Start)?;
        let started = self
            .start_job(program, submission.clone(), None, Instant::now())
            .map_err(|e| match e {
                JobExecutionError::AlreadyFinished(r) => SubmitRejection::AlreadyFinished(r),
                e => SubmitRejection::Start(e),
            })?;
        Ok(started.record.id)
    }

    /// Starts a built job: checks it (configuration, `initialize_global`, the savepoint to
    /// start from), records it, and starts its
    /// JobMaster thread. A cluster's job then waits for slots and runs, and errors after this
    /// point show in its status. `in_process` (the MiniCluster: its taskmanagers are in this
    /// process and have this many slots) deploys the first attempt here, so a job that cannot
    /// start fails here, as `env.execute()` does in Flink.
    pub(crate) fn start_job(
        &self,
        program: JobProgram,
        submission: JobSubmission,
        in_process: Option<usize>,
        started: Instant,
    ) -> Result<StartedJob, JobExecutionError> {
        let g = program.job_graph.clone();
        g.config.validate()?;
        for op in &g.operators {
            let f = program.factories.get(&op.id).ok_or_else(|| {
                eddy_core::CoreError::InvalidGraph(format!("no code for operator '{}'", op.name))
            })?;
            f.initialize_global()
                .map_err(|cause| JobExecutionError::Initialization {
                    operator: op.name.clone(),
                    cause,
                })?;
        }
        let PreparedJob {
            eg,
            coordinator,
            initial,
        } = prepare(&g, in_process)?;
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
        let mut scheduler = Scheduler {
            allow_non_restored: g
                .config
                .savepoint_restore
                .as_ref()
                .is_some_and(|s| s.allow_non_restored_state),
            submission,
            graph: g.clone(),
            slots: eg.slots,
            rm: self.rm.clone(),
            links: self.links.clone(),
            tracker: self.taskmanager_tracker(),
            last_attempt: 0,
            slot_timeout: Duration::from_millis(self.config.slot_request_timeout_ms),
            record: record.clone(),
            in_process: in_process.is_some(),
        };
        // Listed before anything is deployed: task reports find the job from the first one.
        self.jobs.lock().push(record.clone());
        let first = match in_process {
            Some(_) => {
                let first = scheduler.deploy(1, &initial, &coordinator);
                if let Err(e) = &first {
                    shared.lock().set_status(JobStatus::Failed);
                    *record.end.lock() = Some((now_ms(), Some(e.to_string())));
                }
                Some(first?)
            }
            None => None,
        };
        let id = g.job_id;
        let r = record.clone();
        let master = std::thread::Builder::new()
            .name(format!("jobmaster-{}", &id.to_string()[..8]))
            .spawn(move || run_job(r, scheduler, coordinator, initial, first, rx, started))
            .map_err(|e| {
                JobExecutionError::JobMasterCrashed(format!("cannot start the job master: {e}"))
            })?;
        tracing::info!(job = %id, name = %g.job_name, "job submitted");
        Ok(StartedJob { record, master })
    }

    /// Cancels a job.
    pub fn cancel(&self, id: JobId) -> Result<(), DispatcherError> {
        let r = self.record(id).ok_or(DispatcherError::UnknownJob(id))?;
        let status = r.shared.lock().status;
        if status.is_terminal() {
            return Err(DispatcherError::JobEnded { id, status });
        }
        r.request_cancel();
        Ok(())
    }

    /// Starts a savepoint (`SnapshotKind::Savepoint`) or stop-with-savepoint; returns the
    /// trigger id to poll with [`Dispatcher::savepoint_status`].
    pub fn trigger_savepoint(
        &self,
        id: JobId,
        dir: Option<PathBuf>,
        kind: SnapshotKind,
    ) -> Result<String, DispatcherError> {
        let r = self.record(id).ok_or(DispatcherError::UnknownJob(id))?;
        let status = r.shared.lock().status;
        if status != JobStatus::Running {
            return Err(DispatcherError::NotRunning { id, status });
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
                Err(_) => SavepointStatus::Failed(SavepointError::NotNow(
                    "the job ended before the savepoint completed",
                )),
            };
            ops.lock().insert(t, status);
        });
        Ok(trigger)
    }

    /// The state of a savepoint operation.
    pub fn savepoint_status(&self, trigger: &str) -> Result<SavepointStatus, DispatcherError> {
        self.savepoints
            .lock()
            .get(trigger)
            .cloned()
            .ok_or_else(|| DispatcherError::UnknownOperation(trigger.to_string()))
    }

    /// A task changed state (reported by its TaskExecutor); `failure` is the error of a
    /// FAILED or CANCELED task.
    pub fn on_task_state(
        &self,
        job: JobId,
        attempt: u64,
        task: SubtaskKey,
        state: ExecutionState,
        failure: Option<TaskError>,
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
                task,
                result: Ok(()),
            }),
            ExecutionState::Canceled | ExecutionState::Failed => {
                let e = failure.unwrap_or_else(|| {
                    TaskError::new(
                        format!("task {}", task.vertex),
                        task.subtask,
                        format!("{}", task.subtask + 1),
                        if state == ExecutionState::Canceled {
                            eddy_runtime::OperatorError::Cancelled
                        } else {
                            eddy_runtime::OperatorError::Remote("unknown".into())
                        },
                    )
                });
                r.send(JobMasterEvent::TaskDone {
                    attempt,
                    task,
                    result: Err(e),
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
fn check_cluster_checkpoint_storage(g: &JobGraph) -> Result<(), JobExecutionError> {
    let cfg = &g.config.checkpoint;
    if !cfg.is_enabled() {
        return Ok(());
    }
    let Some(url) = cfg.storage.as_deref() else {
        return Err(JobExecutionError::CheckpointConfig(format!(
            "job '{}' enables checkpointing ({} = {} ms) but {} is not set: on a cluster, \
             checkpoints must go to a directory every jobmanager and taskmanager process \
             reaches (a shared file system), or the first failover would lose the state",
            g.job_name,
            eddy_core::config::CHECKPOINTING_INTERVAL,
            cfg.interval_ms.unwrap_or(0),
            eddy_core::config::CHECKPOINTS_DIR
        )));
    };
    let path = eddy_runtime::checkpoint::storage::path_of_url(url)
        .map_err(|e| JobExecutionError::CheckpointConfig(e.to_string()))?;
    if !path.is_absolute() {
        return Err(JobExecutionError::CheckpointConfig(format!(
            "{} = '{url}' is a relative path, which names a different directory in each \
             cluster process: give an absolute path or a file:/// URL",
            eddy_core::config::CHECKPOINTS_DIR
        )));
    }
    Ok(())
}

/// A job the dispatcher started: its record and its JobMaster thread, which returns how
/// the job ended.
pub(crate) struct StartedJob {
    pub(crate) record: Arc<JobRecord>,
    pub(crate) master: JoinHandle<Result<JobExecutionResult, JobExecutionError>>,
}

fn run_job(
    record: Arc<JobRecord>,
    mut scheduler: Scheduler,
    coordinator: CheckpointCoordinator,
    initial: RestoreSpec,
    first: Option<Box<dyn DeployedAttempt>>,
    rx: mpsc::Receiver<JobMasterEvent>,
    started: Instant,
) -> Result<JobExecutionResult, JobExecutionError> {
    // A first deployment that fails (no slots in time) goes to the restart strategy like any
    // later failure.
    let first = first
        .map(Ok)
        .unwrap_or_else(|| scheduler.deploy(1, &initial, &coordinator));
    drop(initial);
    let mut ctx = JobMasterCtx {
        graph: record.graph.clone(),
        shared: record.shared.clone(),
        deployer: Box::new(scheduler),
    };
    let result = job_master(&mut ctx, coordinator, first, &rx, started);
    let error = match &result {
        Err(JobExecutionError::TaskFailed(t)) if t.is_cancellation() => None,
        Err(e) => Some(e.to_string()),
        Ok(_) => None,
    };
    if let Some(e) = &error {
        tracing::warn!(job = %record.id, "job failed: {e}");
    }
    *record.end.lock() = Some((now_ms(), error));
    result
}
