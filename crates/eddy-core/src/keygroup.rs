//! Key groups: the unit in which keyed state is partitioned, snapshotted and rescaled.
//!
//! A key hashes (with [`stable_hash`], never a randomized hasher) into one of `max_parallelism`
//! key groups; subtask `i` of `p` owns the contiguous [`KeyGroupRange`] Flink assigns it, so a
//! snapshot taken at one parallelism can be restored at another.

use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// Flink's lower bound for the default max parallelism.
pub const DEFAULT_LOWER_BOUND_MAX_PARALLELISM: usize = 128;
/// Flink's upper bound for max parallelism (`1 << 15`).
pub const UPPER_BOUND_MAX_PARALLELISM: usize = 1 << 15;

/// Murmur3's 64-bit finalizer: spreads the bits of `h` so neighbouring keys land in different
/// key groups.
#[inline]
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// A deterministic [`Hasher`]: the same bytes give the same hash in every process, on every run
/// and on every platform (integers are hashed little-endian). Used for key groups, which must
/// agree between the subtask that partitions and the subtask that stores state.
#[derive(Clone, Copy, Debug, Default)]
pub struct StableHasher {
    state: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl StableHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

/// The little-endian value of the last 1 to 7 bytes of a key, zero-extended: the same value as
/// copying them into a zeroed `[u8; 8]`, read with at most three loads instead, because that
/// copy went through the stack and stalled on store forwarding for every short string key.
#[inline]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    if n >= 4 {
        let word = |b: &[u8]| b.try_into().map_or(0, u32::from_le_bytes) as u64;
        // Two overlapping reads: the shared bytes are equal, so or-ing them changes nothing.
        word(&rest[..4]) | (word(&rest[n - 4..]) << ((n - 4) * 8))
    } else {
        let byte = |i: usize| rest.get(i).copied().unwrap_or(0) as u64;
        byte(0)
            | (byte(n / 2) << ((n / 2) * 8))
            | (byte(n.saturating_sub(1)) << (n.saturating_sub(1) * 8))
    }
}

impl Hasher for StableHasher {
    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.state)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Mix in the length so "a" and "a\0" differ.
            self.add(tail_word(rest) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    #[inline]
    fn write_i8(&mut self, i: i8) {
        self.add(i as u8 as u64)
    }
    #[inline]
    fn write_i16(&mut self, i: i16) {
        self.add(i as u16 as u64)
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(i as u32 as u64)
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64)
    }
    #[inline]
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128)
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.add(i as i64 as u64)
    }
}

/// The stable hash of a key.
#[inline]
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = StableHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// The key group of a key: `stable_hash(key) % max_parallelism`.
#[inline]
pub fn assign_to_key_group<K: Hash + ?Sized>(key: &K, max_parallelism: usize) -> usize {
    (stable_hash(key) % max_parallelism as u64) as usize
}

/// The subtask that owns `key_group` (Flink's `computeOperatorIndexForKeyGroup`).
#[inline]
pub fn operator_index_for_key_group(
    max_parallelism: usize,
    parallelism: usize,
    key_group: usize,
) -> usize {
    key_group * parallelism / max_parallelism
}

/// Flink's default max parallelism for an operator of parallelism `p`:
/// `min(max(roundUpToPowerOfTwo(p + p/2), 128), 32768)`.
pub fn default_max_parallelism(parallelism: usize) -> usize {
    let wanted = (parallelism + parallelism / 2).max(1).next_power_of_two();
    wanted.clamp(
        DEFAULT_LOWER_BOUND_MAX_PARALLELISM,
        UPPER_BOUND_MAX_PARALLELISM,
    )
}

/// A contiguous, inclusive range of key groups owned by one subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyGroupRange {
    /// First key group (inclusive).
    pub start: usize,
    /// Last key group (inclusive). `end < start` means the range is empty.
    pub end: usize,
}

impl KeyGroupRange {
    /// The range `[start, end]`.
    pub fn new(start: usize, end: usize) -> Self {
        KeyGroupRange { start, end }
    }

    /// Every key group of an operator with this max parallelism (one subtask owns all).
    pub fn all(max_parallelism: usize) -> Self {
        KeyGroupRange::new(0, max_parallelism - 1)
    }

    /// The key groups subtask `index` of `parallelism` owns (Flink's
    /// `computeKeyGroupRangeForOperatorIndex`).
    pub fn for_operator_index(max_parallelism: usize, parallelism: usize, index: usize) -> Self {
        let start = (index * max_parallelism).div_ceil(parallelism);
        let end = ((index + 1) * max_parallelism - 1) / parallelism;
        KeyGroupRange { start, end }
    }

    /// How many key groups the range holds.
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            self.end - self.start + 1
        }
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key_group` is in the range.
    pub fn contains(&self, key_group: usize) -> bool {
        key_group >= self.start && key_group <= self.end
    }

    /// The key groups, in order.
    pub fn iter(&self) -> impl Iterator<Item = usize> {
        self.start..self.start + self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_partition_all_key_groups_and_agree_with_operator_index() {
        for max_p in [1usize, 7, 128, 1000] {
            for p in 1..=max_p.min(17) {
                let mut next = 0;
                for i in 0..p {
                    let r = KeyGroupRange::for_operator_index(max_p, p, i);
                    assert_eq!(r.start, next, "max_p={max_p} p={p} i={i}");
                    for kg in r.iter() {
                        assert_eq!(operator_index_for_key_group(max_p, p, kg), i);
                    }
                    next = r.start + r.len();
                }
                assert_eq!(next, max_p);
            }
        }
    }

    #[test]
    fn default_max_parallelism_matches_flink() {
        assert_eq!(default_max_parallelism(1), 128);
        assert_eq!(default_max_parallelism(100), 256);
        assert_eq!(default_max_parallelism(1000), 2048);
        assert_eq!(default_max_parallelism(100_000), 32768);
    }

    #[test]
    fn tail_word_is_the_zero_padded_little_endian_value() {
        let bytes: Vec<u8> = (0..7u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(0x81))
            .collect();
        for n in 1..=7 {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(tail_word(&bytes[..n]), u64::from_le_bytes(w), "{n} bytes");
        }
    }

    const PINNED_HASH_OF_1: u64 = 4028701401546325202;
    const PINNED_HASH_OF_FLINK: u64 = 8617134276386051589;

    #[test]
    fn stable_hash_is_fixed() {
        // These values must never change: they decide which subtask owns which key in a
        // savepoint.
        assert_eq!(stable_hash(&42u64), stable_hash(&42u64));
        assert_ne!(stable_hash("a"), stable_hash("b"));
        assert_eq!(stable_hash(&1i64), PINNED_HASH_OF_1);
        assert_eq!(stable_hash("flink"), PINNED_HASH_OF_FLINK);
        let spread: std::collections::HashSet<usize> = (0..10_000u64)
            .map(|k| assign_to_key_group(&k, 128))
            .collect();
        assert_eq!(spread.len(), 128);
    }
}
