//! Test support shared by Eddy's integration tests and benchmarks (a dev-dependency only):
//! [`process`] starts real processes and clusters, [`output`] reads what the exactly-once file
//! sink made visible.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper fails by panicking

pub mod output;
pub mod process;

pub use output::{assert_same_lines, finished_lines};
pub use process::{
    field, get_json, job_id_of, patch, request, request_raw, text, Cluster, Proc, FAST,
};
