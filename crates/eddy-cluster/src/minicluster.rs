//! The MiniCluster: the embedded default deployment (DESIGN §1). JobManager and TaskManagers
//! live in this process; every subtask runs on its own OS thread.
//!
//! `execute_async` initializes the job's operators once (e.g. checks input paths), expands the
//! JobGraph into an ExecutionGraph, creates each subtask's input gates and hands the matching
//! channel writers to the producers, builds every task, then starts them all. The first task
//! that fails cancels the others; the job's error is that root cause, naming the operator and
//! subtask. It returns a [`JobClient`] through which the running job's watermarks and
//! checkpoint statistics can be read, savepoints taken, the job stopped or cancelled, or its end
//! awaited; `execute` is `execute_async` then [`JobClient::wait`].
//!
//! A JobMaster thread per job supervises the tasks and runs the [`CheckpointCoordinator`],
//! delivering its triggers and notifications to the tasks' mailboxes. When a task fails, the
//! JobMaster cancels every task, asks the restart strategy, and redeploys all tasks from the
//! latest completed checkpoint (falling back to older retained ones if one cannot be read);
//! failures and restarts are recorded for the REST API.

use crate::checkpoint::restore::{self, LoadedCheckpoint, RestoreError};
use crate::checkpoint::{
    CheckpointCoordinator, CheckpointStatsSnapshot, CompletedCheckpoint, CoordinatorAction, JobEnd,
    OperatorInfo,
};
use crate::execution_graph::ExecutionGraph;
use crate::restart::RestartBackoff;
use eddy_core::jobgraph::{JobGraph, OperatorKind};
use eddy_core::{CoreError, JobId};
use eddy_runtime::chain::{SystemClock, TaskEnv, WatermarkGauge};
use eddy_runtime::channel::{CancelToken, OutputMetrics, TaskWaker};
use eddy_runtime::checkpoint::metadata::operator_state_key;
use eddy_runtime::checkpoint::storage::storage_for_url;
use eddy_runtime::checkpoint::{
    CheckpointId, CheckpointMail, CheckpointResponder, SnapshotKind, SubtaskKey,
    TaskAcknowledgement, TaskCheckpointing, TaskMailbox, TaskRestore, Uploader,
};
use eddy_runtime::error::panic_message;
use eddy_runtime::factory::{ChainContext, Erased, JobProgram};
use eddy_runtime::{OperatorError, TaskError};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
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
    #[error("not enough task slots: the job needs {needed}, the cluster has {available}")]
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

/// The embedded cluster.
#[derive(Clone, Debug, Default)]
pub struct MiniCluster {
    /// Task slots available; `None` gives the job as many as it needs (Flink's MiniCluster
    /// default for local execution).
    pub slots: Option<usize>,
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

type SavepointReply = mpsc::Sender<Result<String, String>>;

/// What reaches the JobMaster: task ends, checkpoint messages, client commands.
enum JmEvent {
    TaskDone {
        attempt: u64,
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
}

/// The in-process transport from tasks to the coordinator.
struct ChannelResponder {
    tx: mpsc::Sender<JmEvent>,
    attempt: u64,
}

impl CheckpointResponder for ChannelResponder {
    fn acknowledge(&self, ack: TaskAcknowledgement) {
        let _ = self.tx.send(JmEvent::Ack(ack));
    }
    fn decline(&self, id: CheckpointId, task: SubtaskKey, reason: String) {
        let _ = self.tx.send(JmEvent::Decline { id, task, reason });
    }
    fn source_finished(&self, task: SubtaskKey) {
        let _ = self.tx.send(JmEvent::SourceFinished {
            attempt: self.attempt,
            task,
        });
    }
    fn task_running(&self, _task: SubtaskKey) {
        let _ = self.tx.send(JmEvent::TaskRunning {
            attempt: self.attempt,
        });
    }
}

/// What the JobClient can read while the job runs.
#[derive(Default)]
struct JobShared {
    gauges: Vec<(String, usize, Arc<WatermarkGauge>)>,
    stats: CheckpointStatsSnapshot,
    failures: Vec<JobFailure>,
}

/// A handle to a job running on the MiniCluster (Flink's `JobClient`). Dropping it without
/// [`JobClient::wait`] cancels the job: its threads live in this process, and nothing could
/// join them any more.
pub struct JobClient {
    job_id: JobId,
    job_name: String,
    commands: mpsc::Sender<JmEvent>,
    shared: Arc<Mutex<JobShared>>,
    master: Option<JoinHandle<Result<JobExecutionResult, JobExecutionError>>>,
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

    /// The current input and output watermark of every subtask, vertex by vertex.
    pub fn watermarks(&self) -> Vec<SubtaskWatermarks> {
        self.shared
            .lock()
            .gauges
            .iter()
            .map(|(task, subtask, g)| SubtaskWatermarks {
                task: task.clone(),
                subtask: *subtask,
                input_watermark: g.input_watermark(),
                output_watermark: g.output_watermark(),
            })
            .collect()
    }

    /// Checkpoint counts, history and latest checkpoints.
    pub fn checkpoint_stats(&self) -> CheckpointStatsSnapshot {
        self.shared.lock().stats.clone()
    }

    /// Every failure of the job so far, oldest first.
    pub fn failures(&self) -> Vec<JobFailure> {
        self.shared.lock().failures.clone()
    }

    /// Cancels the job; [`JobClient::wait`] then returns the cancellation.
    pub fn cancel(&self) {
        let _ = self.commands.send(JmEvent::Cancel);
    }

    fn savepoint(&self, kind: SnapshotKind, dir: Option<&Path>) -> Result<String, String> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(JmEvent::Savepoint {
                kind,
                dir: dir.map(Path::to_path_buf),
                reply: tx,
            })
            .map_err(|_| "the job has ended".to_string())?;
        rx.recv()
            .map_err(|_| "the job ended before the savepoint completed".to_string())?
    }

    /// Takes a savepoint into a new directory under `dir` (or `state.savepoints.dir`) and
    /// returns its path; the job keeps running.
    pub fn trigger_savepoint(&self, dir: Option<&Path>) -> Result<String, String> {
        self.savepoint(SnapshotKind::Savepoint, dir)
    }

    /// Stop-with-savepoint: sources stop (with `drain`, after emitting the final watermark so
    /// every window fires), the savepoint is taken, sinks commit, the job finishes. Returns the
    /// savepoint's path; [`JobClient::wait`] then returns the finished job.
    pub fn stop_with_savepoint(&self, dir: Option<&Path>, drain: bool) -> Result<String, String> {
        self.savepoint(SnapshotKind::SavepointTerminate { drain }, dir)
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
            let _ = self.commands.send(JmEvent::Cancel);
            let _ = h.join();
        }
    }
}

/// One deployment (attempt) of a job's tasks.
struct Deployment {
    cancel: Arc<CancelToken>,
    handles: Vec<(String, JoinHandle<()>)>,
    mailboxes: Vec<Arc<TaskMailbox>>,
    sources: Vec<Arc<TaskMailbox>>,
    running: usize,
}

impl Deployment {
    fn deliver_all(&self, mail: CheckpointMail) {
        for m in &self.mailboxes {
            m.deliver(mail.clone());
        }
    }
}

/// Everything the JobMaster needs across attempts.
struct JobMasterCtx {
    program: JobProgram,
    eg: ExecutionGraph,
    events_tx: mpsc::Sender<JmEvent>,
    shared: Arc<Mutex<JobShared>>,
    uploader: Arc<Uploader>,
    operator_files: std::collections::BTreeMap<eddy_core::OperatorId, String>,
}

fn file_safe(key: &str) -> String {
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

fn source_tasks(g: &JobGraph, eg: &ExecutionGraph) -> BTreeSet<SubtaskKey> {
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

impl JobMasterCtx {
    /// Builds and starts every task of attempt `attempt`.
    fn deploy(
        &self,
        attempt: u64,
        restore: &HashMap<(usize, usize), TaskRestore>,
        coordinator: &CheckpointCoordinator,
    ) -> Result<Deployment, JobExecutionError> {
        let program = &self.program;
        let g = &program.job_graph;
        let eg = &self.eg;
        let cancel = CancelToken::new();
        let capacity = g.config.buffers_per_channel;
        let responder: Arc<dyn CheckpointResponder> = Arc::new(ChannelResponder {
            tx: self.events_tx.clone(),
            attempt,
        });
        // Create every gate first so each producer finds the writers of its channels.
        let mut wakers = Vec::new();
        let mut gates: Vec<Vec<Option<Erased>>> = Vec::new();
        let mut writers: HashMap<(usize, usize), Vec<(usize, Erased)>> = HashMap::new();
        for st in &eg.subtasks {
            let v = &g.vertices[st.vertex];
            let waker = TaskWaker::new();
            cancel.register_waker(waker.clone());
            let factory = program.factories.get(&v.head).ok_or_else(|| {
                CoreError::InvalidGraph(format!("no code for operator {}", v.head))
            })?;
            let mut gs = Vec::new();
            for (input, chans) in st.input_channels.iter().enumerate() {
                let eg = factory
                    .create_input_gate(input, chans.len(), capacity, waker.clone())
                    .map_err(JobExecutionError::TaskFailed)?;
                cancel.register_gate(eg.cancel);
                for (ch, w) in chans.iter().zip(eg.writers) {
                    writers
                        .entry((ch.edge, ch.producer))
                        .or_default()
                        .push((ch.consumer, w));
                }
                gs.push(Some(eg.gate));
            }
            gates.push(gs);
            wakers.push(waker);
        }
        let sources = source_tasks(g, eg);
        let mut tasks = Vec::new();
        let mut mailboxes = Vec::new();
        let mut source_mailboxes = Vec::new();
        for (i, st) in eg.subtasks.iter().enumerate() {
            let v = &g.vertices[st.vertex];
            let mut my_writers = HashMap::new();
            for (ei, e) in g.edges.iter().enumerate() {
                if !e.chained && v.operators.contains(&e.source) {
                    let mut ws = writers.remove(&(ei, st.subtask)).unwrap_or_default();
                    ws.sort_by_key(|(c, _)| *c);
                    my_writers.insert(ei, ws.into_iter().map(|(_, w)| w).collect::<Vec<_>>());
                }
            }
            let mut ctx = ChainContext {
                program,
                subtask: st.subtask,
                gates: std::mem::take(&mut gates[i]),
                writers: my_writers,
                metrics: Arc::new(OutputMetrics::default()),
            };
            let factory = program.factories.get(&v.head).ok_or_else(|| {
                CoreError::InvalidGraph(format!("no code for operator {}", v.head))
            })?;
            let task = factory
                .build_task(&mut ctx, v.head)
                .map_err(JobExecutionError::TaskFailed)?;
            let key = SubtaskKey {
                vertex: st.vertex,
                subtask: st.subtask,
            };
            let mailbox = Arc::new(TaskMailbox::new(wakers[i].clone()));
            mailboxes.push(mailbox.clone());
            if sources.contains(&key) {
                source_mailboxes.push(mailbox.clone());
            }
            let checkpointing = Arc::new(TaskCheckpointing {
                mode: g.config.checkpoint.mode,
                task: key,
                job_id: g.job_id,
                responder: responder.clone(),
                storage: coordinator.storage().clone(),
                uploader: self.uploader.clone(),
                mailbox,
                operator_files: self.operator_files.clone(),
                periodic: g.config.checkpoint.is_enabled(),
            });
            let env = TaskEnv {
                job_name: g.job_name.clone(),
                task_name: v.name.clone(),
                subtask: st.subtask,
                parallelism: v.parallelism,
                clock: Arc::new(SystemClock),
                cancel: cancel.clone(),
                buffer_timeout_ms: g.config.buffer_timeout_ms,
                auto_watermark_interval_ms: g.config.auto_watermark_interval_ms,
                watermarks: Arc::new(WatermarkGauge::default()),
                checkpointing: Some(checkpointing),
                restore: restore.get(&(st.vertex, st.subtask)).cloned().map(Arc::new),
            };
            tasks.push((task, env, wakers[i].clone()));
        }
        tracing::info!(job = %g.job_id, name = %g.job_name, tasks = tasks.len(), attempt, "deploying job");
        self.shared.lock().gauges = tasks
            .iter()
            .map(|(_, env, _)| (env.task_name.clone(), env.subtask, env.watermarks.clone()))
            .collect();
        let mut handles = Vec::new();
        for (mut task, env, waker) in tasks {
            let tx = self.events_tx.clone();
            let name = format!(
                "{} ({}/{})",
                env.task_name,
                env.subtask + 1,
                env.parallelism
            );
            let thread_name: String = name.chars().take(60).collect();
            let n2 = name.clone();
            let h = std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || {
                    let res = match catch_unwind(AssertUnwindSafe(|| task.run(&env, &waker))) {
                        Ok(r) => r,
                        Err(p) => Err(TaskError::new(
                            n2,
                            env.subtask,
                            format!("{}/{}", env.subtask + 1, env.parallelism),
                            OperatorError::Panic(panic_message(p.as_ref())),
                        )),
                    };
                    if res.is_err() {
                        env.cancel.cancel();
                    }
                    let _ = tx.send(JmEvent::TaskDone {
                        attempt,
                        result: res,
                    });
                })
                .map_err(|e| JobExecutionError::TaskCrashed {
                    task: name.clone(),
                    message: format!("could not start thread: {e}"),
                });
            match h {
                Ok(h) => handles.push((name, h)),
                Err(e) => {
                    cancel.cancel();
                    for (_, h) in handles {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Deployment {
            cancel,
            running: handles.len(),
            handles,
            mailboxes,
            sources: source_mailboxes,
        })
    }
}

/// How one attempt ended.
enum AttemptEnd {
    Finished,
    Cancelled(Option<TaskError>),
    Failed(JobExecutionError),
}

impl MiniCluster {
    /// Runs a job to completion.
    pub fn execute(&self, program: JobProgram) -> Result<JobExecutionResult, JobExecutionError> {
        self.execute_async(program)?.wait()
    }

    /// Deploys a job and returns as soon as its tasks have started. Errors found before
    /// anything runs (invalid job, initialization, slots, checkpoint settings, an unusable
    /// savepoint) are returned here.
    pub fn execute_async(&self, program: JobProgram) -> Result<JobClient, JobExecutionError> {
        let started = Instant::now();
        let g = &program.job_graph;
        for op in &g.operators {
            let f = program.factories.get(&op.id).ok_or_else(|| {
                CoreError::InvalidGraph(format!("no code for operator '{}'", op.name))
            })?;
            f.initialize_global()
                .map_err(|cause| JobExecutionError::Initialization {
                    operator: op.name.clone(),
                    cause,
                })?;
        }
        let eg = ExecutionGraph::build(g)?;
        if let Some(available) = self.slots {
            if eg.required_slots > available {
                return Err(JobExecutionError::NotEnoughSlots {
                    needed: eg.required_slots,
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
        let operator_files = g
            .operators
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
        if let Some(sp) = g
            .config
            .savepoint_restore
            .as_ref()
            .filter(|s| !s.path.is_empty())
        {
            let c = restore::open_path(&sp.path)?;
            let loaded = restore::load(&c)?;
            initial = restore::assign(&loaded, g, sp.allow_non_restored_state)?;
            tracing::info!(path = %c.location, checkpoint = c.metadata.checkpoint_id, "restoring job");
            coordinator.add_restored(c, now_ms());
        }
        let (tx, rx) = mpsc::channel::<JmEvent>();
        let shared = Arc::new(Mutex::new(JobShared::default()));
        let ctx = JobMasterCtx {
            eg,
            events_tx: tx.clone(),
            shared: shared.clone(),
            uploader: Uploader::new(2),
            operator_files,
            program,
        };
        let first = ctx.deploy(1, &initial, &coordinator)?;
        let job_id = ctx.program.job_graph.job_id;
        let job_name = ctx.program.job_graph.job_name.clone();
        let master = std::thread::Builder::new()
            .name(format!("jobmaster-{}", &job_id.to_string()[..8]))
            .spawn(move || {
                let r = job_master(&ctx, coordinator, first, &rx, started);
                ctx.uploader.shutdown();
                r
            })
            .map_err(|e| JobExecutionError::JobMasterCrashed(e.to_string()))?;
        Ok(JobClient {
            job_id,
            job_name,
            commands: tx,
            shared,
            master: Some(master),
        })
    }
}

/// Runs the job's attempts until it finishes, is cancelled, or fails for good.
fn job_master(
    ctx: &JobMasterCtx,
    mut coordinator: CheckpointCoordinator,
    first: Deployment,
    rx: &mpsc::Receiver<JmEvent>,
    started: Instant,
) -> Result<JobExecutionResult, JobExecutionError> {
    let g = &ctx.program.job_graph;
    let mut backoff = RestartBackoff::new(&g.config.effective_restart_strategy());
    let mut replies: HashMap<u64, SavepointReply> = HashMap::new();
    let mut attempt = 1u64;
    let mut deployment = first;
    let mut recovering_since: Option<Instant> = None;
    loop {
        let end = run_attempt(
            ctx,
            &mut coordinator,
            &deployment,
            (attempt, recovering_since.take()),
            rx,
            &mut replies,
        );
        // Stop what is left of the attempt and wait for every task thread.
        deployment.cancel.cancel();
        let cancel_requested = drain_attempt(&mut coordinator, &deployment, rx);
        for (_, h) in deployment.handles.drain(..) {
            let _ = h.join();
        }
        let end = match end {
            // A cancel that came while the failed attempt wound down wins over a restart.
            AttemptEnd::Failed(_) if cancel_requested => AttemptEnd::Cancelled(None),
            end => end,
        };
        let failure = match end {
            AttemptEnd::Finished => {
                coordinator.on_job_end(JobEnd::Finished);
                publish(ctx, &coordinator);
                return Ok(JobExecutionResult {
                    job_id: g.job_id,
                    job_name: g.job_name.clone(),
                    net_runtime: started.elapsed(),
                });
            }
            AttemptEnd::Cancelled(e) => {
                coordinator.on_job_end(JobEnd::Cancelled);
                publish(ctx, &coordinator);
                let e = e.unwrap_or_else(|| {
                    TaskError::new(g.job_name.clone(), 0, "-", OperatorError::Cancelled)
                });
                return Err(JobExecutionError::TaskFailed(e));
            }
            AttemptEnd::Failed(e) => e,
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
            coordinator.on_job_end(JobEnd::Failed);
            publish(ctx, &coordinator);
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
        // Wait out the restart delay; a cancel meanwhile ends the job.
        let deadline = Instant::now() + delay;
        let mut cancelled = false;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(JmEvent::Cancel) => {
                    cancelled = true;
                    break;
                }
                Ok(JmEvent::Savepoint { reply, .. }) => {
                    let _ = reply.send(Err("the job is restarting".into()));
                }
                Ok(JmEvent::Ack(a)) => {
                    coordinator.acknowledge(a, now_ms());
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if cancelled {
            record(false, None);
            coordinator.on_job_end(JobEnd::Cancelled);
            publish(ctx, &coordinator);
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
        // The latest completed checkpoint that can be read; older retained ones otherwise.
        let mut restore_state = HashMap::new();
        let mut restored_id = None;
        let candidates: Vec<CompletedCheckpoint> =
            coordinator.completed_checkpoints().cloned().collect();
        let allow = g
            .config
            .savepoint_restore
            .as_ref()
            .is_some_and(|s| s.allow_non_restored_state);
        for c in candidates {
            match restore::load(&c).and_then(|l: LoadedCheckpoint| restore::assign(&l, g, allow)) {
                Ok(s) => {
                    restore_state = s;
                    restored_id = Some(c.metadata.checkpoint_id);
                    coordinator.record_restore(&c, now_ms());
                    break;
                }
                Err(e) => {
                    tracing::error!(
                        "cannot restore checkpoint {}, trying an older one: {e}",
                        c.metadata.checkpoint_id
                    );
                    ctx.shared.lock().failures.push(JobFailure {
                        timestamp: now_ms(),
                        cause: e.to_string(),
                        restarted: false,
                        restored_checkpoint: None,
                        recovered_after: None,
                    });
                }
            }
        }
        record(true, restored_id);
        recovering_since = Some(failed_at);
        attempt += 1;
        deployment = match ctx.deploy(attempt, &restore_state, &coordinator) {
            Ok(d) => d,
            Err(e) => {
                coordinator.on_job_end(JobEnd::Failed);
                return Err(e);
            }
        };
        publish(ctx, &coordinator);
    }
}

fn publish(ctx: &JobMasterCtx, coordinator: &CheckpointCoordinator) {
    ctx.shared.lock().stats = coordinator.stats();
}

/// Delivers the coordinator's actions; returns a job failure if one says so.
fn apply_actions(
    actions: Vec<CoordinatorAction>,
    d: &Deployment,
    replies: &mut HashMap<u64, SavepointReply>,
) -> Option<String> {
    let mut fail = None;
    for a in actions {
        match a {
            CoordinatorAction::TriggerSources(b) => {
                for m in &d.sources {
                    m.deliver(CheckpointMail::Trigger(b.clone()));
                }
            }
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
    d: &Deployment,
    (attempt, mut recovering_since): (u64, Option<Instant>),
    rx: &mpsc::Receiver<JmEvent>,
    replies: &mut HashMap<u64, SavepointReply>,
) -> AttemptEnd {
    let g = &ctx.program.job_graph;
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
            Some(JmEvent::TaskDone { attempt: a, .. }) if a != attempt => Vec::new(),
            Some(JmEvent::TaskDone { result, .. }) => {
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
                if finished == d.running {
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
            Some(JmEvent::Ack(a)) => coordinator.acknowledge(a, now),
            Some(JmEvent::Decline { id, task, reason }) => {
                coordinator.decline(id, task, &reason, now)
            }
            Some(JmEvent::SourceFinished { attempt: a, task }) if a == attempt => {
                coordinator.source_finished(task, now)
            }
            Some(JmEvent::SourceFinished { .. }) => Vec::new(),
            Some(JmEvent::TaskRunning { attempt: a }) if a == attempt => {
                running += 1;
                if running == d.running {
                    if let Some(since) = recovering_since.take() {
                        let mut shared = ctx.shared.lock();
                        if let Some(f) = shared.failures.iter_mut().rev().find(|f| f.restarted) {
                            f.recovered_after = Some(since.elapsed());
                        }
                    }
                }
                Vec::new()
            }
            Some(JmEvent::TaskRunning { .. }) => Vec::new(),
            Some(JmEvent::Cancel) => {
                cancelling = true;
                d.cancel.cancel();
                Vec::new()
            }
            Some(JmEvent::Savepoint { kind, dir, reply }) => {
                let target = dir.or_else(|| {
                    g.config
                        .checkpoint
                        .savepoint_dir
                        .as_deref()
                        .and_then(|u| eddy_runtime::checkpoint::storage::path_of_url(u).ok())
                });
                match target {
                    None => {
                        let _ = reply.send(Err(
                            "no savepoint directory given and state.savepoints.dir is not set"
                                .into(),
                        ));
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
        if let Some(reason) = apply_actions(actions, d, replies) {
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
    d: &Deployment,
    rx: &mpsc::Receiver<JmEvent>,
) -> bool {
    let mut cancel_requested = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while d.handles.iter().any(|(_, h)| !h.is_finished()) && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(JmEvent::Ack(a)) => {
                coordinator.acknowledge(a, now_ms());
            }
            Ok(JmEvent::Savepoint { reply, .. }) => {
                let _ = reply.send(Err("the job is ending".into()));
            }
            Ok(JmEvent::Cancel) => cancel_requested = true,
            Ok(_) | Err(_) => {}
        }
    }
    cancel_requested
}
