//! The crate's tests: every state kind (plain and namespaced), TTL, registration rules,
//! snapshots with rescaling, and the timer service.

mod snapshots;
mod states;
mod timers;
mod ttl;

use crate::KeyedStateBackend;
use eddy_core::keygroup::KeyGroupRange;

pub(crate) const MAX_P: usize = 128;

pub(crate) fn backend() -> KeyedStateBackend<String> {
    KeyedStateBackend::new(KeyGroupRange::all(MAX_P), MAX_P)
}

pub(crate) fn k(s: &str) -> String {
    s.to_string()
}

#[test]
fn table_hash_is_independent_of_the_key_group() {
    // All keys of one key group share `stable_hash % max_parallelism`; the table hash must not,
    // or every key of a group would land in the same buckets.
    let same_group: Vec<u64> = (0u64..)
        .filter(|key| eddy_core::keygroup::assign_to_key_group(key, MAX_P) == 0)
        .take(1_000)
        .collect();
    let low_bits: std::collections::HashSet<u64> = same_group
        .iter()
        .map(|key| crate::table::salted_hash(&(key, &())) % MAX_P as u64)
        .collect();
    assert!(low_bits.len() > MAX_P / 2, "{}", low_bits.len());
}
