//! The MiniCluster: the embedded default deployment (DESIGN §1), as Flink's `MiniCluster` is —
//! the real Dispatcher, ResourceManager and TaskExecutors of a cluster, started in this
//! process and talking through in-process gateways instead of gRPC. Every subtask runs on its
//! own OS thread of a TaskExecutor.
//!
//! `execute_async` starts the components for the job (`taskmanagers` TaskExecutors, each with
//! `slots_per_taskmanager` slots, or as many as the job needs when that is unset), registers
//! them with the ResourceManager, and hands the already built [`JobProgram`] to the
//! Dispatcher, which checks it, initializes its operators once (e.g. checks input paths), and
//! deploys the first attempt through the same scheduler a cluster uses: tasks whose producer
//! and consumer share a TaskExecutor exchange data over in-memory channels, tasks on two
//! TaskExecutors over their network stacks (on 127.0.0.1). Errors found before anything runs
//! come back from `execute_async`.
//!
//! It returns a [`JobClient`] through which the running job's watermarks and checkpoint
//! statistics can be read, savepoints taken, the job stopped or cancelled, or its end awaited;
//! `execute` is `execute_async` then [`JobClient::wait`]. The JobMaster supervises the tasks
//! and runs the checkpoint coordinator; when a task fails it cancels every task, asks the
//! restart strategy, and redeploys all tasks from the latest completed checkpoint (falling
//! back to older retained ones if one cannot be read), exactly as on a cluster.

use crate::deployment::{JobSubmission, ProgramBuildError, ProgramBuilder, TaskDeployment};
use crate::jobmanager::checkpoint::{CheckpointStatsSnapshot, SavepointError};
use crate::jobmanager::dispatcher::{Dispatcher, JobRecord, StartedJob};
use crate::jobmanager::gateways::{ResourceManagerGateway, TaskExecutorRegistration};
use crate::jobmanager::job_master::JobMasterEvent;
use crate::jobmanager::resource_manager::ResourceManager;
use crate::rest_api::JobDetailsInfo;
use crate::taskmanager::gateway::{SubmitError, TaskExecutorGateway};
use crate::taskmanager::task_executor::{
    ExecutionState, JobMasterGateway, TaskExecutor, TaskExecutorReport,
};
use eddy_core::cluster_config::ClusterConfig;
use eddy_core::JobId;
use eddy_network::{NetworkBufferPool, NetworkEnvironment};
use eddy_runtime::checkpoint::{
    CheckpointId, CheckpointMail, SnapshotKind, SubtaskKey, TaskAcknowledgement,
};
use eddy_runtime::error::panic_message;
use eddy_runtime::execution::PipelineExecutor;
use eddy_runtime::factory::JobProgram;
use eddy_runtime::TaskError;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{mpsc, Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

pub use crate::jobmanager::job_master::{
    JobExecutionError, JobExecutionResult, JobFailure, JobStatus,
};
pub use crate::taskmanager::task_executor::SubtaskWatermarks;

/// The embedded cluster's shape (Flink's `MiniClusterConfiguration`).
#[derive(Clone, Debug, Default)]
pub struct MiniCluster {
    /// TaskManagers to start (at least 1); `None`: the job's
    /// `minicluster.number-of-taskmanagers` (default 1).
    pub taskmanagers: Option<usize>,
    /// Task slots of each TaskManager (`taskmanager.numberOfTaskSlots`); `None` gives the job
    /// as many as it needs, spread over the TaskManagers (Flink's default for local
    /// execution).
    pub slots_per_taskmanager: Option<usize>,
}

/// The programs handed to this MiniCluster, by job id: its TaskExecutors build their tasks
/// from them, through the same [`ProgramBuilder`] seam a taskmanager process uses for its
/// binary's job registry.
#[derive(Default)]
struct InProcessPrograms {
    programs: Mutex<HashMap<JobId, JobProgram>>,
}

/// What submissions name as their entry: the program was handed over, not looked up.
const IN_PROCESS_ENTRY: &str = "<in-process>";

impl ProgramBuilder for InProcessPrograms {
    fn build(&self, submission: &JobSubmission) -> Result<JobProgram, ProgramBuildError> {
        self.programs
            .lock()
            .get(&submission.job_id)
            .cloned()
            .ok_or(ProgramBuildError::NotHandedOver(submission.job_id))
    }

    fn job_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The JobMaster side of the in-process gateways: task reports go straight to the
/// Dispatcher (set once it exists: it is built from the TaskExecutors' gateway).
#[derive(Default)]
struct InProcessJobMaster {
    dispatcher: OnceLock<Weak<Dispatcher>>,
}

impl InProcessJobMaster {
    fn dispatcher(&self) -> Option<Arc<Dispatcher>> {
        self.dispatcher.get().and_then(Weak::upgrade)
    }
}

impl JobMasterGateway for InProcessJobMaster {
    fn task_state(
        &self,
        job: JobId,
        attempt: u64,
        task: SubtaskKey,
        state: ExecutionState,
        failure: Option<TaskError>,
    ) {
        if let Some(d) = self.dispatcher() {
            d.on_task_state(job, attempt, task, state, failure);
        }
    }

    fn acknowledge(&self, job: JobId, _attempt: u64, ack: TaskAcknowledgement) {
        if let Some(d) = self.dispatcher() {
            d.to_job(job, JobMasterEvent::Ack(ack));
        }
    }

    fn decline(
        &self,
        job: JobId,
        _attempt: u64,
        id: CheckpointId,
        task: SubtaskKey,
        reason: String,
    ) {
        if let Some(d) = self.dispatcher() {
            d.to_job(job, JobMasterEvent::Decline { id, task, reason });
        }
    }

    fn source_finished(&self, job: JobId, attempt: u64, task: SubtaskKey) {
        if let Some(d) = self.dispatcher() {
            d.to_job(job, JobMasterEvent::SourceFinished { attempt, task });
        }
    }
}

/// The TaskExecutor side of the in-process gateways: direct calls, in the order the JobMaster
/// makes them.
struct InProcessTaskExecutors {
    executors: BTreeMap<String, Arc<TaskExecutor>>,
}

impl TaskExecutorGateway for InProcessTaskExecutors {
    fn submit(&self, rid: &str, d: &TaskDeployment) -> Result<(), SubmitError> {
        self.executors
            .get(rid)
            .ok_or_else(|| SubmitError::Unreachable(format!("no taskmanager {rid} in process")))?
            .submit(d.clone())
    }

    fn mail(&self, rid: &str, job: JobId, attempt: u64, mail: CheckpointMail) {
        if let Some(te) = self.executors.get(rid) {
            te.deliver(job, attempt, mail);
        }
    }

    fn cancel(&self, rid: &str, job: JobId, attempt: u64) {
        if let Some(te) = self.executors.get(rid) {
            te.cancel(job, attempt);
        }
    }

    fn free(&self, rid: &str, job: JobId, attempt: u64) {
        if let Some(te) = self.executors.get(rid) {
            te.free_slots(job, attempt);
        }
    }

    /// In-process TaskExecutors live as long as the MiniCluster.
    fn remove(&self, _rid: &str) {}
}

/// The started components; stopped when the last [`JobClient`] using them is gone.
struct Components {
    dispatcher: Arc<Dispatcher>,
    executors: Vec<Arc<TaskExecutor>>,
    programs: Arc<InProcessPrograms>,
    /// Dropped to stop the heartbeat thread.
    stop_heartbeats: Option<mpsc::Sender<()>>,
    heartbeats: Option<JoinHandle<()>>,
}

/// How often in-process TaskExecutors report their slots, memory and traffic to the
/// ResourceManager (what its REST views show); nothing is lost in-process, so no timeout.
const IN_PROCESS_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

impl Components {
    /// Starts `taskmanagers` TaskExecutors of `slots` slots each (network buffers of
    /// `segment_size` bytes), a ResourceManager they are registered with, and a Dispatcher.
    fn start(
        taskmanagers: usize,
        slots: usize,
        segment_size: usize,
    ) -> Result<Self, JobExecutionError> {
        let config = ClusterConfig {
            slots,
            ..ClusterConfig::default()
        };
        let programs = Arc::new(InProcessPrograms::default());
        let job_master = Arc::new(InProcessJobMaster::default());
        let rm = Arc::new(ResourceManager::new());
        let mut executors = Vec::new();
        for i in 0..taskmanagers {
            let pool =
                NetworkBufferPool::new(config.network_buffer_count(segment_size), segment_size);
            let net = NetworkEnvironment::start("127.0.0.1:0", pool).map_err(|e| {
                JobExecutionError::Deployment(format!(
                    "cannot start the network stack of in-process taskmanager {i}: {e}"
                ))
            })?;
            let te = Arc::new(TaskExecutor::new(
                format!("minicluster-taskmanager-{i}"),
                slots,
                config.managed_memory_per_slot(),
                Arc::new(net),
                programs.clone(),
                job_master.clone(),
            ));
            executors.push(te);
        }
        let links = Arc::new(InProcessTaskExecutors {
            executors: executors
                .iter()
                .map(|te| (te.resource_id().to_string(), te.clone()))
                .collect(),
        });
        let dispatcher = Arc::new(Dispatcher::new(
            rm,
            links,
            programs.clone(),
            config,
            BTreeMap::new(),
        ));
        let _ = job_master.dispatcher.set(Arc::downgrade(&dispatcher));
        // The TaskExecutors register and report through the ResourceManager's gateway, as a
        // taskmanager process does over gRPC.
        let rm: Arc<dyn ResourceManagerGateway> = dispatcher.clone();
        for te in &executors {
            rm.register_task_executor(TaskExecutorRegistration {
                resource_id: te.resource_id().to_string(),
                rpc_address: "in-process".into(),
                data_address: te.network().address().to_string(),
                report: te.report(),
            });
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let tes = executors.clone();
        let heartbeats = std::thread::Builder::new()
            .name("minicluster-heartbeats".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(IN_PROCESS_HEARTBEAT)
                {
                    for te in &tes {
                        rm.heartbeat_from_task_executor(te.resource_id(), te.report());
                    }
                }
            })
            .map_err(|e| {
                JobExecutionError::Deployment(format!("cannot start the heartbeat thread: {e}"))
            })?;
        Ok(Components {
            dispatcher,
            executors,
            programs,
            stop_heartbeats: Some(stop),
            heartbeats: Some(heartbeats),
        })
    }
}

impl Drop for Components {
    fn drop(&mut self) {
        drop(self.stop_heartbeats.take());
        if let Some(h) = self.heartbeats.take() {
            let _ = h.join();
        }
        for te in &self.executors {
            te.cancel_all();
            te.network().begin_shutdown();
        }
        for te in &self.executors {
            te.network().shutdown();
        }
    }
}

/// A handle to a job running on the MiniCluster (Flink's `JobClient`). Dropping it without
/// [`JobClient::wait`] cancels the job: its threads live in this process, and nothing could
/// join them any more.
pub struct JobClient {
    job_id: JobId,
    job_name: String,
    record: Arc<JobRecord>,
    cluster: Arc<Components>,
    master: Option<JoinHandle<Result<JobExecutionResult, JobExecutionError>>>,
    /// Services kept alive as long as this client (a REST server of the MiniCluster);
    /// dropped after the job ended or was cancelled.
    attachments: Vec<Box<dyn Send>>,
}

impl std::fmt::Debug for JobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobClient")
            .field("job_id", &self.job_id)
            .field("job_name", &self.job_name)
            .finish_non_exhaustive()
    }
}

impl JobClient {
    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// The current input and output watermark of every subtask, vertex by vertex (after the
    /// job ended, the final ones).
    pub fn watermarks(&self) -> Vec<SubtaskWatermarks> {
        let mut all: Vec<(SubtaskKey, SubtaskWatermarks)> = self
            .cluster
            .executors
            .iter()
            .flat_map(|te| te.watermarks(self.job_id))
            .collect();
        all.sort_by_key(|(k, _)| (k.vertex, k.subtask));
        all.into_iter().map(|(_, w)| w).collect()
    }

    /// The MiniCluster's Dispatcher, for serving its REST API (Flink's web UI of a local
    /// environment).
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.cluster.dispatcher
    }

    /// The slot report, memory model and network traffic of each of the MiniCluster's
    /// TaskManagers.
    pub fn taskmanagers(&self) -> Vec<TaskExecutorReport> {
        self.cluster
            .executors
            .iter()
            .map(|te| te.report())
            .collect()
    }

    /// The job as `GET /jobs/{id}` shows it: status and its history, vertices with their
    /// subtasks, failures, checkpoint counts.
    pub fn details(&self) -> Option<JobDetailsInfo> {
        self.cluster.dispatcher.job_details_info(self.job_id)
    }

    /// Checkpoint counts, history and latest checkpoints.
    pub fn checkpoint_stats(&self) -> CheckpointStatsSnapshot {
        self.record.shared.lock().stats.clone()
    }

    /// Every failure of the job so far, oldest first.
    pub fn failures(&self) -> Vec<JobFailure> {
        self.record.shared.lock().failures.clone()
    }

    /// Cancels the job; [`JobClient::wait`] then returns the cancellation.
    pub fn cancel(&self) {
        self.record.request_cancel();
    }

    fn savepoint(&self, kind: SnapshotKind, dir: Option<&Path>) -> Result<String, SavepointError> {
        let (tx, rx) = mpsc::channel();
        if !self.record.try_send(JobMasterEvent::Savepoint {
            kind,
            dir: dir.map(Path::to_path_buf),
            reply: tx,
        }) {
            return Err(SavepointError::NotNow("the job has ended"));
        }
        rx.recv()
            .map_err(|_| SavepointError::NotNow("the job ended before the savepoint completed"))?
    }

    /// Takes a savepoint into a new directory under `dir` (or `state.savepoints.dir`) and
    /// returns its path; the job keeps running.
    pub fn trigger_savepoint(&self, dir: Option<&Path>) -> Result<String, SavepointError> {
        self.savepoint(SnapshotKind::Savepoint, dir)
    }

    /// Stop-with-savepoint: sources stop (with `drain`, after emitting the final watermark so
    /// every window fires), the savepoint is taken, sinks commit, the job finishes. Returns the
    /// savepoint's path; [`JobClient::wait`] then returns the finished job.
    pub fn stop_with_savepoint(
        &self,
        dir: Option<&Path>,
        drain: bool,
    ) -> Result<String, SavepointError> {
        self.savepoint(SnapshotKind::SavepointTerminate { drain }, dir)
    }

    /// Keeps `service` (e.g. the REST server of this MiniCluster's Dispatcher) alive as long
    /// as this client: it is dropped after the job ended or was cancelled.
    pub fn attach(&mut self, service: Box<dyn Send>) {
        self.attachments.push(service);
    }

    /// Waits for the job to end.
    pub fn wait(&mut self) -> Result<JobExecutionResult, JobExecutionError> {
        let Some(h) = self.master.take() else {
            return Err(JobExecutionError::JobMasterCrashed("already waited".into()));
        };
        match h.join() {
            Ok(r) => r,
            Err(p) => Err(JobExecutionError::JobMasterCrashed(panic_message(
                p.as_ref(),
            ))),
        }
    }
}

impl Drop for JobClient {
    fn drop(&mut self) {
        if let Some(h) = self.master.take() {
            self.record.request_cancel();
            let _ = h.join();
        }
        self.cluster.programs.programs.lock().remove(&self.job_id);
    }
}

impl MiniCluster {
    /// A MiniCluster of `n` TaskManagers (at least 1), each with as many slots as a job
    /// needs spread over them.
    pub fn with_taskmanagers(n: usize) -> Self {
        MiniCluster {
            taskmanagers: Some(n.max(1)),
            slots_per_taskmanager: None,
        }
    }

    /// Runs a job to completion.
    pub fn execute(&self, program: JobProgram) -> Result<JobExecutionResult, JobExecutionError> {
        self.execute_async(program)?.wait()
    }

    /// Deploys a job and returns as soon as its tasks have started. Errors found before
    /// anything runs (invalid job, initialization, slots, checkpoint settings, an unusable
    /// savepoint, a task that cannot be built) are returned here.
    pub fn execute_async(&self, program: JobProgram) -> Result<JobClient, JobExecutionError> {
        let started = Instant::now();
        let g = &program.job_graph;
        let taskmanagers = self
            .taskmanagers
            .or(g.config.minicluster_taskmanagers)
            .unwrap_or(1)
            .max(1);
        let slots = self
            .slots_per_taskmanager
            .unwrap_or_else(|| crate::slot::shared_slots(g).len().div_ceil(taskmanagers))
            .max(1);
        let cluster = Arc::new(Components::start(
            taskmanagers,
            slots,
            g.config.segment_size,
        )?);
        let job_id = g.job_id;
        let job_name = g.job_name.clone();
        let submission = JobSubmission {
            job_id,
            entry: IN_PROCESS_ENTRY.into(),
            args: Vec::new(),
            settings: BTreeMap::new(),
            fingerprint: String::new(),
        };
        cluster
            .programs
            .programs
            .lock()
            .insert(job_id, program.clone());
        let StartedJob { record, master } = cluster.dispatcher.start_job(
            program,
            submission,
            Some(taskmanagers * slots),
            started,
        )?;
        Ok(JobClient {
            job_id,
            job_name,
            record,
            cluster,
            master: Some(master),
            attachments: Vec::new(),
        })
    }
}

impl PipelineExecutor for MiniCluster {
    type Client = JobClient;
    type Error = JobExecutionError;

    fn execute(&self, program: JobProgram) -> Result<JobClient, JobExecutionError> {
        self.execute_async(program)
    }
}
