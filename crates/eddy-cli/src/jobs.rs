//! The jobs built into the generic `eddy` binary: every program of `examples/`, under the same
//! name and with the same arguments (`eddy run word_count --input F --output D -p 4`). The
//! example files are compiled in here as they are; their `main` functions are unused.

use crate::JobRegistry;

#[allow(dead_code)]
#[path = "../../../examples/backpressure.rs"]
mod backpressure;

#[allow(dead_code)]
#[path = "../../../examples/count_with_timeout.rs"]
mod count_with_timeout;

#[allow(dead_code)]
#[path = "../../../examples/fraud_detection.rs"]
mod fraud_detection;

#[allow(dead_code)]
#[path = "../../../examples/session_window.rs"]
mod session_window;

#[allow(dead_code)]
#[path = "../../../examples/socket_word_count.rs"]
mod socket_word_count;

#[allow(dead_code)]
#[path = "../../../examples/window_count.rs"]
mod window_count;

#[allow(dead_code)]
#[path = "../../../examples/window_word_count.rs"]
mod window_word_count;

#[allow(dead_code)]
#[path = "../../../examples/word_count.rs"]
mod word_count;

/// The registry of built-in jobs.
pub fn builtin() -> JobRegistry {
    JobRegistry::new(&[
        backpressure::JOB,
        count_with_timeout::JOB,
        fraud_detection::JOB,
        session_window::JOB,
        socket_word_count::JOB,
        window_count::JOB,
        window_word_count::JOB,
        word_count::JOB,
    ])
}
