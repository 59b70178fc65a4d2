//! Eddy's task runtime (DESIGN §3): what runs inside a TaskManager slot.
//!
//! Owns: the task thread's mailbox loop and its checkpoint side ([`task`]), what a task sees
//! of its job ([`environment`]) and how it is woken ([`waker`]), operator chains ([`chain`]),
//! the one dynamic boundary per batch between chained operators and where records go next
//! ([`output`]: `Input`, record writers, partitioners), in-memory channels with credit-based
//! bounds ([`channel`]) and their network half ([`remote`]), the built-in operators and the
//! key partitioners ([`operators`]), the user-facing function traits ([`functions`]), the
//! source reader contract ([`source`]), the watermark/idleness valve of task inputs
//! ([`valve`]), the task side of checkpoints ([`checkpoint`]: barriers, alignment, snapshots,
//! storage), the factories that turn a JobGraph vertex into a task ([`factory`]) and the seam a
//! built program is run through ([`execution`]).
//!
//! Layering (no module imports one above it): `waker`, `error`, `checkpoint`, `valve`,
//! `source` at the bottom; then `channel` (with `remote`, its network half: the one pair that
//! imports each other), `environment`, `output`, `chain`, `operator_state`,
//! `functions`, `operators`, `windowing`; then `task`, `factory`, `execution`.
//!
//! Must not touch: job scheduling and deployment (eddy-cluster), the user API (eddy-datastream),
//! the state layout (eddy-state). Records move between operators of a chain by function call,
//! in batches; no per-record allocation, lock or dynamic call.
#![warn(missing_docs)]

pub mod chain;
pub mod channel;
pub mod checkpoint;
pub mod environment;
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
pub mod waker;
pub mod windowing;

pub use error::{FunctionError, FunctionResult, OperatorError, TaskError};
