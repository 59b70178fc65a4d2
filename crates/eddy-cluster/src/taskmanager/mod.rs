//! The taskmanager's roles: the [`task_executor`] that runs the subtasks it is sent (one
//! thread each, launched by `launch`), the gateway through which the jobmanager calls it
//! ([`gateway`]), and the gRPC services of the taskmanager process ([`rpc_services`]).

pub mod gateway;
pub(crate) mod launch;
pub mod rpc_services;
pub mod task_executor;

pub use rpc_services::{start_taskmanager, TaskManagerHandle};
