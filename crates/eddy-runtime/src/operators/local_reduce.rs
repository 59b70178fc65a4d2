//! The local phase of a two-phase keyed reduce (Flink SQL's mini-batch local-global
//! aggregation): chained before the shuffle, it reduces the values of each key it sees into one
//! and sends that on instead, so the keyed reduce after the shuffle gets one record per key and
//! batch where it would have got every record.
//!
//! The keyed reduce then emits one running value per partial instead of one per record (fewer
//! intermediate updates, as with Flink's mini-batch); the latest value of each key is the same,
//! provided the reduce function is associative and commutative and keeps the key (the record
//! it returns has the key of its inputs, as a rolling reduce's does). The buffer is handed on when it
//! holds `capacity` keys, when its oldest entry waited `max_latency_ms` of processing time,
//! before every watermark (no partial holds an element older than a watermark that passed it),
//! before every checkpoint barrier (so the operator has no state) and at the end of input.

use crate::chain::{Clock, OneInputOperator, OperatorContext};
use crate::checkpoint::CheckpointBarrier;
use crate::error::OperatorError;
use crate::operators::KeySelector;
use crate::output::Output;
use eddy_core::keygroup::StableHasher;
use eddy_core::{Data, Key, StreamRecord, Watermark};
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
/// greatest timestamp folded into it, and the key itself unless the selector borrows it from
/// the value (`key_by_ref`: a `String` key is then stored once, in the value).
struct Slot<K, T> {
    key: Option<K>,
    value: Option<T>,
    timestamp: i64,
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
    fn hand_on(&mut self, out: &mut Output<T>) {
        for slot in self.buffer.drain() {
            if let Some(value) = slot.value {
                out.push(StreamRecord {
                    value,
                    timestamp: slot.timestamp,
                });
            }
        }
        self.deadline = None;
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
                    if let Some(old) = slot.value.take() {
                        slot.value = Some(f(old, r.value));
                    }
                    slot.timestamp = slot.timestamp.max(r.timestamp);
                }
                None => {
                    let slot = Slot {
                        key: (!borrowed).then(|| key.clone()),
                        value: Some(r.value),
                        timestamp: r.timestamp,
                    };
                    self.buffer
                        .insert_unique(hash, slot, |e| e.key(sel).map_or(0, hash_key));
                }
            }
        }
        if self.buffer.len() >= self.capacity {
            self.hand_on(out);
        }
        Ok(())
    }

    fn process_watermark(
        &mut self,
        wm: Watermark,
        out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        self.hand_on(out);
        Ok(Some(wm))
    }

    fn on_processing_time(
        &mut self,
        now: i64,
        out: &mut Output<T>,
    ) -> Result<Option<Watermark>, OperatorError> {
        if self.deadline.is_some_and(|d| d <= now) {
            self.hand_on(out);
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
        self.hand_on(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Output<T>) -> Result<(), OperatorError> {
        self.hand_on(out);
        Ok(())
    }
}
