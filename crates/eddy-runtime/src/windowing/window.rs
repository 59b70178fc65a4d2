//! The windows themselves: [`TimeWindow`] (a half-open `[start, end)` span of time),
//! [`GlobalWindow`] (everything), and the [`Window`] trait window operators key state and
//! timers by.

use eddy_core::Key;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A window: the namespace of per-window state and timers (Flink's `Window`).
pub trait Window: Key + Ord + Debug {
    /// The largest timestamp that still belongs to the window; results of the window carry
    /// this timestamp.
    fn max_timestamp(&self) -> i64;
}

/// A window of time `[start, end)` in ms (Flink's `TimeWindow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First timestamp in the window.
    pub start: i64,
    /// First timestamp after the window.
    pub end: i64,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        TimeWindow { start, end }
    }

    /// Whether the two windows overlap or touch. Touching counts, as in Flink: session windows
    /// `[t, t+gap)` of events exactly `gap` apart merge.
    pub fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }

    /// The smallest window containing both.
    pub fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Start of the window of length `size` (shifted by `offset`) that contains `timestamp`
    /// (Flink's `TimeWindow.getWindowStartWithOffset`), correct for negative timestamps too.
    pub fn window_start_with_offset(timestamp: i64, offset: i64, size: i64) -> i64 {
        let remainder = (timestamp - offset) % size;
        if remainder < 0 {
            timestamp - (remainder + size)
        } else {
            timestamp - remainder
        }
    }

    /// Merges overlapping windows (Flink's `TimeWindow.mergeWindows`): calls `merge` with each
    /// group of two or more windows and the window covering them.
    pub fn merge_windows(
        windows: &[TimeWindow],
        merge: &mut dyn FnMut(Vec<TimeWindow>, TimeWindow),
    ) {
        let mut sorted: Vec<TimeWindow> = windows.to_vec();
        sorted.sort_unstable();
        // A window equal to one already in flight is that window, not a merge.
        sorted.dedup();
        let mut current: Option<(TimeWindow, Vec<TimeWindow>)> = None;
        for w in sorted {
            match &mut current {
                Some((cover, members)) if cover.intersects(&w) => {
                    *cover = cover.cover(&w);
                    members.push(w);
                }
                _ => {
                    if let Some((cover, members)) = current.take() {
                        if members.len() > 1 {
                            merge(members, cover);
                        }
                    }
                    current = Some((w, vec![w]));
                }
            }
        }
        if let Some((cover, members)) = current {
            if members.len() > 1 {
                merge(members, cover);
            }
        }
    }
}

impl Window for TimeWindow {
    fn max_timestamp(&self) -> i64 {
        self.end - 1
    }
}

impl std::fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimeWindow{{start={}, end={}}}", self.start, self.end)
    }
}

/// The single window of [`GlobalWindows`](super::GlobalWindows): every element, forever.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct GlobalWindow;

impl Window for GlobalWindow {
    fn max_timestamp(&self) -> i64 {
        i64::MAX
    }
}

/// An element with its event timestamp, as evictors see window contents (Flink's
/// `TimestampedValue`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimestampedValue<T> {
    /// The element.
    pub value: T,
    /// Its timestamp, `i64::MIN` when it has none.
    pub timestamp: i64,
}

impl<T> TimestampedValue<T> {
    /// Whether the element carries an event timestamp.
    pub fn has_timestamp(&self) -> bool {
        self.timestamp != i64::MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_handles_offsets_and_negative_timestamps() {
        assert_eq!(TimeWindow::window_start_with_offset(7, 0, 5), 5);
        assert_eq!(TimeWindow::window_start_with_offset(5, 0, 5), 5);
        assert_eq!(TimeWindow::window_start_with_offset(-1, 0, 5), -5);
        assert_eq!(TimeWindow::window_start_with_offset(7, 2, 5), 7);
        assert_eq!(TimeWindow::window_start_with_offset(6, 2, 5), 2);
    }

    #[test]
    fn touching_windows_merge() {
        let ws = [
            TimeWindow::new(0, 10),
            TimeWindow::new(10, 20),
            TimeWindow::new(30, 40),
            TimeWindow::new(35, 36),
            TimeWindow::new(50, 60),
        ];
        let mut got = Vec::new();
        TimeWindow::merge_windows(&ws, &mut |m, c| got.push((m, c)));
        assert_eq!(
            got,
            vec![
                (vec![ws[0], ws[1]], TimeWindow::new(0, 20)),
                (vec![ws[2], ws[3]], TimeWindow::new(30, 40)),
            ]
        );
    }
}
