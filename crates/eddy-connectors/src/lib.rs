//! Eddy's connectors (DESIGN §7): the sources and sinks of the DataStream API.
//!
//! Owns: readers for collections, number sequences, generated data ([`datagen`]), text files
//! and sockets; the exactly-once file sink ([`file_sink`]); the Nexmark generator
//! ([`nexmark`]). The plain sinks live in `eddy_runtime::operators::sink` because they are
//! plain operators, and the two-phase commit operator in `eddy_runtime::operators::two_phase`;
//! they are re-exported here.
//! Must not touch: scheduling, the task loop. Later issues add Kafka and Parquet, and move
//! sources onto Flink's full split-based Source API (enumerators); the parallel built-in
//! sources already checkpoint splits ([`split`]) so they can be rescaled.
#![warn(missing_docs)]

pub mod collection;
pub mod datagen;
pub mod file;
pub mod file_sink;
pub mod nexmark;
pub mod sequence;
pub mod socket;
pub mod split;

pub use eddy_runtime::operators::sink::{CollectSink, DiscardSink, PrintSink, TextFileSink};
pub use eddy_runtime::operators::two_phase::{
    SinkContext, TwoPhaseCommitSink, TwoPhaseCommitSinkOperator,
};
pub use file_sink::{FileSink, FileTransaction};

use eddy_runtime::OperatorError;

/// Encodes a position of one or two integers for `snapshot_position`.
pub(crate) fn encode_position(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes a position written by [`encode_position`].
pub(crate) fn decode_position(bytes: &[u8], n: usize) -> Result<Vec<u64>, OperatorError> {
    if bytes.len() != n * 8 {
        return Err(OperatorError::BadInput(format!(
            "source position has {} bytes, expected {}",
            bytes.len(),
            n * 8
        )));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect())
}
