//! The local phase of a two-phase keyed reduce (Flink SQL's mini-batch local-global
//! aggregation): chained before the shuffle, it reduces the values of each key it sees into one
//! and sends that on instead, so the keyed reduce after the shuffle gets one record per key and
//! batch where it would have got every record.
//!
//! The keyed reduce then emits one running value per partial instead of one per record (fewer
//! intermediate updates, as with Flink's mini-batch), stamped with the latest record's time;
//! the latest value of each key is the same, provided the reduce function is associative and
//! commutative and keeps the key (the partial is routed by its own key; a changed key fails
//! the job). The buffer is emitted once it holds `capacity` keys (checked after each batch),
//! when its oldest entry waited `max_latency_ms` of processing time, before every watermark
//! and before the input is marked idle (no partial arrives behind a watermark that passed its
//! records), before every checkpoint barrier (so the operator has no state) and at the end of
//! input.

use crate::chain::{OneInputOperator, OperatorContext};
use crate::checkpoint::CheckpointBarrier;
use crate::environment::Clock;
use crate::error::OperatorError;
use crate::operators::KeySelector;
use crate::output::Output;
use eddy_core::keygroup::StableHasher;
use eddy_core::{Data, Key, StreamRecord, Watermark, WatermarkStatus};
use hashbrown::HashTable;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// How many keys the local phase holds before it hands them all on.
pub const DEFAULT_LOCAL_REDUCE_KEYS: usize = 16_384;
/// How long (processing time, ms) a value may wait in the local phase.
pub const DEFAULT_LOCAL_REDUCE_LATENCY_MS: i64 = 100;

#[inline]
fn hash_key<K: Hash>(key: &K) -> u64 {
    let mut h = StableHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// One buffered key: the reduced value (`None` only while the reduce function runs), the
/// timestamp of the latest record folded into it, and the key itself unless the selector
/// borrows it from the value (`key_by_ref`: a `String` key is then stored once, in the value).
struct Slot<K, T> {
    key: Option<K>,
    value: Option<T>,
    timestamp: i64,
    /// The key's hash when the slot was made: the table grows without rehashing keys, and a
    /// key the reduce function changed is found out.
    hash: u64,
}

impl<K: 'static, T: 'static> Slot<K, T> {
    #[inline]
    fn key<'a>(&'a self, selector: &dyn KeySelector<T, K>) -> Option<&'a K> {
        match &self.key {
            Some(k) => Some(k),
            None => self.value.as_ref().and_then(|v| selector.key_ref(v)),
        }
    }
}

/// Reduces values per key before the shuffle (see the module docs).
pub struct LocalReduceOperator<T, K, F> {
    selector: Arc<dyn KeySelector<T, K>>,
    f: F,
    capacity: usize,
    max_latency_ms: i64,
    buffer: HashTable<Slot<K, T>>,
    /// When the buffer must be handed on (processing time), while it holds anything.
    deadline: Option<i64>,
    clock: Option<Arc<dyn Clock>>,
}

impl<T, K, F> LocalReduceOperator<T, K, F> {
    /// A local phase holding at most `capacity` keys for at most `max_latency_ms`.
    pub fn new(
        selector: Arc<dyn KeySelector<T, K>>,
        f: F,
        capacity: usize,
        max_latency_ms: i64,
    ) -> Self {
        LocalReduceOperator {
            selector,
            f,
            capacity: capacity.max(1),
            max_latency_ms: max_latency_ms.max(0),
            buffer: HashTable::new(),
            deadline: None,
            clock: None,
        }
    }
}

impl<T: Data, K: Key, F> LocalReduceOperator<T, K, F> {
    fn emit_buffer(&mut self, out: &mut Output<T>) -> Result<(), OperatorError> {
        self.check_keys()?;
        for slot in self.buffer.drain() {
            if let Some(value) = slot.value {
                out.push(StreamRecord {
                    value,
                    timestamp: slot.timestamp,
                });
            }
        }
        self.deadline = None;
        Ok(())
    }

    /// Fails if the reduce function changed a key: a partial is routed by its own key, so it
    /// would carry one key's records into another key's state. Checked once per partial, as
    /// it is emitted (per record it cost a tenth of the local phase).
    fn check_keys(&self) -> Result<(), OperatorError> {
        let sel = &*self.selector;
        for slot in self.buffer.iter() {
            let Some(value) = &slot.value else {
                return Err(OperatorError::Internal(
                    "local reduce: a buffered value is missing".into(),
                ));
            };
            let intact = match (&slot.key, sel.key_ref(value)) {
                (Some(key), _) => *key == sel.get_key(value),
                (None, Some(key)) => hash_key(key) == slot.hash,
                (None, None) => false,
            };
            if !intact {
                return Err(OperatorError::User(
                    "reduce_two_phase: the reduce function returned a record with another key \
                     than its inputs'; a two-phase reduce must keep the key"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

impl<T, K, F> OneInputOperator for LocalReduceOperator<T, K, F>
where
    T: Data,
    K: Key,
    F: FnMut(T, T) -> T + Send + 'static,
{
    type In = T;
    type Out = T;

    fn open(&mut self, ctx: &mut OperatorContext<'_>) -> Result<(), OperatorError> {
        self.clock = Some(ctx.env.clock.clone());
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: &mut Vec<StreamRecord<T>>,
        out: &mut Output<T>,
    ) -> Result<(), OperatorError> {
        if self.deadline.is_none() && !batch.is_empty() {
            if let Some(c) = &self.clock {
                self.deadline = Some(c.now_ms().saturating_add(self.max_latency_ms));
            }
        }
        let (sel, f) = (&*self.selector, &mut self.f);
        for r in batch.drain(..) {
            let owned;
            let (key, borrowed) = match sel.key_ref(&r.value) {
                Some(k) => (k, true),
                None => {
                    owned = sel.get_key(&r.value);
                    (&owned, false)
                }
            };
            let hash = hash_key(key);
            match self.buffer.find_mut(hash, |e| e.key(sel) == Some(key)) {
                Some(slot) => {
                    // Taken for the reduce function, which consumes the old value, and put
                    // back in the same slot.
                    let old = slot.value.take().ok_or_else(|| {
                        OperatorError::Internal("local reduce: a buffered value is missing".into())
                    })?;
                    let new = f(old, r.value);
                    slot.value = Some(new);
                    // As `reduce` would have: the latest value carries the latest record's time.
                    slot.timestamp = r.timestamp;
                }
                None => {
                    let slot = Slot {
                        key: (!borrowed).then(|| key.clone()),
                        value: Some(r.value),
                        timestamp: r.timestamp,
                        hash,
                    };
                    self.buffer.insert_unique(hash, slot, |e| e.hash);
                }
            }
        }
        if self.buffer.len() >= self.capacity {
            self.emit_buffer(out)?;
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        self.emit_buffer(out)?;
        Ok(Some(wm))
    }

    fn process_watermark_status(
        &mut self,
        status: WatermarkStatus,
        out: &mut Output<T>,
    ) -> Result<Option<WatermarkStatus>, OperatorError> {
        // Downstream stops waiting for an idle input's watermarks: what is buffered must not
        // arrive behind the others'.
        if status == WatermarkStatus::Idle {
            self.emit_buffer(out)?;
        }
        Ok(Some(status))
    }

    fn on_processing_time(
        &mut self,
        now: i64,
        out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        if self.deadline.is_some_and(|d| d <= now) {
            self.emit_buffer(out)?;
        }
        Ok(None)
    }

    fn next_processing_time(&self) -> Option<i64> {
        self.deadline
    }

    fn prepare_snapshot_pre_barrier(
        &mut self,
        _barrier: &CheckpointBarrier,
        out: &mut Output<T>,
    ) -> Result<(), OperatorError> {
        self.emit_buffer(out)?;
        Ok(())
    }

    fn finish(&mut self, out: &mut Output<T>) -> Result<(), OperatorError> {
        self.emit_buffer(out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::{FnKeyRefSelector, FnKeySelector};
    use crate::testing::{barrier, sink, take_sorted};

    type Word = (String, u64);

    fn words(ws: &[(&str, i64)]) -> Vec<StreamRecord<Word>> {
        ws.iter()
            .map(|&(w, t)| StreamRecord {
                value: (w.to_string(), 1),
                timestamp: t,
            })
            .collect()
    }

    fn word_of(w: &Word) -> &String {
        &w.0
    }

    /// `key_by_ref` or `key_by` on the word.
    fn selector(borrowed: bool) -> Arc<dyn KeySelector<Word, String>> {
        if borrowed {
            Arc::new(FnKeyRefSelector(word_of))
        } else {
            Arc::new(FnKeySelector(|w: &Word| w.0.clone()))
        }
    }

    fn add(a: Word, b: Word) -> Word {
        (a.0, a.1 + b.1)
    }

    #[test]
    fn reduces_per_key_with_the_latest_time_and_hands_on_before_watermarks_idleness_barriers() {
        for borrowed in [false, true] {
            let selector = selector(borrowed);
            let (records, mut out) = sink::<Word>();
            let mut op = LocalReduceOperator::new(selector, add, 100, 1_000);
            let mut b = words(&[("a", 5), ("b", 3), ("a", 9), ("a", 7)]);
            op.process_batch(&mut b, &mut out).unwrap();
            out.flush_buffered().unwrap();
            assert!(records.lock().is_empty());
            op.process_watermark(Watermark::new(9), &mut out).unwrap();
            out.flush_buffered().unwrap();
            let got = take_sorted(&records);
            assert_eq!(
                got,
                vec![(("a".to_string(), 3), 7), (("b".to_string(), 1), 3)],
                "borrowed: {borrowed}"
            );
            op.process_batch(&mut words(&[("c", 1)]), &mut out).unwrap();
            op.process_watermark_status(WatermarkStatus::Idle, &mut out)
                .unwrap();
            out.flush_buffered().unwrap();
            assert_eq!(records.lock().drain(..).count(), 1, "idle");
            op.process_batch(&mut words(&[("d", 1)]), &mut out).unwrap();
            op.prepare_snapshot_pre_barrier(&barrier(1), &mut out)
                .unwrap();
            out.flush_buffered().unwrap();
            assert_eq!(records.lock().drain(..).count(), 1, "barrier");
        }
    }

    #[test]
    fn a_reduce_function_that_changes_the_key_fails_clearly() {
        for borrowed in [false, true] {
            let selector = selector(borrowed);
            let (records, mut out) = sink::<Word>();
            let rename = |a: Word, b: Word| (format!("{}!", a.0), a.1 + b.1);
            let mut op = LocalReduceOperator::new(selector, rename, 100, 1_000);
            // Found out when the partial is emitted, before it leaves.
            op.process_batch(&mut words(&[("a", 1), ("a", 2)]), &mut out)
                .unwrap();
            let e = op.finish(&mut out).unwrap_err().to_string();
            out.flush_buffered().unwrap();
            assert!(e.contains("must keep the key"), "{e}");
            assert!(records.lock().is_empty(), "nothing was emitted");
        }
    }
}
