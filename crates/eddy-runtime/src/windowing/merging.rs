//! Which in-flight window of a key keeps its state where, for merging (session) windows
//! (Flink's `MergingWindowSet`). When windows merge, the state of one of them becomes the
//! state of the merged window, so only the others' state has to be moved. The mapping lives in
//! keyed state so it is checkpointed with the window contents.

use super::window::Window;
use crate::error::OperatorError;
use eddy_core::Key;
use eddy_state::{KeyedStateBackend, StateError, ValueState, ValueStateDescriptor};

/// State name of the mapping, as in Flink.
pub(crate) const MERGING_WINDOW_SET: &str = "merging-window-set";

/// Registers the mapping state.
pub(crate) fn mapping_state<K: Key, W: Window>(
    backend: &mut KeyedStateBackend<K>,
) -> Result<ValueState<Vec<(W, W)>>, StateError> {
    backend.get_state(&ValueStateDescriptor::new(MERGING_WINDOW_SET))
}

/// The in-flight windows of the current key and the window each keeps its state under.
pub(crate) struct MergingWindowSet<W> {
    mapping: Vec<(W, W)>,
    changed: bool,
}

impl<W: Window> MergingWindowSet<W> {
    /// Loads the current key's set.
    pub(crate) fn load<K: Key>(
        backend: &mut KeyedStateBackend<K>,
        state: ValueState<Vec<(W, W)>>,
    ) -> Result<Self, StateError> {
        Ok(MergingWindowSet {
            mapping: state.value(backend)?.unwrap_or_default(),
            changed: false,
        })
    }

    /// Writes the set back if it changed.
    pub(crate) fn persist<K: Key>(
        &self,
        backend: &mut KeyedStateBackend<K>,
        state: ValueState<Vec<(W, W)>>,
    ) -> Result<(), StateError> {
        if !self.changed {
            return Ok(());
        }
        if self.mapping.is_empty() {
            state.clear(backend)
        } else {
            state.update(backend, self.mapping.clone())
        }
    }

    /// The window whose namespace holds `window`'s state.
    pub(crate) fn state_window(&self, window: &W) -> Option<W> {
        self.mapping
            .iter()
            .find(|(w, _)| w == window)
            .map(|(_, s)| s.clone())
    }

    fn remove(&mut self, window: &W) -> Option<W> {
        let i = self.mapping.iter().position(|(w, _)| w == window)?;
        self.changed = true;
        Some(self.mapping.swap_remove(i).1)
    }

    /// Forgets a window that has been purged for good.
    pub(crate) fn retire_window(&mut self, window: &W) -> Result<(), OperatorError> {
        self.remove(window).map(|_| ()).ok_or_else(|| {
            OperatorError::Internal(format!(
                "window {window:?} is not in the in-flight window set"
            ))
        })
    }

    /// Adds `new_window`, merging it with in-flight windows as `merge_windows` decides, and
    /// returns the window it ended up in. `merge(result, merged, state_result,
    /// merged_state_windows)` is called for every merge so the caller can fold state and fix
    /// triggers.
    pub(crate) fn add_window(
        &mut self,
        new_window: W,
        merge_windows: impl FnOnce(&[W], &mut dyn FnMut(Vec<W>, W)),
        mut merge: impl FnMut(&W, &[W], &W, &[W]) -> Result<(), OperatorError>,
    ) -> Result<W, OperatorError> {
        let mut windows: Vec<W> = self.mapping.iter().map(|(w, _)| w.clone()).collect();
        windows.push(new_window.clone());
        let mut results: Vec<(W, Vec<W>)> = Vec::new();
        merge_windows(&windows, &mut |merged, result| {
            results.push((result, merged))
        });

        let mut result_window = new_window.clone();
        let mut merged_new_window = false;
        let no_merges = results.is_empty();
        for (merge_result, mut merged_windows) in results {
            if let Some(i) = merged_windows.iter().position(|w| *w == new_window) {
                merged_windows.remove(i);
                merged_new_window = true;
                result_window = merge_result.clone();
            }
            // Any merged window's state becomes the merged window's state.
            let Some(state_result) = merged_windows.first().and_then(|w| self.state_window(w))
            else {
                return Err(OperatorError::Internal(format!(
                    "merge of {merged_windows:?} into {merge_result:?} has no in-flight window"
                )));
            };
            let mut merged_state_windows: Vec<W> = merged_windows
                .iter()
                .filter_map(|w| self.remove(w))
                .collect();
            self.mapping
                .push((merge_result.clone(), state_result.clone()));
            self.changed = true;
            merged_state_windows.retain(|s| *s != state_result);
            // Only the new window merging into an existing one, unchanged: nothing to merge.
            if !(merged_windows.len() == 1 && merged_windows[0] == merge_result) {
                merge(
                    &merge_result,
                    &merged_windows,
                    &state_result,
                    &merged_state_windows,
                )?;
            }
        }
        if (no_merges || (result_window == new_window && !merged_new_window))
            && self.state_window(&result_window).is_none()
        {
            self.mapping
                .push((result_window.clone(), result_window.clone()));
            self.changed = true;
        }
        Ok(result_window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windowing::window::TimeWindow;

    fn add(
        set: &mut MergingWindowSet<TimeWindow>,
        w: TimeWindow,
        log: &mut Vec<String>,
    ) -> TimeWindow {
        set.add_window(
            w,
            |ws, m| TimeWindow::merge_windows(ws, m),
            |r, ms, s, mss| {
                log.push(format!("{r:?} <- {ms:?} state {s:?} <- {mss:?}"));
                Ok(())
            },
        )
        .unwrap()
    }

    #[test]
    fn windows_merge_and_keep_one_state_window() {
        let mut set = MergingWindowSet {
            mapping: Vec::new(),
            changed: false,
        };
        let mut log = Vec::new();
        let a = TimeWindow::new(0, 10);
        assert_eq!(add(&mut set, a, &mut log), a);
        let b = TimeWindow::new(20, 30);
        assert_eq!(add(&mut set, b, &mut log), b);
        assert!(log.is_empty());
        // Bridges both: one merge, state of `a` (or `b`) survives.
        let c = TimeWindow::new(8, 22);
        let merged = add(&mut set, c, &mut log);
        assert_eq!(merged, TimeWindow::new(0, 30));
        assert_eq!(log.len(), 1);
        let s = set.state_window(&merged).unwrap();
        assert!(s == a || s == b);
        assert_eq!(set.mapping.len(), 1);
        // Inside the merged window: no state moves.
        log.clear();
        assert_eq!(add(&mut set, TimeWindow::new(5, 15), &mut log), merged);
        assert!(log.is_empty());
        set.retire_window(&merged).unwrap();
        assert!(set.retire_window(&merged).is_err());
    }
}
