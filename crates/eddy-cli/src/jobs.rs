//! The jobs built into the generic `eddy` binary: every program of `examples/`, under the same
//! name and with the same arguments (`eddy run word_count --input F --output D -p 4`). The
//! example files are compiled in here as they are; their `main` functions are unused.

use crate::JobRegistry;

#[allow(dead_code)]
#[path = "../../../examples/word_count.rs"]
mod word_count;

#[allow(dead_code)]
#[path = "../../../examples/window_count.rs"]
mod window_count;

/// The registry of built-in jobs.
pub fn builtin() -> JobRegistry {
    JobRegistry::new(&[word_count::JOB, window_count::JOB])
}
