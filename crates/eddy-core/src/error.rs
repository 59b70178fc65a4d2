//! Base errors of the shared model: invalid graphs and invalid configuration.

use thiserror::Error;

/// Errors from building or validating the job model. All are caused by the user's program or
/// configuration and are reported before any task starts.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The program asks for something the graph model does not allow.
    #[error("invalid job graph: {0}")]
    InvalidGraph(String),
    /// A configuration key or value is wrong.
    #[error("invalid configuration for key '{key}': {reason}")]
    InvalidConfig {
        /// The configuration key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A parallelism value is out of range.
    #[error("invalid parallelism {value} for {what}: {reason}")]
    InvalidParallelism {
        /// What the parallelism was set on.
        what: String,
        /// The value given.
        value: usize,
        /// Why it is not allowed.
        reason: String,
    },
    /// The JobGraph could not be (de)serialized.
    #[error("job graph serialization: {0}")]
    Serialization(#[from] serde_json::Error),
}
