//! The seam between building a program and running it (Flink's `PipelineExecutor`).
//!
//! The DataStream API (`eddy-datastream`) turns a program into a [`JobProgram`] and hands it
//! to an executor; it does not know where the job runs. The embedded MiniCluster and the
//! `eddy` facade's local executor (which can also serve the REST API) implement this trait,
//! so the API crate does not depend on the control plane (gRPC, tokio).

use crate::factory::JobProgram;
use eddy_core::CoreError;

/// Runs a [`JobProgram`] somewhere and returns a handle to the running job.
pub trait PipelineExecutor {
    /// The handle to a started job (Flink's `JobClient`).
    type Client;
    /// Why a job could not be started; an invalid program is one reason.
    type Error: From<CoreError>;

    /// Starts the job and returns as soon as it runs. Errors found before anything runs are
    /// returned here.
    fn execute(&self, program: JobProgram) -> Result<Self::Client, Self::Error>;
}
