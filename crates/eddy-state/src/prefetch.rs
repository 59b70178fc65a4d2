//! Cache prefetch hints for the firing path: state and timer tables of millions of entries
//! are walked in an order known a few steps ahead, and each step was a cache miss.

use hashbrown::HashTable;

/// Starts loading `value`'s memory into the cache; changes nothing the program can see.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache: it reads nothing the program sees and cannot
    // fault; SSE, which provides it, is part of every x86_64 target.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            value as *const T as *const i8,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The bits of a hash that pick an entry's home bucket in `table` (hashbrown: the low bits).
#[inline]
pub(crate) fn bucket_mask<T>(table: &HashTable<T>) -> u64 {
    table.num_buckets().saturating_sub(1) as u64
}

/// Prefetches the home bucket of `hash` in `table`: the entry is there or a few buckets
/// further in the same probe group (usually the same or the next cache line); an empty home
/// bucket prefetches nothing.
#[inline]
pub(crate) fn prefetch_home<T>(table: &HashTable<T>, hash: u64) {
    if let Some(entry) = table.get_bucket((hash & bucket_mask(table)) as usize) {
        prefetch(entry);
    }
}
