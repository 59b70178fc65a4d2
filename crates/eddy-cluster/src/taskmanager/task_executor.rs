//! The TaskExecutor: a taskmanager's slots and tasks (DESIGN §1, §3). It receives
//! [`TaskDeployment`]s, rebuilds the job's program, wires each subtask's inputs and outputs —
//! in-memory channels when producer and consumer run here, remote channels of the network
//! stack otherwise — and runs every subtask on its own thread, reporting task states and
//! checkpoint acknowledgements to the JobMaster through a [`JobMasterGateway`].
//!
//! Transport-free: the gRPC service in [`crate::taskmanager::rpc_services`] calls into it, and the gateway it reports
//! to is an RPC client there. A job's tasks of an older attempt are cancelled before a newer
//! attempt is deployed, and channels carry the attempt, so data of attempts never mixes.

use crate::deployment::{build_checked, ProgramBuilder, SubtaskStates, TaskDeployment};
use crate::jobmanager::checkpoint::restore::{self, RestoreError};
use crate::jobmanager::execution_graph::ExecutionGraph;
use crate::jobmanager::job_master::{operator_files, source_tasks};
use crate::slot::AllocatedSlot;
use crate::taskmanager::gateway::SubmitError;
use crate::taskmanager::launch;
use eddy_core::jobgraph::JobGraph;
use eddy_core::JobId;
use eddy_network::{ChannelId, NetworkEnvironment};
use eddy_runtime::channel::Erased;
use eddy_runtime::channel::{CancelToken, OutputMetrics};
use eddy_runtime::checkpoint::storage::storage_for_url;
use eddy_runtime::checkpoint::{
    CheckpointId, CheckpointMail, CheckpointResponder, SubtaskKey, TaskAcknowledgement,
    TaskCheckpointing, TaskMailbox, Uploader,
};
use eddy_runtime::environment::WatermarkGauge;
use eddy_runtime::factory::ChainContext;
use eddy_runtime::remote::CancelOutput;
use eddy_runtime::waker::TaskWaker;
use eddy_runtime::TaskError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A task's state, with Flink's names (`ExecutionState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionState {
    /// In the ExecutionGraph, not yet scheduled.
    Created,
    /// Waiting for its slot.
    Scheduled,
    /// Sent to its taskmanager.
    Deploying,
    /// Restoring state and opening operators.
    Initializing,
    /// Processing.
    Running,
    /// Done.
    Finished,
    /// Being cancelled.
    Canceling,
    /// Cancelled.
    Canceled,
    /// Failed.
    Failed,
}

impl std::fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutionState::Created => "CREATED",
            ExecutionState::Scheduled => "SCHEDULED",
            ExecutionState::Deploying => "DEPLOYING",
            ExecutionState::Initializing => "INITIALIZING",
            ExecutionState::Running => "RUNNING",
            ExecutionState::Finished => "FINISHED",
            ExecutionState::Canceling => "CANCELING",
            ExecutionState::Canceled => "CANCELED",
            ExecutionState::Failed => "FAILED",
        })
    }
}

impl ExecutionState {
    /// Whether the task stopped.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ExecutionState::Finished | ExecutionState::Canceled | ExecutionState::Failed
        )
    }
}

/// How a task's end is reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailureReport {
    /// The operator that failed.
    pub operator: String,
    /// `i/p`.
    pub subtask_display: String,
    /// The cause.
    pub cause: String,
}

impl From<&TaskError> for TaskFailureReport {
    fn from(e: &TaskError) -> Self {
        TaskFailureReport {
            operator: e.operator.clone(),
            subtask_display: e.subtask_display.clone(),
            cause: e.cause.to_string(),
        }
    }
}

/// The current watermarks of one subtask of a running job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtaskWatermarks {
    /// The task (JobGraph vertex) name, e.g. `Source: Collection Source -> Map`.
    pub task: String,
    /// 0-based subtask index.
    pub subtask: usize,
    /// The watermark the task last forwarded into its chain (`i64::MIN` before any, and
    /// always for sources).
    pub input_watermark: i64,
    /// The watermark the task's chain last emitted (`i64::MIN` before any).
    pub output_watermark: i64,
}

/// Where a TaskExecutor reports to (the JobMaster of each job). Calls never block on the
/// JobMaster.
pub trait JobMasterGateway: Send + Sync {
    /// A task changed state; `failure` is set for FAILED (and for CANCELED, as the echo). An
    /// in-process JobMaster gets the error as is; over RPC it travels as a
    /// [`TaskFailureReport`].
    fn task_state(
        &self,
        job: JobId,
        attempt: u64,
        task: SubtaskKey,
        state: ExecutionState,
        failure: Option<TaskError>,
    );
    /// A checkpoint acknowledgement.
    fn acknowledge(&self, job: JobId, attempt: u64, ack: TaskAcknowledgement);
    /// A declined checkpoint.
    fn decline(&self, job: JobId, attempt: u64, id: CheckpointId, task: SubtaskKey, reason: String);
    /// A source read all its input.
    fn source_finished(&self, job: JobId, attempt: u64, task: SubtaskKey);
}

struct Responder {
    gateway: Arc<dyn JobMasterGateway>,
    job: JobId,
    attempt: u64,
}

impl CheckpointResponder for Responder {
    fn acknowledge(&self, ack: TaskAcknowledgement) {
        self.gateway.acknowledge(self.job, self.attempt, ack);
    }
    fn decline(&self, id: CheckpointId, task: SubtaskKey, reason: String) {
        self.gateway
            .decline(self.job, self.attempt, id, task, reason);
    }
    fn source_finished(&self, task: SubtaskKey) {
        self.gateway.source_finished(self.job, self.attempt, task);
    }
    fn task_running(&self, task: SubtaskKey) {
        self.gateway
            .task_state(self.job, self.attempt, task, ExecutionState::Running, None);
    }
}

/// One job's tasks on this taskmanager (one attempt).
struct JobTasks {
    attempt: u64,
    cancel: Arc<CancelToken>,
    mailboxes: Vec<(SubtaskKey, Arc<TaskMailbox>)>,
    /// Per task: its name and watermark gauges.
    watermarks: Vec<TaskWatermarkGauge>,
    sources: BTreeSet<SubtaskKey>,
    handles: Vec<JoinHandle<()>>,
    slots: Vec<AllocatedSlot>,
    uploader: Arc<Uploader>,
    /// The newest checkpoint trigger delivered.
    last_trigger: Option<CheckpointId>,
}

/// What the TaskExecutor reports about itself (slot report and memory model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskExecutorReport {
    /// Its resource id.
    pub resource_id: String,
    /// Per slot: the job it runs, if any.
    pub slots: Vec<Option<JobId>>,
    /// Network buffers in the pool.
    pub network_buffers_total: usize,
    /// Network buffers not in use.
    pub network_buffers_available: usize,
    /// Bytes per network buffer.
    pub network_segment_size: usize,
    /// Managed memory per slot, in bytes.
    pub managed_memory_per_slot: u64,
    /// Resident set size of the process, in bytes.
    pub rss_bytes: u64,
    /// Running task threads.
    pub running_tasks: usize,
    /// Bytes received and sent by the network stack.
    pub network_bytes: (u64, u64),
}

/// A taskmanager's slots and tasks.
pub struct TaskExecutor {
    resource_id: String,
    slots: usize,
    managed_per_slot: u64,
    net: Arc<NetworkEnvironment>,
    builder: Arc<dyn ProgramBuilder>,
    gateway: Arc<dyn JobMasterGateway>,
    jobs: Mutex<HashMap<JobId, JobTasks>>,
    /// The final watermarks of the last few jobs whose tasks are gone, newest last (what a
    /// client asking after the end reads).
    ended: Mutex<std::collections::VecDeque<(JobId, Vec<TaskWatermarkGauge>)>>,
}

/// A task's watermark gauges, with its key and name.
type TaskWatermarkGauge = (SubtaskKey, String, Arc<WatermarkGauge>);

/// How many ended jobs' final watermarks a TaskExecutor keeps.
const ENDED_JOBS_KEPT: usize = 16;

impl TaskExecutor {
    /// A TaskExecutor with `slots` slots, moving data through `net`.
    pub fn new(
        resource_id: String,
        slots: usize,
        managed_per_slot: u64,
        net: Arc<NetworkEnvironment>,
        builder: Arc<dyn ProgramBuilder>,
        gateway: Arc<dyn JobMasterGateway>,
    ) -> Self {
        TaskExecutor {
            resource_id,
            slots,
            managed_per_slot,
            net,
            builder,
            gateway,
            jobs: Mutex::new(HashMap::new()),
            ended: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Its resource id.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// Its network stack.
    pub fn network(&self) -> &Arc<NetworkEnvironment> {
        &self.net
    }

    /// The slot report and memory model.
    pub fn report(&self) -> TaskExecutorReport {
        let mut slots = vec![None; self.slots];
        let mut running = 0;
        for (job, t) in self.jobs.lock().iter() {
            for s in &t.slots {
                if let Some(slot) = slots.get_mut(s.id.index) {
                    *slot = Some(*job);
                }
            }
            running += t.handles.iter().filter(|h| !h.is_finished()).count();
        }
        let pool = self.net.pool();
        TaskExecutorReport {
            resource_id: self.resource_id.clone(),
            slots,
            network_buffers_total: pool.total(),
            network_buffers_available: pool.available(),
            network_segment_size: pool.segment_size(),
            managed_memory_per_slot: self.managed_per_slot,
            rss_bytes: rss_bytes(),
            running_tasks: running,
            network_bytes: self.net.bytes_transferred(),
        }
    }

    /// The current watermarks of the job's tasks here, by vertex and subtask; once its tasks
    /// are gone, their final ones (for the last [`ENDED_JOBS_KEPT`] jobs).
    pub fn watermarks(&self, job: JobId) -> Vec<(SubtaskKey, SubtaskWatermarks)> {
        let read = |gauges: &[TaskWatermarkGauge]| -> Vec<(SubtaskKey, SubtaskWatermarks)> {
            gauges
                .iter()
                .map(|(key, task, g)| {
                    (
                        *key,
                        SubtaskWatermarks {
                            task: task.clone(),
                            subtask: key.subtask,
                            input_watermark: g.input_watermark(),
                            output_watermark: g.output_watermark(),
                        },
                    )
                })
                .collect()
        };
        if let Some(t) = self.jobs.lock().get(&job) {
            return read(&t.watermarks);
        }
        self.ended
            .lock()
            .iter()
            .rev()
            .find(|(j, _)| *j == job)
            .map(|(_, g)| read(g))
            .unwrap_or_default()
    }

    /// Deploys and starts the tasks of `d`. Fails (starting nothing) if the binary builds a
    /// different job graph, the slots are taken, or a channel or task cannot be set up.
    pub fn submit(&self, d: TaskDeployment) -> Result<(), SubmitError> {
        let job = d.submission.job_id;
        let refuse = SubmitError::Refused;
        if let Some(newer) = self
            .jobs
            .lock()
            .get(&job)
            .map(|t| t.attempt)
            .filter(|a| *a >= d.attempt)
        {
            return Err(refuse(format!(
                "stale deployment: attempt {} of job {job}, this taskmanager already ran attempt \
                 {newer}",
                d.attempt
            )));
        }
        // An older attempt of the job still here is cancelled first.
        self.cancel(job, d.attempt - 1);
        if !self.reclaim(job, Duration::from_secs(30)) {
            return Err(refuse(format!(
                "tasks of an older attempt of job {job} are still running after 30 s"
            )));
        }
        for a in &d.slots {
            let s = a.id.index;
            if a.id.resource_id != self.resource_id || s >= self.slots {
                return Err(refuse(format!(
                    "slot {} does not exist on taskmanager {} ({} slots)",
                    a.id, self.resource_id, self.slots
                )));
            }
            // A job that ended may hold the slot until its FreeSlots arrives: once its tasks
            // stopped, the slot is free.
            let holder = self
                .jobs
                .lock()
                .iter()
                .find(|(j, t)| **j != job && t.slots.iter().any(|b| b.id.index == s))
                .map(|(j, _)| *j);
            if let Some(other) = holder {
                if !self.reclaim(other, Duration::from_secs(10)) {
                    return Err(refuse(format!(
                        "slot {s} of taskmanager {} is taken by job {other}",
                        self.resource_id
                    )));
                }
            }
        }
        let program = build_checked(self.builder.as_ref(), &d.submission)
            .map_err(|e| refuse(e.to_string()))?;
        let tasks = self.build_and_start(&d, &program)?;
        self.jobs.lock().insert(job, tasks);
        Ok(())
    }

    fn build_and_start(
        &self,
        d: &TaskDeployment,
        program: &eddy_runtime::factory::JobProgram,
    ) -> Result<JobTasks, SubmitError> {
        let refuse = SubmitError::Refused;
        let g = &program.job_graph;
        let job = g.job_id;
        let eg = ExecutionGraph::build(g).map_err(|e| refuse(e.to_string()))?;
        let me = d
            .taskmanagers
            .iter()
            .position(|t| t.resource_id == self.resource_id)
            .ok_or_else(|| {
                refuse(format!(
                    "taskmanager {} is not in the deployment",
                    self.resource_id
                ))
            })?;
        let location = |vertex: usize, subtask: usize| -> Result<usize, SubmitError> {
            d.placement
                .get(vertex)
                .and_then(|v| v.get(subtask))
                .copied()
                .ok_or_else(|| {
                    refuse(format!(
                        "no placement for subtask {subtask} of vertex {vertex}"
                    ))
                })
        };
        let vertex_of = |op| g.vertices.iter().position(|v| v.operators.contains(&op));
        let mine = d.tasks();
        let restore = self
            .restore_state(d, g)
            .map_err(|e| refuse(e.to_string()))?;
        let storage = match &d.in_process {
            Some(h) => h.storage.clone(),
            None => storage_for_url(g.config.checkpoint.storage.as_deref())
                .map_err(|e| refuse(format!("checkpoint storage: {e}")))?,
        };
        let files = operator_files(g);
        let sources = source_tasks(g, &eg);
        let cancel = CancelToken::new();
        let capacity = g.config.buffers_per_channel;
        let responder: Arc<dyn CheckpointResponder> = Arc::new(Responder {
            gateway: self.gateway.clone(),
            job,
            attempt: d.attempt,
        });
        let uploader = Uploader::new(2);
        let channel_id = |edge: usize, producer: usize, consumer: usize| ChannelId {
            job: job.0,
            attempt: d.attempt,
            edge: edge as u32,
            producer: producer as u32,
            consumer: consumer as u32,
        };
        // Everything set up so far is torn down when a step fails.
        let fail = |e: SubmitError| {
            cancel.cancel();
            self.net.release(job.0, d.attempt);
            uploader.shutdown();
            e
        };
        let no_code = |what: String| fail(refuse(format!("no code for {what}")));
        // Gates of every local subtask first; local producers then find their writers, remote
        // producers are asked for their channels.
        let mut local_writers: HashMap<(usize, usize), Vec<(usize, Erased)>> = HashMap::new();
        let mut built: Vec<(usize, Vec<Option<Erased>>, Arc<TaskWaker>)> = Vec::new();
        for (i, st) in eg.subtasks.iter().enumerate() {
            if !mine.contains(&(st.vertex, st.subtask)) {
                continue;
            }
            let v = &g.vertices[st.vertex];
            let factory = program
                .factories
                .get(&v.head)
                .ok_or_else(|| no_code(format!("operator {}", v.head)))?;
            let waker = TaskWaker::new();
            cancel.register_waker(waker.clone());
            let mut gates = Vec::new();
            for (input, chans) in st.input_channels.iter().enumerate() {
                let eg = factory
                    .create_input_gate(input, chans.len(), capacity, waker.clone())
                    .map_err(|e| fail(SubmitError::Task(e)))?;
                cancel.register_gate(eg.cancel);
                let codec = factory
                    .input_codec(input)
                    .map_err(|e| fail(SubmitError::Task(e)))?;
                for (ch, w) in chans.iter().zip(eg.writers) {
                    let up = vertex_of(g.edges[ch.edge].source)
                        .ok_or_else(|| fail(refuse("edge source in no vertex".into())))?;
                    let at = location(up, ch.producer).map_err(fail)?;
                    if at == me {
                        local_writers
                            .entry((ch.edge, ch.producer))
                            .or_default()
                            .push((ch.consumer, w));
                    } else {
                        (codec.connect_inbound)(
                            w,
                            &self.net,
                            channel_id(ch.edge, ch.producer, ch.consumer),
                            &d.taskmanagers[at].data_address,
                            capacity as u32,
                        )
                        .map_err(|e| fail(refuse(e.to_string())))?;
                    }
                }
                gates.push(Some(eg.gate));
            }
            built.push((i, gates, waker));
        }
        let mut tasks = Vec::new();
        let mut mailboxes = Vec::new();
        let mut my_sources = BTreeSet::new();
        for (i, gates, waker) in built {
            let st = &eg.subtasks[i];
            let v = &g.vertices[st.vertex];
            let mut my_writers: HashMap<usize, Vec<Erased>> = HashMap::new();
            for (ei, e) in g.edges.iter().enumerate() {
                if e.chained || !v.operators.contains(&e.source) {
                    continue;
                }
                let down = vertex_of(e.target)
                    .ok_or_else(|| fail(refuse("edge target in no vertex".into())))?;
                let consumer_factory = program
                    .factories
                    .get(&g.vertices[down].head)
                    .ok_or_else(|| no_code(format!("edge {ei}")))?;
                let codec = consumer_factory
                    .input_codec(e.target_input)
                    .map_err(|e| fail(SubmitError::Task(e)))?;
                let mut consumers: Vec<usize> = eg
                    .subtasks
                    .iter()
                    .filter(|c| c.vertex == down)
                    .flat_map(|c| c.input_channels.iter().flatten())
                    .filter(|ch| ch.edge == ei && ch.producer == st.subtask)
                    .map(|ch| ch.consumer)
                    .collect();
                consumers.sort_unstable();
                let mut local = local_writers.remove(&(ei, st.subtask)).unwrap_or_default();
                let mut ws = Vec::with_capacity(consumers.len());
                for c in consumers {
                    let at = location(down, c).map_err(fail)?;
                    if at == me {
                        let pos = local
                            .iter()
                            .position(|(lc, _)| *lc == c)
                            .ok_or_else(|| fail(refuse(format!("no local channel to {c}"))))?;
                        ws.push(local.swap_remove(pos).1);
                    } else {
                        let out = self.net.output_channel(channel_id(ei, st.subtask, c));
                        cancel.register_gate(Arc::new(CancelOutput(out.clone())));
                        ws.push((codec.writer)(out, self.net.pool().clone()));
                    }
                }
                my_writers.insert(ei, ws);
            }
            let mut ctx = ChainContext {
                program,
                subtask: st.subtask,
                gates,
                writers: my_writers,
                metrics: Arc::new(OutputMetrics::default()),
            };
            let factory = program
                .factories
                .get(&v.head)
                .ok_or_else(|| no_code(format!("operator {}", v.head)))?;
            let task = factory
                .build_task(&mut ctx, v.head)
                .map_err(|e| fail(SubmitError::Task(e)))?;
            let key = SubtaskKey {
                vertex: st.vertex,
                subtask: st.subtask,
            };
            let mailbox = Arc::new(TaskMailbox::new(waker.clone()));
            mailboxes.push((key, mailbox.clone()));
            if sources.contains(&key) {
                my_sources.insert(key);
            }
            let checkpointing = Arc::new(TaskCheckpointing {
                mode: g.config.checkpoint.mode,
                task: key,
                job_id: job,
                responder: responder.clone(),
                storage: storage.clone(),
                uploader: uploader.clone(),
                mailbox,
                operator_files: files.clone(),
                periodic: g.config.checkpoint.is_enabled(),
            });
            let env = launch::task_env(
                g,
                v,
                st.subtask,
                &cancel,
                checkpointing,
                restore.get(&(st.vertex, st.subtask)).cloned(),
            );
            tasks.push((key, task, env, waker));
        }
        let watermarks = tasks
            .iter()
            .map(|(key, _, env, _)| (*key, env.task_name.clone(), env.watermarks.clone()))
            .collect();
        let mut handles = Vec::new();
        for (key, mut task, env, waker) in tasks {
            let gateway = self.gateway.clone();
            let attempt = d.attempt;
            let name = launch::task_name(&env);
            gateway.task_state(job, attempt, key, ExecutionState::Initializing, None);
            let h = std::thread::Builder::new()
                .name(name.chars().take(60).collect())
                .spawn(move || {
                    let (state, failure) = match launch::run_guarded(task.as_mut(), &env, &waker) {
                        Ok(()) => (ExecutionState::Finished, None),
                        Err(e) if e.is_cancellation() => (ExecutionState::Canceled, Some(e)),
                        Err(e) => (ExecutionState::Failed, Some(e)),
                    };
                    gateway.task_state(job, attempt, key, state, failure);
                })
                .map_err(|e| fail(refuse(format!("could not start a task thread: {e}"))));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The tasks already started stop (cancelled) before the refusal returns.
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        tracing::info!(job = %job, attempt = d.attempt, tasks = handles.len(), "deployed tasks");
        Ok(JobTasks {
            attempt: d.attempt,
            cancel,
            mailboxes,
            watermarks,
            sources: my_sources,
            handles,
            slots: d.slots.clone(),
            uploader,
            last_trigger: None,
        })
    }

    /// The state of this taskmanager's tasks: handed over by an in-process jobmanager, else
    /// read from the checkpoint to restore from.
    fn restore_state(
        &self,
        d: &TaskDeployment,
        g: &JobGraph,
    ) -> Result<Arc<SubtaskStates>, RestoreError> {
        if let Some(h) = &d.in_process {
            return Ok(h.states.clone());
        }
        let Some(path) = &d.restore_from else {
            return Ok(Arc::default());
        };
        let c = restore::open_path(path)?;
        let loaded = restore::load(&c)?;
        let mut all = restore::assign(&loaded, g, d.allow_non_restored_state)?;
        let mine = d.tasks();
        all.retain(|k, _| mine.contains(k));
        Ok(Arc::new(all))
    }

    /// Cancels the job's tasks of attempts up to `attempt` (all, with `u64::MAX`) and drops
    /// their channels (also channels requested for an attempt that never started here).
    pub fn cancel(&self, job: JobId, attempt: u64) {
        if let Some(t) = self.jobs.lock().get(&job) {
            if t.attempt <= attempt {
                t.cancel.cancel();
            }
        }
        self.net.release(job.0, attempt);
    }

    /// Waits up to `timeout` until every task of `job` here stopped, then forgets the job
    /// (slots, upload threads). Returns whether the job is gone (or was not here); a job whose
    /// tasks run on stays.
    fn reclaim(&self, job: JobId, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let stopped = match self.jobs.lock().get(&job) {
                None => return true,
                Some(t) => t.handles.iter().all(|h| h.is_finished()),
            };
            if stopped {
                if let Some(t) = self.jobs.lock().remove(&job) {
                    t.uploader.shutdown();
                    self.net.release(job.0, t.attempt);
                    let mut ended = self.ended.lock();
                    ended.retain(|(j, _)| *j != job);
                    ended.push_back((job, t.watermarks));
                    while ended.len() > ENDED_JOBS_KEPT {
                        ended.pop_front();
                    }
                }
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Delivers checkpoint mail of `attempt`: triggers go to source tasks, the rest to all.
    /// Commands come at least once (the jobmanager sends again what it saw fail in the
    /// transport): a trigger seen before is dropped, so a source never snapshots one checkpoint
    /// twice; completion and abort notifications are idempotent.
    pub fn deliver(&self, job: JobId, attempt: u64, mail: CheckpointMail) {
        let mut jobs = self.jobs.lock();
        let Some(t) = jobs.get_mut(&job).filter(|t| t.attempt == attempt) else {
            return;
        };
        if let CheckpointMail::Trigger(b) = &mail {
            if t.last_trigger.is_some_and(|last| b.id <= last) {
                return;
            }
            t.last_trigger = Some(b.id);
        }
        for (key, m) in &t.mailboxes {
            if matches!(mail, CheckpointMail::Trigger(_)) && !t.sources.contains(key) {
                continue;
            }
            m.deliver(mail.clone());
        }
    }

    /// Frees the job's slots once its tasks of `attempt` or older stopped (cancelling them
    /// if needed); a newer attempt keeps its slots.
    pub fn free_slots(&self, job: JobId, attempt: u64) {
        if self
            .jobs
            .lock()
            .get(&job)
            .is_some_and(|t| t.attempt > attempt)
        {
            return;
        }
        self.cancel(job, attempt);
        if !self.reclaim(job, Duration::from_secs(30)) {
            tracing::warn!(job = %job, "tasks still running 30 s after cancellation; slots kept");
        }
    }

    /// Cancels everything (the jobmanager is gone).
    pub fn cancel_all(&self) {
        let jobs: Vec<JobId> = self.jobs.lock().keys().copied().collect();
        for j in jobs {
            self.free_slots(j, u64::MAX);
        }
    }
}

/// The process's resident set size (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
