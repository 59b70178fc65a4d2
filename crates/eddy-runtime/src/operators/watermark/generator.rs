//! Watermark generators (Flink's `WatermarkGenerator` and `WatermarkOutput`): the built-in
//! bounded-out-of-orderness and ascending generators, and the idleness wrapper.
//!
//! A generator sees every event (`on_event`) and is asked periodically (`on_periodic_emit`,
//! every auto-watermark interval) for a watermark. Punctuated generators emit from `on_event`;
//! periodic ones from `on_periodic_emit`.

use crate::environment::Clock;
use eddy_core::{Watermark, WatermarkStatus};
use std::sync::Arc;
use std::time::Duration;

/// Generates watermarks from events and/or periodically (Flink's `WatermarkGenerator`). One
/// instance per subtask, called on the task thread only.
pub trait WatermarkGenerator<T>: Send + 'static {
    /// Called for every event, with the timestamp assigned to it.
    fn on_event(&mut self, event: &T, event_timestamp: i64, output: &mut WatermarkOutput<'_>);
    /// Called every auto-watermark interval (never when the interval is 0).
    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput<'_>);
}

impl<T: 'static> WatermarkGenerator<T> for Box<dyn WatermarkGenerator<T>> {
    fn on_event(&mut self, event: &T, event_timestamp: i64, output: &mut WatermarkOutput<'_>) {
        (**self).on_event(event, event_timestamp, output)
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput<'_>) {
        (**self).on_periodic_emit(output)
    }
}

/// What a generator emitted, in order, not yet handed to the operator's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Emitted {
    Watermark(Watermark),
    Status(WatermarkStatus),
}

/// The state behind a [`WatermarkOutput`]: the greatest watermark emitted so far and whether
/// the output is idle.
#[derive(Debug)]
pub(crate) struct WatermarkOutputState {
    pub(crate) max_watermark: i64,
    pub(crate) idle: bool,
    pub(crate) pending: Vec<Emitted>,
}

impl Default for WatermarkOutputState {
    fn default() -> Self {
        WatermarkOutputState {
            max_watermark: i64::MIN,
            idle: false,
            pending: Vec::new(),
        }
    }
}

/// Where a [`WatermarkGenerator`] emits (Flink's `WatermarkOutput`). A watermark not greater
/// than the last one emitted is dropped, so watermarks never go backwards; emitting one while
/// idle marks the output active first.
pub struct WatermarkOutput<'a> {
    state: &'a mut WatermarkOutputState,
}

impl<'a> WatermarkOutput<'a> {
    pub(crate) fn new(state: &'a mut WatermarkOutputState) -> Self {
        WatermarkOutput { state }
    }

    /// Emits a watermark (ignored unless greater than every watermark emitted before).
    pub fn emit_watermark(&mut self, watermark: Watermark) {
        if watermark.timestamp <= self.state.max_watermark {
            return;
        }
        self.state.max_watermark = watermark.timestamp;
        self.mark_active();
        self.state.pending.push(Emitted::Watermark(watermark));
    }

    /// Marks the output idle: consumers stop waiting for its watermarks.
    pub fn mark_idle(&mut self) {
        if !self.state.idle {
            self.state.idle = true;
            self.state
                .pending
                .push(Emitted::Status(WatermarkStatus::Idle));
        }
    }

    /// Marks the output active again.
    pub fn mark_active(&mut self) {
        if self.state.idle {
            self.state.idle = false;
            self.state
                .pending
                .push(Emitted::Status(WatermarkStatus::Active));
        }
    }
}

/// Events may arrive late by at most a fixed bound: periodically emits
/// `max timestamp - bound - 1` (Flink's `BoundedOutOfOrdernessWatermarks`).
#[derive(Clone, Debug)]
pub struct BoundedOutOfOrdernessWatermarks {
    max_timestamp: i64,
    out_of_orderness_ms: i64,
}

impl BoundedOutOfOrdernessWatermarks {
    /// A generator allowing events to be `max_out_of_orderness` late.
    pub fn new(max_out_of_orderness: Duration) -> Self {
        let d = i64::try_from(max_out_of_orderness.as_millis()).unwrap_or(i64::MAX);
        BoundedOutOfOrdernessWatermarks {
            // Chosen so the first periodic watermark is MIN rather than an underflow.
            max_timestamp: i64::MIN.saturating_add(d).saturating_add(1),
            out_of_orderness_ms: d,
        }
    }
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrdernessWatermarks {
    fn on_event(&mut self, _event: &T, event_timestamp: i64, _output: &mut WatermarkOutput<'_>) {
        self.max_timestamp = self.max_timestamp.max(event_timestamp);
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput<'_>) {
        let wm = self
            .max_timestamp
            .saturating_sub(self.out_of_orderness_ms)
            .saturating_sub(1);
        output.emit_watermark(Watermark::new(wm));
    }
}

/// Timestamps only increase: bounded out-of-orderness with a bound of 0 (Flink's
/// `AscendingTimestampsWatermarks`).
#[derive(Clone, Debug)]
pub struct AscendingTimestampsWatermarks(BoundedOutOfOrdernessWatermarks);

impl AscendingTimestampsWatermarks {
    /// A new generator.
    pub fn new() -> Self {
        AscendingTimestampsWatermarks(BoundedOutOfOrdernessWatermarks::new(Duration::ZERO))
    }
}

impl Default for AscendingTimestampsWatermarks {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> WatermarkGenerator<T> for AscendingTimestampsWatermarks {
    fn on_event(&mut self, event: &T, event_timestamp: i64, output: &mut WatermarkOutput<'_>) {
        WatermarkGenerator::<T>::on_event(&mut self.0, event, event_timestamp, output)
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput<'_>) {
        WatermarkGenerator::<T>::on_periodic_emit(&mut self.0, output)
    }
}

/// Emits no watermarks at all (Flink's `NoWatermarksGenerator`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoWatermarksGenerator;

impl<T> WatermarkGenerator<T> for NoWatermarksGenerator {
    fn on_event(&mut self, _: &T, _: i64, _: &mut WatermarkOutput<'_>) {}
    fn on_periodic_emit(&mut self, _: &mut WatermarkOutput<'_>) {}
}

/// Marks the output idle when no event arrived for a timeout (processing time, checked on the
/// periodic emit); the next event marks it active again (Flink's `WatermarksWithIdleness`).
pub struct WatermarksWithIdleness<G> {
    inner: G,
    timeout_ms: i64,
    clock: Arc<dyn Clock>,
    /// Events seen since the last check; compared instead of reading the clock per event.
    activity: u64,
    last_checked_activity: u64,
    start_of_inactivity: Option<i64>,
}

impl<G> WatermarksWithIdleness<G> {
    /// Wraps `inner`; idle after `timeout` without events, measured on `clock`.
    pub fn new(inner: G, timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        WatermarksWithIdleness {
            inner,
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            clock,
            activity: 0,
            last_checked_activity: 0,
            start_of_inactivity: None,
        }
    }

    /// Flink's `IdlenessTimer.checkIfIdle`: inactivity starts at the first check that saw no
    /// new event, so an idle period is never shorter than the timeout.
    fn check_if_idle(&mut self) -> bool {
        if self.activity != self.last_checked_activity {
            self.last_checked_activity = self.activity;
            self.start_of_inactivity = None;
            return false;
        }
        let now = self.clock.now_ms();
        match self.start_of_inactivity {
            None => {
                self.start_of_inactivity = Some(now);
                false
            }
            Some(start) => now.saturating_sub(start) > self.timeout_ms,
        }
    }
}

impl<T, G: WatermarkGenerator<T>> WatermarkGenerator<T> for WatermarksWithIdleness<G> {
    fn on_event(&mut self, event: &T, event_timestamp: i64, output: &mut WatermarkOutput<'_>) {
        self.inner.on_event(event, event_timestamp, output);
        self.activity = self.activity.wrapping_add(1);
        output.mark_active();
    }

    fn on_periodic_emit(&mut self, output: &mut WatermarkOutput<'_>) {
        if self.check_if_idle() {
            output.mark_idle();
        } else {
            self.inner.on_periodic_emit(output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct ManualClock(AtomicI64);
    impl Clock for ManualClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn bounded_out_of_orderness_emits_max_minus_bound_minus_one() {
        let mut st = WatermarkOutputState::default();
        let mut g = BoundedOutOfOrdernessWatermarks::new(Duration::from_millis(10));
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut WatermarkOutput::new(&mut st));
        assert!(st.pending.is_empty(), "no watermark before any event");
        g.on_event(&(), 100, &mut WatermarkOutput::new(&mut st));
        g.on_event(&(), 50, &mut WatermarkOutput::new(&mut st));
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut WatermarkOutput::new(&mut st));
        assert_eq!(st.pending, vec![Emitted::Watermark(Watermark::new(89))]);
    }

    #[test]
    fn output_drops_watermarks_that_do_not_advance() {
        let mut st = WatermarkOutputState::default();
        let mut o = WatermarkOutput::new(&mut st);
        o.emit_watermark(Watermark::new(5));
        o.emit_watermark(Watermark::new(3));
        o.emit_watermark(Watermark::new(5));
        o.mark_idle();
        o.mark_idle();
        o.emit_watermark(Watermark::new(6));
        assert_eq!(
            st.pending,
            vec![
                Emitted::Watermark(Watermark::new(5)),
                Emitted::Status(WatermarkStatus::Idle),
                Emitted::Status(WatermarkStatus::Active),
                Emitted::Watermark(Watermark::new(6)),
            ]
        );
    }

    #[test]
    fn idleness_after_timeout_without_events_and_active_on_next_event() {
        let clock = Arc::new(ManualClock(AtomicI64::new(1000)));
        let mut g = WatermarksWithIdleness::new(
            AscendingTimestampsWatermarks::new(),
            Duration::from_millis(100),
            clock.clone(),
        );
        let mut st = WatermarkOutputState::default();
        g.on_event(&(), 7, &mut WatermarkOutput::new(&mut st));
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut WatermarkOutput::new(&mut st));
        assert_eq!(st.pending, vec![Emitted::Watermark(Watermark::new(6))]);
        st.pending.clear();
        // First quiet check starts the inactivity period; idle only once it is over.
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut WatermarkOutput::new(&mut st));
        clock.0.store(1100, Ordering::Relaxed);
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut WatermarkOutput::new(&mut st));
        assert!(st.pending.is_empty());
        clock.0.store(1101, Ordering::Relaxed);
        WatermarkGenerator::<()>::on_periodic_emit(&mut g, &mut WatermarkOutput::new(&mut st));
        assert_eq!(st.pending, vec![Emitted::Status(WatermarkStatus::Idle)]);
        st.pending.clear();
        g.on_event(&(), 8, &mut WatermarkOutput::new(&mut st));
        assert_eq!(st.pending, vec![Emitted::Status(WatermarkStatus::Active)]);
    }
}
