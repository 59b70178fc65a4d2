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

use crate::jobmanager::checkpoint::{CheckpointCoordinator, CheckpointStatsSnapshot};
use crate::jobmanager::execution_graph::ExecutionGraph;
use crate::jobmanager::job_master::{
    job_master, prepare, source_tasks, DeployedAttempt, Deployer, JobMasterCtx, JobMasterEvent,
    JobShared, PreparedJob, RestoreSpec,
};
use crate::taskmanager::launch;
use eddy_core::{CoreError, JobId};
use eddy_runtime::channel::{CancelToken, OutputMetrics, TaskWaker};
use eddy_runtime::checkpoint::{
    CheckpointBarrier, CheckpointId, CheckpointMail, CheckpointResponder, SnapshotKind, SubtaskKey,
    TaskAcknowledgement, TaskCheckpointing, TaskMailbox, TaskRestore, Uploader,
};
use eddy_runtime::error::panic_message;
use eddy_runtime::factory::{ChainContext, Erased, JobProgram};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

pub use crate::jobmanager::job_master::{
    JobExecutionError, JobExecutionResult, JobFailure, JobStatus,
};

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

/// The in-process transport from tasks to the coordinator.
struct ChannelResponder {
    tx: mpsc::Sender<JobMasterEvent>,
    attempt: u64,
}

impl CheckpointResponder for ChannelResponder {
    fn acknowledge(&self, ack: TaskAcknowledgement) {
        let _ = self.tx.send(JobMasterEvent::Ack(ack));
    }
    fn decline(&self, id: CheckpointId, task: SubtaskKey, reason: String) {
        let _ = self.tx.send(JobMasterEvent::Decline { id, task, reason });
    }
    fn source_finished(&self, task: SubtaskKey) {
        let _ = self.tx.send(JobMasterEvent::SourceFinished {
            attempt: self.attempt,
            task,
        });
    }
    fn task_running(&self, _task: SubtaskKey) {
        let _ = self.tx.send(JobMasterEvent::TaskRunning {
            attempt: self.attempt,
        });
    }
}

/// A handle to a job running on the MiniCluster (Flink's `JobClient`). Dropping it without
/// [`JobClient::wait`] cancels the job: its threads live in this process, and nothing could
/// join them any more.
pub struct JobClient {
    job_id: JobId,
    job_name: String,
    commands: mpsc::Sender<JobMasterEvent>,
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
        let _ = self.commands.send(JobMasterEvent::Cancel);
    }

    fn savepoint(&self, kind: SnapshotKind, dir: Option<&Path>) -> Result<String, String> {
        let (tx, rx) = mpsc::channel();
        self.commands
            .send(JobMasterEvent::Savepoint {
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
            let _ = self.commands.send(JobMasterEvent::Cancel);
            let _ = h.join();
        }
    }
}

/// One deployment (attempt) of a job's tasks: threads of this process.
struct LocalDeployment {
    attempt: u64,
    cancel: Arc<CancelToken>,
    handles: Vec<(String, JoinHandle<()>)>,
    mailboxes: Vec<Arc<TaskMailbox>>,
    sources: Vec<Arc<TaskMailbox>>,
    running: usize,
}

impl DeployedAttempt for LocalDeployment {
    fn attempt(&self) -> u64 {
        self.attempt
    }
    fn task_count(&self) -> usize {
        self.running
    }
    fn trigger_sources(&self, b: &CheckpointBarrier) {
        for m in &self.sources {
            m.deliver(CheckpointMail::Trigger(b.clone()));
        }
    }
    fn deliver_all(&self, mail: CheckpointMail) {
        for m in &self.mailboxes {
            m.deliver(mail.clone());
        }
    }
    fn cancel(&self) {
        self.cancel.cancel();
    }
    fn all_stopped(&self) -> bool {
        self.handles.iter().all(|(_, h)| h.is_finished())
    }
    fn finish(&mut self) {
        for (_, h) in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Deploys attempts as threads of this process.
struct LocalDeployer {
    program: JobProgram,
    eg: ExecutionGraph,
    events_tx: mpsc::Sender<JobMasterEvent>,
    shared: Arc<Mutex<JobShared>>,
    uploader: Arc<Uploader>,
    operator_files: std::collections::BTreeMap<eddy_core::OperatorId, String>,
}

impl Deployer for LocalDeployer {
    fn deploy(
        &mut self,
        attempt: u64,
        restore: &RestoreSpec,
        coordinator: &CheckpointCoordinator,
    ) -> Result<Box<dyn DeployedAttempt>, JobExecutionError> {
        Ok(Box::new(self.deploy_local(
            attempt,
            &restore.states,
            coordinator,
        )?))
    }
}

impl LocalDeployer {
    /// Builds and starts every task of attempt `attempt`.
    fn deploy_local(
        &self,
        attempt: u64,
        restore: &HashMap<(usize, usize), TaskRestore>,
        coordinator: &CheckpointCoordinator,
    ) -> Result<LocalDeployment, JobExecutionError> {
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
            let env = launch::task_env(
                g,
                v,
                st.subtask,
                &cancel,
                checkpointing,
                restore.get(&(st.vertex, st.subtask)).cloned(),
            );
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
            let name = launch::task_name(&env);
            let h = std::thread::Builder::new()
                .name(name.chars().take(60).collect())
                .spawn(move || {
                    let res = launch::run_guarded(task.as_mut(), &env, &waker);
                    let _ = tx.send(JobMasterEvent::TaskDone {
                        attempt,
                        task: None,
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
        Ok(LocalDeployment {
            attempt,
            cancel,
            running: handles.len(),
            handles,
            mailboxes,
            sources: source_mailboxes,
        })
    }
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
        let PreparedJob {
            eg,
            coordinator,
            initial,
            operator_files,
        } = prepare(g, self.slots)?;
        let (tx, rx) = mpsc::channel::<JobMasterEvent>();
        let shared = Arc::new(Mutex::new(JobShared::default()));
        let deployer = LocalDeployer {
            eg,
            events_tx: tx.clone(),
            shared: shared.clone(),
            uploader: Uploader::new(2),
            operator_files,
            program,
        };
        let first = deployer.deploy_local(1, &initial.states, &coordinator)?;
        let job_id = deployer.program.job_graph.job_id;
        let job_name = deployer.program.job_graph.job_name.clone();
        let uploader = deployer.uploader.clone();
        let mut ctx = JobMasterCtx {
            graph: deployer.program.job_graph.clone(),
            shared: shared.clone(),
            deployer: Box::new(deployer),
        };
        let master = std::thread::Builder::new()
            .name(format!("jobmaster-{}", &job_id.to_string()[..8]))
            .spawn(move || {
                let r = job_master(&mut ctx, coordinator, Ok(Box::new(first)), &rx, started);
                uploader.shutdown();
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
