//! Order-independent checksums of query output, so a benchmark run is checked without
//! collecting its output: the count and the wrapping sum of a stable hash of every row
//! (insert-only queries), or of the final row per key (updating queries such as q4).

use eddy::core::keygroup::{stable_hash, StableHasher};
use eddy::core::{Data, StreamRecord};
use eddy::datastream::DataStream;
use eddy::runtime::chain::OneInputOperator;
use eddy::runtime::factory::OneInputFactory;
use eddy::runtime::output::Output;
use eddy::runtime::OperatorError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};
use std::sync::{Arc, Mutex};

/// Rows seen and the wrapping sum of their hashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// Rows.
    pub rows: u64,
    /// Wrapping sum of `stable_hash(row)`.
    pub sum: u64,
}

impl Checksum {
    /// Adds one row.
    #[inline]
    pub fn add<T: Hash>(&mut self, row: &T) {
        self.add_hash(stable_hash(row));
    }

    /// Adds one row by its `stable_hash`.
    #[inline]
    pub fn add_hash(&mut self, hash: u64) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    /// Adds another checksum (of disjoint rows).
    pub fn merge(&mut self, other: Checksum) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// The checksum of `rows`.
    pub fn of<'a, T: Hash + 'a>(rows: impl IntoIterator<Item = &'a T>) -> Self {
        let mut c = Checksum::default();
        for r in rows {
            c.add(r);
        }
        c
    }

    /// `rows:sum` in hex, as printed by the harness.
    pub fn to_hex(&self) -> String {
        format!("{}:{:016x}", self.rows, self.sum)
    }
}

/// Where the checksum sinks of a job add their parts.
pub type SharedChecksum = Arc<Mutex<Checksum>>;

/// Which rows count: all, or the last per key.
type KeyOf<T> = fn(&T) -> i64;

/// The hash of the last row per key of an updating stream (keys are ids or hashes already: the
/// engine's stable hasher mixes them well enough, no need for SipHash).
type LastRows = HashMap<i64, u64, BuildHasherDefault<StableHasher>>;

/// A sink adding its subtask's rows to a shared checksum when its input ends.
struct ChecksumSink<T> {
    target: SharedChecksum,
    local: Checksum,
    upsert: Option<(KeyOf<T>, LastRows)>,
    report: Option<String>,
}

impl<T: Data + Hash> OneInputOperator for ChecksumSink<T> {
    type In = T;
    type Out = ();

    #[inline]
    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        _out: &mut Output<()>,
    ) -> Result<(), OperatorError> {
        match &mut self.upsert {
            None => {
                for r in batch.drain(..) {
                    self.local.add(&r.value);
                }
            }
            Some((key, last)) => {
                for r in batch.drain(..) {
                    last.insert(key(&r.value), stable_hash(&r.value));
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Output<()>) -> Result<(), OperatorError> {
        if let Some((_, last)) = &self.upsert {
            for &h in last.values() {
                self.local.add_hash(h);
            }
        }
        let mut t = self
            .target
            .lock()
            .map_err(|_| OperatorError::Internal("checksum lock poisoned".into()))?;
        t.merge(std::mem::take(&mut self.local));
        if let Some(label) = &self.report {
            // The last line a process prints is the checksum of all its sink subtasks.
            println!(
                "{label}: output checksum so far in this process {}",
                t.to_hex()
            );
        }
        Ok(())
    }
}

/// Ends `stream` in a checksum sink over all rows; for an updating stream keyed by `key`
/// (partitioned by it already), over the last row per key.
pub fn checksum_sink<T: Data + Hash>(
    stream: &DataStream<T>,
    target: &SharedChecksum,
    upsert: Option<KeyOf<T>>,
    report: Option<String>,
) {
    let target = target.clone();
    stream
        .transform::<()>(
            "Checksum Sink",
            Arc::new(OneInputFactory::new(move || ChecksumSink {
                target: target.clone(),
                local: Checksum::default(),
                upsert: upsert.map(|k| (k, LastRows::default())),
                report: report.clone(),
            })),
            false,
        )
        .name("Checksum Sink");
}
