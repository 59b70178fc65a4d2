//! Starting a subtask: its [`TaskEnv`] from the JobGraph, and the guard that turns a panic of
//! the task into a task failure; the TaskExecutor runs every subtask through it.

use eddy_core::jobgraph::{JobGraph, JobVertex};
use eddy_runtime::channel::CancelToken;
use eddy_runtime::checkpoint::{TaskCheckpointing, TaskRestore};
use eddy_runtime::environment::{SystemClock, TaskEnv, WatermarkGauge};
use eddy_runtime::error::panic_message;
use eddy_runtime::task::StreamTask;
use eddy_runtime::waker::TaskWaker;
use eddy_runtime::{OperatorError, TaskError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The environment of subtask `subtask` of vertex `v`.
pub(crate) fn task_env(
    g: &JobGraph,
    v: &JobVertex,
    subtask: usize,
    cancel: &Arc<CancelToken>,
    checkpointing: Arc<TaskCheckpointing>,
    restore: Option<TaskRestore>,
) -> TaskEnv {
    TaskEnv {
        job_name: g.job_name.clone(),
        task_name: v.name.clone(),
        subtask,
        parallelism: v.parallelism,
        clock: Arc::new(SystemClock),
        cancel: cancel.clone(),
        buffer_timeout_ms: g.config.buffer_timeout_ms,
        auto_watermark_interval_ms: g.config.auto_watermark_interval_ms,
        watermarks: Arc::new(WatermarkGauge::default()),
        checkpointing: Some(checkpointing),
        restore: restore.map(Arc::new),
    }
}

/// The thread name of a subtask, as Flink names tasks: `Vertex name (i/p)`.
pub(crate) fn task_name(env: &TaskEnv) -> String {
    format!(
        "{} ({}/{})",
        env.task_name,
        env.subtask + 1,
        env.parallelism
    )
}

/// Runs the task; a panic becomes the task's failure. On failure the job's other tasks are
/// cancelled (the token), so they stop instead of waiting for input that will not come.
pub(crate) fn run_guarded(
    task: &mut dyn StreamTask,
    env: &TaskEnv,
    waker: &Arc<TaskWaker>,
) -> Result<(), TaskError> {
    let res = match catch_unwind(AssertUnwindSafe(|| task.run(env, waker))) {
        Ok(r) => r,
        Err(p) => Err(TaskError::new(
            task_name(env),
            env.subtask,
            format!("{}/{}", env.subtask + 1, env.parallelism),
            OperatorError::Panic(panic_message(p.as_ref())),
        )),
    };
    if res.is_err() {
        env.cancel.cancel();
    }
    res
}
