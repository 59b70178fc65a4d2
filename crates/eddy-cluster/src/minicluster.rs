//! The MiniCluster: the embedded default deployment (DESIGN §1). JobManager and TaskManagers
//! live in this process; every subtask runs on its own OS thread.
//!
//! `execute_async` initializes the job's operators once (e.g. checks input paths), expands the
//! JobGraph into an ExecutionGraph, creates each subtask's input gates and hands the matching
//! channel writers to the producers, builds every task, then starts them all. The first task
//! that fails cancels the others; the job's error is that root cause, naming the operator and
//! subtask. It returns a [`JobClient`] through which the running job's watermarks can be read,
//! the job cancelled, or its end awaited; `execute` is `execute_async` then
//! [`JobClient::wait`]. Restart strategies arrive with checkpoints.

use crate::execution_graph::ExecutionGraph;
use eddy_core::{CoreError, JobId};
use eddy_runtime::chain::{SystemClock, TaskEnv, WatermarkGauge};
use eddy_runtime::channel::{CancelToken, OutputMetrics, TaskWaker};
use eddy_runtime::error::panic_message;
use eddy_runtime::factory::{ChainContext, Erased, JobProgram};
use eddy_runtime::{OperatorError, TaskError};
use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
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

type TaskResult = (String, Result<(), TaskError>);

/// A handle to a job running on the MiniCluster (Flink's `JobClient`). Dropping it without
/// [`JobClient::wait`] cancels the job: its threads live in this process, and nothing could
/// join them any more.
pub struct JobClient {
    job_id: JobId,
    job_name: String,
    started: Instant,
    cancel: Arc<CancelToken>,
    gauges: Vec<(String, usize, Arc<WatermarkGauge>)>,
    results: mpsc::Receiver<TaskResult>,
    handles: Vec<(String, JoinHandle<()>)>,
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
        self.gauges
            .iter()
            .map(|(task, subtask, g)| SubtaskWatermarks {
                task: task.clone(),
                subtask: *subtask,
                input_watermark: g.input_watermark(),
                output_watermark: g.output_watermark(),
            })
            .collect()
    }

    /// Cancels the job; [`JobClient::wait`] then returns the cancellation.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for every task to end. The job's error is the first failure that is not only the
    /// echo of another task's cancellation.
    pub fn wait(mut self) -> Result<JobExecutionResult, JobExecutionError> {
        let handles = std::mem::take(&mut self.handles);
        let mut root: Option<JobExecutionError> = None;
        let mut echo: Option<TaskError> = None;
        for (_, res) in self.results.iter() {
            if let Err(e) = res {
                if e.is_cancellation() {
                    echo.get_or_insert(e);
                } else if root.is_none() {
                    root = Some(JobExecutionError::TaskFailed(e));
                }
            }
        }
        for (name, h) in handles {
            if let Err(p) = h.join() {
                self.cancel.cancel();
                root.get_or_insert(JobExecutionError::TaskCrashed {
                    task: name,
                    message: panic_message(p.as_ref()),
                });
            }
        }
        if let Some(e) = root.or(echo.map(JobExecutionError::TaskFailed)) {
            return Err(e);
        }
        Ok(JobExecutionResult {
            job_id: self.job_id,
            job_name: self.job_name.clone(),
            net_runtime: self.started.elapsed(),
        })
    }
}

impl Drop for JobClient {
    fn drop(&mut self) {
        if !self.handles.is_empty() {
            self.cancel.cancel();
        }
    }
}

impl MiniCluster {
    /// Runs a job to completion.
    pub fn execute(&self, program: JobProgram) -> Result<JobExecutionResult, JobExecutionError> {
        self.execute_async(program)?.wait()
    }

    /// Deploys a job and returns as soon as every task has started. Errors found before
    /// anything runs (invalid job, initialization, slots) are returned here.
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
        let cancel = CancelToken::new();
        let capacity = g.config.buffers_per_channel;
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
        let mut tasks = Vec::new();
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
                program: &program,
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
                checkpointing: None,
                restore: None,
            };
            tasks.push((task, env, wakers[i].clone()));
        }
        tracing::info!(job = %g.job_id, name = %g.job_name, tasks = tasks.len(), "deploying job");
        let gauges = tasks
            .iter()
            .map(|(_, env, _)| (env.task_name.clone(), env.subtask, env.watermarks.clone()))
            .collect();
        let (tx, rx) = mpsc::channel::<TaskResult>();
        let mut handles = Vec::new();
        for (mut task, env, waker) in tasks {
            let tx = tx.clone();
            let name = format!(
                "{} ({}/{})",
                env.task_name,
                env.subtask + 1,
                env.parallelism
            );
            let thread_name: String = name.chars().take(60).collect();
            let cancel_on_failure = env.cancel.clone();
            let n2 = name.clone();
            let h = std::thread::Builder::new()
                .name(thread_name)
                .spawn(move || {
                    let res = task.run(&env, &waker);
                    if res.is_err() {
                        cancel_on_failure.cancel();
                    }
                    let _ = tx.send((n2, res));
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
        drop(tx);
        Ok(JobClient {
            job_id: g.job_id,
            job_name: g.job_name.clone(),
            started,
            cancel,
            gauges,
            results: rx,
            handles,
        })
    }
}
