//! The network buffer pool: a fixed number of fixed-size segments per taskmanager. Taking a
//! segment blocks while none is free, so the pool bounds the memory of data on its way out.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::Duration;

/// A bounded pool of equally sized byte segments.
pub struct NetworkBufferPool {
    segment_size: usize,
    total: usize,
    free: Mutex<Vec<Vec<u8>>>,
    available: Condvar,
}

impl std::fmt::Debug for NetworkBufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkBufferPool")
            .field("segment_size", &self.segment_size)
            .field("total", &self.total)
            .field("available", &self.available())
            .finish()
    }
}

/// One segment taken from the pool; it goes back when dropped.
pub struct Segment {
    data: Vec<u8>,
    pool: Arc<NetworkBufferPool>,
}

impl NetworkBufferPool {
    /// A pool of `total` segments of `segment_size` bytes. Memory is allocated lazily, the
    /// first time a segment is taken.
    pub fn new(total: usize, segment_size: usize) -> Arc<Self> {
        Arc::new(NetworkBufferPool {
            segment_size: segment_size.max(64),
            total: total.max(1),
            free: Mutex::new((0..total.max(1)).map(|_| Vec::new()).collect()),
            available: Condvar::new(),
        })
    }

    /// Bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Segments in the pool.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Segments not taken right now.
    pub fn available(&self) -> usize {
        self.free.lock().len()
    }

    /// Takes a segment, waiting while none is free; `None` once `cancelled` says so (checked at
    /// least every 100 ms).
    pub fn request(self: &Arc<Self>, cancelled: &dyn Fn() -> bool) -> Option<Segment> {
        let mut free = self.free.lock();
        loop {
            if let Some(mut data) = free.pop() {
                drop(free);
                if data.capacity() < self.segment_size {
                    data.reserve_exact(self.segment_size);
                }
                return Some(Segment {
                    data,
                    pool: self.clone(),
                });
            }
            if cancelled() {
                return None;
            }
            self.available
                .wait_for(&mut free, Duration::from_millis(100));
        }
    }

    fn recycle(&self, mut data: Vec<u8>) {
        data.clear();
        self.free.lock().push(data);
        self.available.notify_one();
    }
}

impl Segment {
    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.pool.segment_size - self.data.len()
    }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    pub fn put(&mut self, bytes: &[u8]) -> usize {
        let n = self.remaining().min(bytes.len());
        self.data.extend_from_slice(&bytes[..n]);
        n
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.pool.recycle(std::mem::take(&mut self.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_bounded_and_recycled() {
        let pool = NetworkBufferPool::new(2, 128);
        let a = pool.request(&|| false).unwrap();
        let mut b = pool.request(&|| false).unwrap();
        assert_eq!(pool.available(), 0);
        // Exhausted: a cancelled request returns instead of waiting forever.
        assert!(pool.request(&|| true).is_none());
        assert_eq!(b.put(&[7u8; 200]), 128);
        assert_eq!(b.remaining(), 0);
        drop(a);
        let c = pool.request(&|| false).unwrap();
        assert!(c.is_empty());
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn a_waiting_request_gets_the_recycled_segment() {
        let pool = NetworkBufferPool::new(1, 64);
        let held = pool.request(&|| false).unwrap();
        let p2 = pool.clone();
        let t = std::thread::spawn(move || p2.request(&|| false).map(|s| s.len()));
        std::thread::sleep(Duration::from_millis(30));
        drop(held);
        assert_eq!(t.join().unwrap(), Some(0));
    }
}
