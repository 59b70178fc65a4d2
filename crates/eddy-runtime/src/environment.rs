//! What every operator of a task can see of its job and task (Flink's `Environment`): the
//! [`TaskEnv`] with its clock, cancellation, checkpointing and restored state, and the
//! [`WatermarkGauge`] other threads read the task's watermarks from.

use crate::channel::CancelToken;
use crate::checkpoint::state::RestoredOperatorState;
use crate::checkpoint::{TaskCheckpointing, TaskRestore};
use eddy_core::OperatorId;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Processing time, in ms since the epoch. One place so a test clock can replace it.
pub trait Clock: Send + Sync {
    /// Now, in ms.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// The current watermarks of one subtask, readable from other threads while the job runs
/// (Flink's `currentInputWatermark` / `currentOutputWatermark` task metrics).
#[derive(Debug)]
pub struct WatermarkGauge {
    input: AtomicI64,
    output: AtomicI64,
}

impl Default for WatermarkGauge {
    fn default() -> Self {
        WatermarkGauge {
            input: AtomicI64::new(i64::MIN),
            output: AtomicI64::new(i64::MIN),
        }
    }
}

impl WatermarkGauge {
    /// The watermark the task last forwarded into its chain (`i64::MIN` before any; sources
    /// have none).
    pub fn input_watermark(&self) -> i64 {
        self.input.load(Ordering::Acquire)
    }

    /// The watermark the end of the task's chain last emitted (`i64::MIN` before any).
    pub fn output_watermark(&self) -> i64 {
        self.output.load(Ordering::Acquire)
    }

    /// Records a new input watermark. Called after the chain processed it, with release
    /// ordering, so a reader that sees it also sees everything the chain did for it.
    pub fn set_input_watermark(&self, wm: i64) {
        self.input.store(wm, Ordering::Release);
    }

    /// Records a new output watermark.
    pub fn set_output_watermark(&self, wm: i64) {
        self.output.store(wm, Ordering::Release);
    }
}

/// What every operator of a task can see of its job and task.
#[derive(Clone)]
pub struct TaskEnv {
    /// Job name.
    pub job_name: String,
    /// Task name (the chain's name).
    pub task_name: String,
    /// 0-based subtask index.
    pub subtask: usize,
    /// Task parallelism.
    pub parallelism: usize,
    /// Processing-time clock.
    pub clock: Arc<dyn Clock>,
    /// Job-wide cancellation.
    pub cancel: Arc<CancelToken>,
    /// Flush partial buffers after this many ms (0: after every element, -1: never).
    pub buffer_timeout_ms: i64,
    /// Periodic watermark interval of strategies that set none (`pipeline.auto-watermark-interval`;
    /// 0: off).
    pub auto_watermark_interval_ms: i64,
    /// This subtask's current watermarks, updated by the task loop and the chain's tail.
    pub watermarks: Arc<WatermarkGauge>,
    /// Checkpointing of this task; `None` when the job does not checkpoint.
    pub checkpointing: Option<Arc<TaskCheckpointing>>,
    /// The state this subtask starts from, if the job was restored.
    pub restore: Option<Arc<TaskRestore>>,
}

impl TaskEnv {
    /// A task environment for tests and tools: wall clock, no checkpointing, no restore.
    pub fn standalone(job_name: &str, task_name: &str, subtask: usize, parallelism: usize) -> Self {
        TaskEnv {
            job_name: job_name.into(),
            task_name: task_name.into(),
            subtask,
            parallelism,
            clock: Arc::new(SystemClock),
            cancel: CancelToken::new(),
            buffer_timeout_ms: 100,
            auto_watermark_interval_ms: 200,
            watermarks: Arc::new(WatermarkGauge::default()),
            checkpointing: None,
            restore: None,
        }
    }

    /// Tells the JobMaster this task restored its state and opened its operators.
    pub fn report_running(&self) {
        if let Some(c) = &self.checkpointing {
            c.responder.task_running(c.task);
        }
    }

    /// The restored state of operator `op` in this subtask, if any.
    pub fn restored_state(&self, op: OperatorId) -> Option<&RestoredOperatorState> {
        self.restore.as_ref().and_then(|r| r.operators.get(&op))
    }
}
