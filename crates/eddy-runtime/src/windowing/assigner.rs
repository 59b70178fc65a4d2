//! Window assigners put each element into zero or more windows (Flink's `WindowAssigner`):
//! tumbling, sliding and session windows in event or processing time, and global windows.

use super::trigger::{EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger, Trigger};
use super::window::{GlobalWindow, TimeWindow, Window};
use crate::error::FunctionResult;
use eddy_core::Key;
use std::sync::Arc;
use std::time::Duration;

/// Assigns elements to windows. `T` is the element type, [`Self::W`] the window type.
pub trait WindowAssigner<T>: Clone + Send + Sync + 'static {
    /// The windows this assigner creates.
    type W: Window;
    /// Appends the windows of an element with event timestamp `timestamp` (`i64::MIN` if none)
    /// at processing time `now` to `out`.
    fn assign_windows(
        &self,
        element: &T,
        timestamp: i64,
        now: i64,
        out: &mut Vec<Self::W>,
    ) -> FunctionResult;
    /// The trigger used when the user sets none.
    fn default_trigger<K: Key>(&self) -> Box<dyn Trigger<K, T, Self::W>>
    where
        T: 'static;
    /// Whether windows are in event time (watermarks end them, lateness applies).
    fn is_event_time(&self) -> bool;
    /// Whether windows merge (session windows).
    fn is_merging(&self) -> bool {
        false
    }
    /// For merging assigners: calls `merge` with each group of windows that become one and the
    /// resulting window.
    fn merge_windows(&self, windows: &[Self::W], merge: &mut dyn FnMut(Vec<Self::W>, Self::W)) {
        let _ = (windows, merge);
    }
    /// Flink's name for the assigner, shown in plans.
    fn name(&self) -> String;
    /// Checks the parameters when the program is built (a zero size is a program error).
    fn validate(&self) -> Result<(), WindowAssignerError> {
        Ok(())
    }
    /// For aligned event-time windows (tumbling, sliding): how time cuts into slices whose
    /// elements all belong to the same windows, which lets a two-phase aggregation combine them
    /// before the shuffle. `None` for every other assigner.
    fn time_slicing(&self) -> Option<TimeSlicing> {
        None
    }
}

/// An `i128` time back in the `i64` range.
fn clamp(t: i128) -> i64 {
    t.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Aligned event-time windows cut into slices (Flink SQL's `SliceAssigner`): windows of `size`
/// start every `slide` (tumbling: `slide == size`) at `offset`; a slice is `gcd(size, slide)`
/// long, so every window is a whole number of slices and the elements of one slice share their
/// windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSlicing {
    size: i64,
    slide: i64,
    offset: i64,
    slice: i64,
}

impl TimeSlicing {
    fn new(size: i64, slide: i64, offset: i64) -> Self {
        let (mut a, mut b) = (size.max(1), slide.max(1));
        while b != 0 {
            (a, b) = (b, a % b);
        }
        TimeSlicing {
            size,
            slide,
            offset,
            slice: a,
        }
    }

    /// The start of the slice holding event time `t` (computed wide: no overflow at the ends
    /// of the time range).
    #[inline]
    pub fn slice_start(&self, t: i64) -> i64 {
        // Per element of the local phase: 64-bit unless that would overflow.
        match t
            .checked_sub(self.offset)
            .and_then(|d| t.checked_sub(d.rem_euclid(self.slice)))
        {
            Some(start) => start,
            None => {
                let (t, offset, slice) = (t as i128, self.offset as i128, self.slice as i128);
                clamp(t - (t - offset).rem_euclid(slice))
            }
        }
    }

    /// The `max_timestamp` of the earliest window that holds the slice starting at
    /// `slice_start`: once the watermark reaches it, that window fires.
    pub fn first_window_max_timestamp(&self, slice_start: i64) -> i64 {
        let (size, slide, offset) = (self.size as i128, self.slide as i128, self.offset as i128);
        // The earliest window holding the slice starts right after `slice_start - size`.
        let before = slice_start as i128 - size;
        let start = before - (before - offset).rem_euclid(slide) + slide;
        clamp(start + size - 1)
    }

    /// The slice length in ms.
    pub fn slice_ms(&self) -> i64 {
        self.slice
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn event_timestamp(timestamp: i64) -> FunctionResult<i64> {
    if timestamp == i64::MIN {
        return Err(
            "record has no event timestamp (i64::MIN). Is the time characteristic \
                    processing time, or did you forget to call \
                    assign_timestamps_and_watermarks(..)?"
                .into(),
        );
    }
    Ok(timestamp)
}

/// A window assigner built with parameters no window can have: a mistake in the program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowAssignerError {
    /// A size, slide or gap that is zero or negative.
    #[error("{assigner}: the window {parameter} must be positive, got {value} ms")]
    NotPositive {
        /// The assigner (`TumblingEventTimeWindows`, …).
        assigner: &'static str,
        /// `size`, `slide` or `gap`.
        parameter: &'static str,
        /// The value given.
        value: i64,
    },
}

fn positive(
    value: i64,
    parameter: &'static str,
    assigner: &'static str,
) -> Result<(), WindowAssignerError> {
    if value <= 0 {
        return Err(WindowAssignerError::NotPositive {
            assigner,
            parameter,
            value,
        });
    }
    Ok(())
}

/// `a % b` that does not panic for `b == 0` (such an assigner fails `validate`).
fn rem(a: i64, b: i64) -> i64 {
    if b == 0 {
        0
    } else {
        a % b
    }
}

macro_rules! tumbling {
    ($(#[$doc:meta])* $name:ident, $event:expr, $trigger:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            size: i64,
            offset: i64,
        }

        impl $name {
            /// Windows of `size`, aligned to the epoch.
            pub fn of(size: Duration) -> Self {
                $name { size: ms(size), offset: 0 }
            }
            /// Windows of `size` shifted by `offset` (e.g. `-8h` for days in UTC+8).
            pub fn of_with_offset(size: Duration, offset: Duration) -> Self {
                let size = ms(size);
                $name { size, offset: rem(ms(offset), size) }
            }
            /// Windows of `size` shifted by a signed `offset_ms` (negative for time zones east
            /// of UTC).
            pub fn of_with_offset_ms(size: Duration, offset_ms: i64) -> Self {
                let size = ms(size);
                $name { size, offset: rem(offset_ms, size) }
            }
            /// Window size in ms.
            pub fn size_ms(&self) -> i64 {
                self.size
            }
        }

        impl<T: 'static> WindowAssigner<T> for $name {
            type W = TimeWindow;
            fn assign_windows(
                &self,
                _element: &T,
                timestamp: i64,
                now: i64,
                out: &mut Vec<TimeWindow>,
            ) -> FunctionResult {
                let t = if $event { event_timestamp(timestamp)? } else { now };
                let start = TimeWindow::window_start_with_offset(t, self.offset, self.size);
                out.push(TimeWindow::new(start, start.saturating_add(self.size)));
                Ok(())
            }
            fn default_trigger<K: Key>(&self) -> Box<dyn Trigger<K, T, TimeWindow>> {
                Box::new($trigger)
            }
            fn is_event_time(&self) -> bool {
                $event
            }
            fn name(&self) -> String {
                format!("{}({}, {})", stringify!($name), self.size, self.offset)
            }
            fn validate(&self) -> Result<(), WindowAssignerError> {
                positive(self.size, "size", stringify!($name))
            }
            fn time_slicing(&self) -> Option<TimeSlicing> {
                ($event && self.size > 0)
                    .then(|| TimeSlicing::new(self.size, self.size, self.offset))
            }
        }
    };
}

tumbling!(
    /// Fixed-size, non-overlapping windows in event time (Flink's `TumblingEventTimeWindows`).
    TumblingEventTimeWindows,
    true,
    EventTimeTrigger
);
tumbling!(
    /// Fixed-size, non-overlapping windows in processing time (Flink's
    /// `TumblingProcessingTimeWindows`).
    TumblingProcessingTimeWindows,
    false,
    ProcessingTimeTrigger
);

macro_rules! sliding {
    ($(#[$doc:meta])* $name:ident, $event:expr, $trigger:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            size: i64,
            slide: i64,
            offset: i64,
        }

        impl $name {
            /// Windows of `size` starting every `slide`.
            pub fn of(size: Duration, slide: Duration) -> Self {
                Self::of_with_offset_ms(size, slide, 0)
            }
            /// Windows of `size` starting every `slide`, shifted by `offset_ms`.
            pub fn of_with_offset_ms(size: Duration, slide: Duration, offset_ms: i64) -> Self {
                let slide = ms(slide);
                $name { size: ms(size), slide, offset: rem(offset_ms, slide) }
            }
            /// Window size in ms.
            pub fn size_ms(&self) -> i64 {
                self.size
            }
            /// Slide in ms.
            pub fn slide_ms(&self) -> i64 {
                self.slide
            }
        }

        impl<T: 'static> WindowAssigner<T> for $name {
            type W = TimeWindow;
            fn assign_windows(
                &self,
                _element: &T,
                timestamp: i64,
                now: i64,
                out: &mut Vec<TimeWindow>,
            ) -> FunctionResult {
                let t = if $event { event_timestamp(timestamp)? } else { now };
                let last_start = TimeWindow::window_start_with_offset(t, self.offset, self.slide);
                let mut start = last_start;
                // Newest window first, as Flink lists them.
                while start > t.saturating_sub(self.size) {
                    out.push(TimeWindow::new(start, start.saturating_add(self.size)));
                    start -= self.slide;
                }
                Ok(())
            }
            fn default_trigger<K: Key>(&self) -> Box<dyn Trigger<K, T, TimeWindow>> {
                Box::new($trigger)
            }
            fn is_event_time(&self) -> bool {
                $event
            }
            fn name(&self) -> String {
                format!("{}({}, {}, {})", stringify!($name), self.size, self.slide, self.offset)
            }
            fn validate(&self) -> Result<(), WindowAssignerError> {
                positive(self.size, "size", stringify!($name))?;
                positive(self.slide, "slide", stringify!($name))
            }
            fn time_slicing(&self) -> Option<TimeSlicing> {
                ($event && self.size > 0 && self.slide > 0)
                    .then(|| TimeSlicing::new(self.size, self.slide, self.offset))
            }
        }
    };
}

sliding!(
    /// Fixed-size windows that overlap, one starting every `slide`, in event time (Flink's
    /// `SlidingEventTimeWindows`).
    SlidingEventTimeWindows,
    true,
    EventTimeTrigger
);
sliding!(
    /// Fixed-size overlapping windows in processing time (Flink's
    /// `SlidingProcessingTimeWindows`).
    SlidingProcessingTimeWindows,
    false,
    ProcessingTimeTrigger
);

/// Extracts a session gap (ms) from an element, for dynamic-gap session windows.
pub type SessionGapExtractor<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// Session windows: an element opens `[t, t + gap)`, and windows that overlap or touch merge
/// (Flink's `EventTimeSessionWindows` / `ProcessingTimeSessionWindows`, static or dynamic gap).
pub struct SessionWindows<T> {
    gap: Gap<T>,
    event_time: bool,
}

enum Gap<T> {
    Static(i64),
    Dynamic(SessionGapExtractor<T>),
}

impl<T> Clone for SessionWindows<T> {
    fn clone(&self) -> Self {
        SessionWindows {
            gap: match &self.gap {
                Gap::Static(g) => Gap::Static(*g),
                Gap::Dynamic(f) => Gap::Dynamic(f.clone()),
            },
            event_time: self.event_time,
        }
    }
}

impl<T> std::fmt::Debug for SessionWindows<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.gap {
            Gap::Static(g) => write!(f, "SessionWindows(gap={g}, event_time={})", self.event_time),
            Gap::Dynamic(_) => write!(f, "SessionWindows(dynamic, event_time={})", self.event_time),
        }
    }
}

/// Event-time session windows (Flink's `EventTimeSessionWindows`).
pub struct EventTimeSessionWindows;

impl EventTimeSessionWindows {
    /// Sessions closed by `gap` of inactivity.
    pub fn with_gap<T>(gap: Duration) -> SessionWindows<T> {
        SessionWindows {
            gap: Gap::Static(ms(gap)),
            event_time: true,
        }
    }
    /// Sessions whose gap each element decides (ms, must be positive).
    pub fn with_dynamic_gap<T>(f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> SessionWindows<T> {
        SessionWindows {
            gap: Gap::Dynamic(Arc::new(f)),
            event_time: true,
        }
    }
}

/// Processing-time session windows (Flink's `ProcessingTimeSessionWindows`).
pub struct ProcessingTimeSessionWindows;

impl ProcessingTimeSessionWindows {
    /// Sessions closed by `gap` of inactivity on the wall clock.
    pub fn with_gap<T>(gap: Duration) -> SessionWindows<T> {
        SessionWindows {
            gap: Gap::Static(ms(gap)),
            event_time: false,
        }
    }
    /// Sessions whose gap each element decides (ms, must be positive).
    pub fn with_dynamic_gap<T>(f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> SessionWindows<T> {
        SessionWindows {
            gap: Gap::Dynamic(Arc::new(f)),
            event_time: false,
        }
    }
}

impl<T: 'static> WindowAssigner<T> for SessionWindows<T> {
    type W = TimeWindow;
    fn assign_windows(
        &self,
        element: &T,
        timestamp: i64,
        now: i64,
        out: &mut Vec<TimeWindow>,
    ) -> FunctionResult {
        let t = if self.event_time {
            event_timestamp(timestamp)?
        } else {
            now
        };
        let gap = match &self.gap {
            Gap::Static(g) => *g,
            Gap::Dynamic(f) => {
                let g = f(element);
                if g <= 0 {
                    return Err(format!(
                        "dynamic session gap must be positive, the extractor returned {g} for \
                         {}",
                        std::any::type_name::<T>()
                    )
                    .into());
                }
                g
            }
        };
        out.push(TimeWindow::new(t, t.saturating_add(gap)));
        Ok(())
    }
    fn default_trigger<K: Key>(&self) -> Box<dyn Trigger<K, T, TimeWindow>> {
        if self.event_time {
            Box::new(EventTimeTrigger)
        } else {
            Box::new(ProcessingTimeTrigger)
        }
    }
    fn is_event_time(&self) -> bool {
        self.event_time
    }
    fn is_merging(&self) -> bool {
        true
    }
    fn merge_windows(
        &self,
        windows: &[TimeWindow],
        merge: &mut dyn FnMut(Vec<TimeWindow>, TimeWindow),
    ) {
        TimeWindow::merge_windows(windows, merge)
    }
    fn name(&self) -> String {
        format!("{self:?}")
    }
    fn validate(&self) -> Result<(), WindowAssignerError> {
        match self.gap {
            Gap::Static(g) => positive(g, "gap", "SessionWindows"),
            Gap::Dynamic(_) => Ok(()),
        }
    }
}

/// One window holding every element (Flink's `GlobalWindows`); needs a trigger to fire, as in
/// `count_window`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalWindows;

impl GlobalWindows {
    /// The assigner.
    pub fn create() -> Self {
        GlobalWindows
    }
}

impl<T: 'static> WindowAssigner<T> for GlobalWindows {
    type W = GlobalWindow;
    fn assign_windows(&self, _: &T, _: i64, _: i64, out: &mut Vec<GlobalWindow>) -> FunctionResult {
        out.push(GlobalWindow);
        Ok(())
    }
    fn default_trigger<K: Key>(&self) -> Box<dyn Trigger<K, T, GlobalWindow>> {
        Box::new(NeverTrigger)
    }
    fn is_event_time(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "GlobalWindows".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign<A: WindowAssigner<()>>(a: &A, ts: i64) -> Vec<A::W> {
        let mut out = Vec::new();
        a.assign_windows(&(), ts, 0, &mut out).unwrap();
        out
    }

    /// Every timestamp of a slice gets the windows of the slice's start, and the slice's first
    /// window is the earliest of them, for tumbling and sliding windows with and without
    /// offsets, slides that divide the size and slides that do not.
    #[test]
    fn elements_of_one_slice_share_their_windows() {
        let ms = Duration::from_millis;
        type Case = Box<dyn Fn(i64) -> (Vec<TimeWindow>, TimeSlicing)>;
        let cases: Vec<Case> = vec![
            Box::new(move |t| {
                let a = SlidingEventTimeWindows::of(ms(10_000), ms(2_000));
                (
                    assign(&a, t),
                    WindowAssigner::<()>::time_slicing(&a).unwrap(),
                )
            }),
            Box::new(move |t| {
                let a = SlidingEventTimeWindows::of_with_offset_ms(ms(10), ms(4), 3);
                (
                    assign(&a, t),
                    WindowAssigner::<()>::time_slicing(&a).unwrap(),
                )
            }),
            Box::new(move |t| {
                let a = TumblingEventTimeWindows::of_with_offset_ms(ms(7), -2);
                (
                    assign(&a, t),
                    WindowAssigner::<()>::time_slicing(&a).unwrap(),
                )
            }),
        ];
        for case in &cases {
            for t in -50..50 {
                let (windows, slicing) = case(t);
                let start = slicing.slice_start(t);
                assert!(start <= t && t < start + slicing.slice_ms());
                let (of_start, _) = case(start);
                assert_eq!(windows, of_start, "t={t} slice {start}");
                let first = windows.iter().map(|w| w.max_timestamp()).min().unwrap();
                assert_eq!(slicing.first_window_max_timestamp(start), first, "t={t}");
            }
        }
        let a = SlidingEventTimeWindows::of(ms(10), ms(4));
        assert_eq!(
            WindowAssigner::<()>::time_slicing(&a).map(|s| s.slice_ms()),
            Some(2)
        );
        let processing = SlidingProcessingTimeWindows::of(ms(10), ms(2));
        assert!(WindowAssigner::<()>::time_slicing(&processing).is_none());
        assert!(WindowAssigner::<()>::time_slicing(&GlobalWindows::create()).is_none());
    }

    #[test]
    fn sliding_windows_cover_the_timestamp() {
        let a = SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(3));
        let ws = assign(&a, 7);
        assert_eq!(
            ws,
            vec![
                TimeWindow::new(6, 16),
                TimeWindow::new(3, 13),
                TimeWindow::new(0, 10)
            ]
        );
        for w in ws {
            assert!(w.start <= 7 && 7 < w.end);
        }
    }

    #[test]
    fn tumbling_offset_shifts_windows() {
        let a = TumblingEventTimeWindows::of_with_offset_ms(Duration::from_millis(10), -3);
        assert_eq!(assign(&a, 8), vec![TimeWindow::new(7, 17)]);
        assert_eq!(assign(&a, 6), vec![TimeWindow::new(-3, 7)]);
    }

    #[test]
    fn event_time_assigner_rejects_missing_timestamp() {
        let a = TumblingEventTimeWindows::of(Duration::from_millis(10));
        let mut out = Vec::new();
        let e = WindowAssigner::<()>::assign_windows(&a, &(), i64::MIN, 0, &mut out).unwrap_err();
        assert!(e.to_string().contains("assign_timestamps_and_watermarks"));
    }
}
