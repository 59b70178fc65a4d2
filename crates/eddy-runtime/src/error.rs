//! Errors of the task runtime, grouped by who caused them: the user's function, state, I/O
//! with an external system, cancellation, or a bug in Eddy itself.

use eddy_state::StateError;
use thiserror::Error;

/// What a user function returns when it fails: any error type.
pub type FunctionError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// Result of a user function.
pub type FunctionResult<T = ()> = Result<T, FunctionError>;

/// Why one operator failed, before the task adds which operator and subtask it was.
#[derive(Debug, Error)]
pub enum OperatorError {
    /// The user's function returned an error.
    #[error("{0}")]
    User(FunctionError),
    /// The user's function panicked.
    #[error("panicked: {0}")]
    Panic(String),
    /// Keyed state could not be accessed.
    #[error("state error: {0}")]
    State(#[from] StateError),
    /// A source or sink failed to talk to the outside (file, socket).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or address.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Input data is malformed (names the file and line where known).
    #[error("bad input: {0}")]
    BadInput(String),
    /// The failure as a taskmanager reported it to the jobmanager (already described).
    #[error("{0}")]
    Remote(String),
    /// Data could not cross the network (a connection to another taskmanager broke).
    #[error("network: {0}")]
    Network(String),
    /// The task was cancelled because another task failed or the job was stopped.
    #[error("cancelled")]
    Cancelled,
    /// An invariant of Eddy itself broke; this is a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FunctionError> for OperatorError {
    fn from(e: FunctionError) -> Self {
        OperatorError::User(e)
    }
}

impl OperatorError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OperatorError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A task failed: which operator, which subtask, and why. Boxed so the happy path's `Result`
/// stays one word wide.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct TaskError(pub Box<TaskFailure>);

impl std::ops::Deref for TaskError {
    type Target = TaskFailure;
    fn deref(&self) -> &TaskFailure {
        &self.0
    }
}

/// The details of a [`TaskError`].
#[derive(Debug, Error)]
#[error("operator '{operator}' (subtask {subtask_display}) failed: {cause}")]
pub struct TaskFailure {
    /// The operator's name.
    pub operator: String,
    /// The 0-based subtask index.
    pub subtask: usize,
    /// `index+1/parallelism`, as Flink shows subtasks.
    pub subtask_display: String,
    /// The cause.
    pub cause: OperatorError,
}

impl TaskError {
    /// A failure of `operator` in subtask `subtask_display` (`i/p`).
    pub fn new(
        operator: impl Into<String>,
        subtask: usize,
        subtask_display: impl Into<String>,
        cause: OperatorError,
    ) -> Self {
        TaskError(Box::new(TaskFailure {
            operator: operator.into(),
            subtask,
            subtask_display: subtask_display.into(),
            cause,
        }))
    }

    /// Whether this is only the echo of a cancellation (not a root cause).
    pub fn is_cancellation(&self) -> bool {
        matches!(self.cause, OperatorError::Cancelled)
    }
}

/// The name and subtask of an operator, for error messages.
#[derive(Clone, Debug)]
pub struct OperatorLabel {
    /// Operator name.
    pub name: String,
    /// 0-based subtask index.
    pub subtask: usize,
    /// Parallelism of the operator.
    pub parallelism: usize,
}

impl OperatorLabel {
    /// Wraps an operator error into a task error naming this operator.
    pub fn error(&self, cause: OperatorError) -> TaskError {
        TaskError::new(
            self.name.clone(),
            self.subtask,
            format!("{}/{}", self.subtask + 1, self.parallelism),
            cause,
        )
    }
}

/// Turns a caught panic payload into text.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
