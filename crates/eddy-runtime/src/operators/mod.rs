//! The built-in operators: stateless transformations, keyed process and reduce, two-input
//! operators (co-process, interval join), timestamp assignment, sinks, and the two-phase commit
//! operator of exactly-once sinks.

pub mod basic;
pub mod broadcast;
pub mod co;
pub mod interval_join;
pub mod keyed;
pub mod local_reduce;
pub mod sink;
pub mod two_phase;
pub mod watermark;

/// The operator side of a user function's checkpoint hooks: `snapshot_state` gathers the
/// function's operator state, `notify_checkpoint_complete` passes completion on. For operators
/// whose only state is the function's (`$f` is the field holding it).
macro_rules! function_checkpoint_hooks {
    ($f:ident) => {
        fn snapshot_state(
            &mut self,
            barrier: &crate::checkpoint::CheckpointBarrier,
        ) -> Result<crate::checkpoint::OperatorSubtaskState, OperatorError> {
            let mut state = crate::checkpoint::OperatorSubtaskState::default();
            let f = &mut self.$f;
            crate::operator_state::snapshot_function(barrier, &mut state, |c| f.snapshot_state(c))?;
            Ok(state)
        }

        fn notify_checkpoint_complete(
            &mut self,
            id: crate::checkpoint::CheckpointId,
        ) -> Result<(), OperatorError> {
            Ok(self.$f.notify_checkpoint_complete(id)?)
        }
    };
}
pub(crate) use function_checkpoint_hooks;

use crate::environment::Clock;
use crate::error::OperatorError;
use crate::output::KeyPartitioner;
use eddy_core::{Data, Key, StreamRecord};
use eddy_state::KeyedStateBackend;
use std::sync::Arc;

/// Extracts the key of a record (`key_by`). Called through one dynamic call per batch (or per
/// record for [`set_current_key`](Self::set_current_key)): the provided methods are
/// monomorphised for each implementation.
pub trait KeySelector<T, K>: Send + Sync + 'static {
    /// The key of one value.
    fn get_key(&self, value: &T) -> K;

    /// The key of one value borrowed from it, if this selector can (`key_by_ref`): lets an
    /// operator look a key up without cloning it.
    #[inline]
    fn key_ref<'a>(&self, value: &'a T) -> Option<&'a K> {
        let _ = value;
        None
    }

    /// The keys of a batch, appended to `out`.
    fn keys(&self, batch: &[StreamRecord<T>], out: &mut Vec<K>) {
        out.extend(batch.iter().map(|r| self.get_key(&r.value)));
    }

    /// Makes `value`'s key the current key of `backend`, before the value is handed to the
    /// operator's function (which may consume it).
    /// A borrowed key is cloned into the previous current key's allocation (`clone_from`), so
    /// a `String` key costs no allocation per record.
    #[inline]
    fn set_current_key(&self, value: &T, backend: &mut KeyedStateBackend<K>)
    where
        K: Key,
    {
        match self.key_ref(value) {
            Some(key) => backend.set_current_key_from(key),
            None => backend.set_current_key(self.get_key(value)),
        }
    }

    /// For each record, the subtask that owns its key group (hashing the borrowed key where
    /// the selector can).
    fn key_channels(
        &self,
        batch: &[StreamRecord<T>],
        num_channels: usize,
        max_parallelism: usize,
        out: &mut Vec<u32>,
    ) where
        K: std::hash::Hash,
    {
        use eddy_core::keygroup::{assign_to_key_group, operator_index_for_key_group};
        out.extend(batch.iter().map(|r| {
            let kg = match self.key_ref(&r.value) {
                Some(key) => assign_to_key_group(key, max_parallelism),
                None => assign_to_key_group(&self.get_key(&r.value), max_parallelism),
            };
            operator_index_for_key_group(max_parallelism, num_channels, kg) as u32
        }));
    }
}

/// A closure as a [`KeySelector`].
pub struct FnKeySelector<F>(pub F);

impl<T, K, F: Fn(&T) -> K + Send + Sync + 'static> KeySelector<T, K> for FnKeySelector<F> {
    #[inline]
    fn get_key(&self, value: &T) -> K {
        (self.0)(value)
    }
}

/// A closure borrowing the key from the value as a [`KeySelector`] (`key_by_ref`): partitioning,
/// keyed operators and local pre-aggregation use the borrowed key
/// ([`KeySelector::key_ref`]), so a `String` key costs no allocation per record.
pub struct FnKeyRefSelector<F>(pub F);

impl<T, K: Clone, F: Fn(&T) -> &K + Send + Sync + 'static> KeySelector<T, K>
    for FnKeyRefSelector<F>
{
    #[inline]
    fn get_key(&self, value: &T) -> K {
        (self.0)(value).clone()
    }

    #[inline]
    fn key_ref<'a>(&self, value: &'a T) -> Option<&'a K> {
        Some((self.0)(value))
    }
}

/// Processing time for an operator: the task's clock, read once per batch.
pub(crate) fn now(clock: &Option<Arc<dyn Clock>>) -> i64 {
    clock.as_ref().map(|c| c.now_ms()).unwrap_or(0)
}

/// The partitioner of a `key_by` edge (Flink's `KeyGroupStreamPartitioner`): each record goes
/// to the subtask owning its key's key group.
pub struct KeyGroupStreamPartitioner<T, K> {
    /// Extracts the key.
    pub selector: Arc<dyn KeySelector<T, K>>,
}

impl<T: Data, K: Key> KeyPartitioner<T> for KeyGroupStreamPartitioner<T, K> {
    fn select(
        &self,
        batch: &[StreamRecord<T>],
        n: usize,
        max_parallelism: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), OperatorError> {
        self.selector.key_channels(batch, n, max_parallelism, out);
        Ok(())
    }
}

/// The partitioner of a `partition_custom` edge (Flink's `CustomPartitionerWrapper`): a user
/// function picks the subtask from the key, `partitioner(key, num_partitions)`.
pub struct CustomPartitionerWrapper<T, K, P> {
    /// Extracts the key.
    pub selector: Arc<dyn KeySelector<T, K>>,
    /// Picks the subtask.
    pub partitioner: P,
}

impl<T: Data, K: Key, P: Fn(&K, usize) -> usize + Send + Sync + 'static> KeyPartitioner<T>
    for CustomPartitionerWrapper<T, K, P>
{
    fn select(
        &self,
        batch: &[StreamRecord<T>],
        n: usize,
        _max_parallelism: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), OperatorError> {
        for r in batch {
            let c = (self.partitioner)(&self.selector.get_key(&r.value), n);
            if c >= n {
                return Err(OperatorError::User(
                    format!("custom partitioner returned channel {c}, but there are only {n}")
                        .into(),
                ));
            }
            out.push(c as u32);
        }
        Ok(())
    }
}
