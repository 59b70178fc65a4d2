//! Evictors remove elements from a window before and/or after the window function runs
//! (Flink's `Evictor`): [`CountEvictor`], [`TimeEvictor`], [`DeltaEvictor`], or your own.
//! A window with an evictor keeps its elements (not an accumulator) so they can be evicted.

use super::window::{TimestampedValue, Window};
use std::sync::Arc;
use std::time::Duration;

/// What an evictor sees besides the elements.
#[derive(Clone, Copy, Debug)]
pub struct EvictorContext {
    /// Processing time now, ms.
    pub current_processing_time: i64,
    /// The operator's current watermark.
    pub current_watermark: i64,
}

/// Removes elements from a window's contents (Flink's `Evictor`). Elements are in the order
/// they were added; remove from `elements` in place.
pub trait Evictor<T, W: Window>: Send + 'static {
    /// Before the window function sees the elements.
    fn evict_before(
        &mut self,
        elements: &mut Vec<TimestampedValue<T>>,
        window: &W,
        ctx: &EvictorContext,
    );
    /// After the window function has run.
    fn evict_after(
        &mut self,
        elements: &mut Vec<TimestampedValue<T>>,
        window: &W,
        ctx: &EvictorContext,
    );
}

/// Keeps at most `max_count` elements, dropping the oldest (Flink's `CountEvictor`).
#[derive(Clone, Copy, Debug)]
pub struct CountEvictor {
    max_count: usize,
    do_evict_after: bool,
}

impl CountEvictor {
    /// Keeps the last `max_count` elements, evicting before the function.
    pub fn of(max_count: usize) -> Self {
        CountEvictor {
            max_count,
            do_evict_after: false,
        }
    }
    /// Keeps the last `max_count` elements, evicting after the function if `do_evict_after`.
    pub fn of_after(max_count: usize, do_evict_after: bool) -> Self {
        CountEvictor {
            max_count,
            do_evict_after,
        }
    }
    fn evict<T>(&self, elements: &mut Vec<TimestampedValue<T>>) {
        if elements.len() > self.max_count {
            let n = elements.len() - self.max_count;
            elements.drain(..n);
        }
    }
}

impl<T, W: Window> Evictor<T, W> for CountEvictor {
    fn evict_before(&mut self, e: &mut Vec<TimestampedValue<T>>, _: &W, _: &EvictorContext) {
        if !self.do_evict_after {
            self.evict(e)
        }
    }
    fn evict_after(&mut self, e: &mut Vec<TimestampedValue<T>>, _: &W, _: &EvictorContext) {
        if self.do_evict_after {
            self.evict(e)
        }
    }
}

/// Keeps only elements within `window_size` of the newest element's timestamp (Flink's
/// `TimeEvictor`): elements with `timestamp <= max_timestamp - window_size` go.
#[derive(Clone, Copy, Debug)]
pub struct TimeEvictor {
    window_size: i64,
    do_evict_after: bool,
}

impl TimeEvictor {
    /// Evicts before the function.
    pub fn of(window_size: Duration) -> Self {
        Self::of_after(window_size, false)
    }
    /// Evicts after the function if `do_evict_after`.
    pub fn of_after(window_size: Duration, do_evict_after: bool) -> Self {
        TimeEvictor {
            window_size: i64::try_from(window_size.as_millis()).unwrap_or(i64::MAX),
            do_evict_after,
        }
    }
    fn evict<T>(&self, elements: &mut Vec<TimestampedValue<T>>) {
        // Elements without timestamps cannot be judged by time: keep everything then, as Flink.
        if !elements.iter().any(|e| e.has_timestamp()) {
            return;
        }
        let max = elements
            .iter()
            .map(|e| e.timestamp)
            .max()
            .unwrap_or(i64::MIN);
        let cutoff = max.saturating_sub(self.window_size);
        elements.retain(|e| e.timestamp > cutoff);
    }
}

impl<T, W: Window> Evictor<T, W> for TimeEvictor {
    fn evict_before(&mut self, e: &mut Vec<TimestampedValue<T>>, _: &W, _: &EvictorContext) {
        if !self.do_evict_after {
            self.evict(e)
        }
    }
    fn evict_after(&mut self, e: &mut Vec<TimestampedValue<T>>, _: &W, _: &EvictorContext) {
        if self.do_evict_after {
            self.evict(e)
        }
    }
}

/// Distance between two elements, for [`DeltaEvictor`].
pub type DeltaFunction<T> = Arc<dyn Fn(&T, &T) -> f64 + Send + Sync>;

/// Evicts elements whose delta to the newest element is at least `threshold` (Flink's
/// `DeltaEvictor`).
pub struct DeltaEvictor<T> {
    threshold: f64,
    delta: DeltaFunction<T>,
    do_evict_after: bool,
}

impl<T> Clone for DeltaEvictor<T> {
    fn clone(&self) -> Self {
        DeltaEvictor {
            threshold: self.threshold,
            delta: self.delta.clone(),
            do_evict_after: self.do_evict_after,
        }
    }
}

impl<T> DeltaEvictor<T> {
    /// Evicts before the function.
    pub fn of(threshold: f64, delta: impl Fn(&T, &T) -> f64 + Send + Sync + 'static) -> Self {
        DeltaEvictor {
            threshold,
            delta: Arc::new(delta),
            do_evict_after: false,
        }
    }
    /// Evicts after the function instead.
    pub fn evicting_after(mut self) -> Self {
        self.do_evict_after = true;
        self
    }
    fn evict(&self, elements: &mut Vec<TimestampedValue<T>>) {
        let Some(last) = elements.last() else { return };
        let keep: Vec<bool> = elements
            .iter()
            .map(|e| (self.delta)(&e.value, &last.value) < self.threshold)
            .collect();
        let mut keep = keep.into_iter();
        elements.retain(|_| keep.next().unwrap_or(true));
    }
}

impl<T: Send + 'static, W: Window> Evictor<T, W> for DeltaEvictor<T> {
    fn evict_before(&mut self, e: &mut Vec<TimestampedValue<T>>, _: &W, _: &EvictorContext) {
        if !self.do_evict_after {
            self.evict(e)
        }
    }
    fn evict_after(&mut self, e: &mut Vec<TimestampedValue<T>>, _: &W, _: &EvictorContext) {
        if self.do_evict_after {
            self.evict(e)
        }
    }
}
