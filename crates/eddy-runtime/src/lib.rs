//! Eddy's task runtime (DESIGN §3): what runs inside a TaskManager slot.
//!
//! Owns: the task thread's mailbox loop ([`task`]), operator chains and their one dynamic
//! boundary per batch ([`chain`]), in-memory channels with credit-based bounds ([`channel`]),
//! record writers and partitioners ([`output`]), the built-in operators ([`operators`]), the
//! user-facing function traits ([`functions`]), the source reader contract ([`source`]), the
//! watermark/idleness valve of task inputs ([`valve`]), the factories that turn a JobGraph
//! vertex into a task ([`factory`]) and the seam a built program is run through
//! ([`execution`]).
//!
//! Must not touch: job scheduling and deployment (eddy-cluster), the user API (eddy-datastream),
//! the state layout (eddy-state). Records move between operators of a chain by function call,
//! in batches; no per-record allocation, lock or dynamic call.
#![warn(missing_docs)]

pub mod chain;
pub mod channel;
pub mod checkpoint;
pub mod error;
pub mod execution;
pub mod factory;
pub mod functions;
pub mod operator_state;
pub mod operators;
pub mod output;
pub mod remote;
pub mod source;
pub mod task;
#[cfg(test)]
pub(crate) mod testing;
pub mod valve;
pub mod windowing;

pub use error::{FunctionError, FunctionResult, OperatorError, TaskError};
