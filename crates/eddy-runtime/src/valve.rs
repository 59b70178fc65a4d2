//! Combining the watermarks and watermark statuses of an input's channels into the input's
//! watermark and status (Flink's `StatusWatermarkValve`).
//!
//! The input's watermark is the minimum over the channels that are active, not finished and
//! *aligned*. A channel that goes idle stops holding the minimum back; when every channel is
//! idle the input is idle. A channel that becomes active again is only aligned once its
//! watermark has caught up with the input's, so it never pulls the input's watermark back.
//! The output watermark only ever increases.

use eddy_core::{Watermark, WatermarkStatus};

#[derive(Clone, Copy, Debug)]
struct ChannelStatus {
    watermark: i64,
    idle: bool,
    /// Takes part in the minimum: active and not behind the valve's last output watermark.
    aligned: bool,
    finished: bool,
}

/// What the valve emits for one input event: the watermark goes out before the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValveOutput {
    /// A new, greater watermark of the input.
    pub watermark: Option<Watermark>,
    /// The input's status changed.
    pub status: Option<WatermarkStatus>,
}

/// The per-channel watermarks and statuses of one input of a task.
#[derive(Debug)]
pub struct StatusWatermarkValve {
    channels: Vec<ChannelStatus>,
    last_output_watermark: i64,
    idle: bool,
    open_channels: usize,
}

impl StatusWatermarkValve {
    /// A valve over `n` channels, all active and without a watermark yet.
    pub fn new(n: usize) -> Self {
        StatusWatermarkValve {
            channels: vec![
                ChannelStatus {
                    watermark: i64::MIN,
                    idle: false,
                    aligned: true,
                    finished: false,
                };
                n
            ],
            last_output_watermark: i64::MIN,
            idle: false,
            open_channels: n,
        }
    }

    /// The last watermark the valve emitted (`i64::MIN` before any).
    pub fn current_watermark(&self) -> i64 {
        self.last_output_watermark
    }

    /// Whether the input as a whole is idle.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Whether every channel ended.
    pub fn all_finished(&self) -> bool {
        self.open_channels == 0
    }

    /// A watermark arrived on channel `ch`.
    pub fn input_watermark(&mut self, ch: usize, wm: Watermark) -> ValveOutput {
        let last = self.last_output_watermark;
        let Some(c) = self.channels.get_mut(ch) else {
            return ValveOutput::default();
        };
        // An idle channel promised nothing; a watermark from it is stale.
        if self.idle || c.idle || c.finished || wm.timestamp <= c.watermark {
            return ValveOutput::default();
        }
        c.watermark = wm.timestamp;
        if !c.aligned && c.watermark >= last {
            c.aligned = true;
        }
        ValveOutput {
            watermark: self.new_min_across_aligned(),
            status: None,
        }
    }

    /// Channel `ch` became idle or active.
    pub fn input_watermark_status(&mut self, ch: usize, status: WatermarkStatus) -> ValveOutput {
        let last = self.last_output_watermark;
        let Some(c) = self.channels.get_mut(ch) else {
            return ValveOutput::default();
        };
        if c.finished {
            return ValveOutput::default();
        }
        match status {
            WatermarkStatus::Idle if !c.idle => {
                c.idle = true;
                c.aligned = false;
                let held_back = c.watermark == last;
                self.after_channel_left(held_back)
            }
            WatermarkStatus::Active if c.idle => {
                c.idle = false;
                // Only a channel that has not fallen behind may hold the minimum again.
                if c.watermark >= last {
                    c.aligned = true;
                }
                let mut out = ValveOutput::default();
                if self.idle {
                    self.idle = false;
                    out.status = Some(WatermarkStatus::Active);
                }
                out
            }
            _ => ValveOutput::default(),
        }
    }

    /// Channel `ch` ended: it no longer takes part, like a channel idle forever.
    pub fn input_end(&mut self, ch: usize) -> ValveOutput {
        let Some(c) = self.channels.get_mut(ch) else {
            return ValveOutput::default();
        };
        if c.finished {
            return ValveOutput::default();
        }
        c.finished = true;
        c.aligned = false;
        let was_active = !c.idle;
        c.idle = true;
        self.open_channels -= 1;
        if self.open_channels == 0 || !was_active {
            // Nothing is left to hold back, or the channel already did not count.
            return ValveOutput::default();
        }
        // Releasing every watermark held by idle channels is for channels that went idle
        // holding the minimum; an ended channel's last watermark (usually MAX) proves nothing
        // about the idle ones left.
        self.after_channel_left(false)
    }

    fn after_channel_left(&mut self, held_back: bool) -> ValveOutput {
        let mut out = ValveOutput::default();
        if !self.has_active_channels() {
            if held_back {
                out.watermark = self.max_across_open_channels();
            }
            if !self.idle {
                self.idle = true;
                out.status = Some(WatermarkStatus::Idle);
            }
        } else {
            out.watermark = self.new_min_across_aligned();
        }
        out
    }

    fn has_active_channels(&self) -> bool {
        self.channels.iter().any(|c| !c.idle && !c.finished)
    }

    fn new_min_across_aligned(&mut self) -> Option<Watermark> {
        let min = self
            .channels
            .iter()
            .filter(|c| c.aligned)
            .map(|c| c.watermark)
            .min()?;
        (min > self.last_output_watermark).then(|| {
            self.last_output_watermark = min;
            Watermark::new(min)
        })
    }

    /// When the last active channel goes idle, nothing will advance the minimum any more:
    /// Flink then releases the greatest watermark any open channel has reached.
    fn max_across_open_channels(&mut self) -> Option<Watermark> {
        let max = self
            .channels
            .iter()
            .filter(|c| !c.finished)
            .map(|c| c.watermark)
            .max()?;
        (max > self.last_output_watermark).then(|| {
            self.last_output_watermark = max;
            Watermark::new(max)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(t: i64) -> Watermark {
        Watermark::new(t)
    }

    fn out(w: Option<i64>, s: Option<WatermarkStatus>) -> ValveOutput {
        ValveOutput {
            watermark: w.map(Watermark::new),
            status: s,
        }
    }

    #[test]
    fn minimum_over_channels_and_never_backwards() {
        let mut v = StatusWatermarkValve::new(2);
        assert_eq!(v.input_watermark(0, wm(10)), out(None, None));
        assert_eq!(v.input_watermark(1, wm(5)), out(Some(5), None));
        assert_eq!(v.input_watermark(1, wm(3)), out(None, None));
        assert_eq!(v.input_watermark(1, wm(20)), out(Some(10), None));
        assert_eq!(v.current_watermark(), 10);
    }

    #[test]
    fn idle_channel_is_excluded_from_the_minimum() {
        let mut v = StatusWatermarkValve::new(3);
        v.input_watermark(0, wm(10));
        v.input_watermark(1, wm(7));
        // Channel 2 never sent a watermark: it holds everything at MIN until it goes idle.
        assert_eq!(
            v.input_watermark_status(2, WatermarkStatus::Idle),
            out(Some(7), None)
        );
        assert_eq!(v.input_watermark(1, wm(12)), out(Some(10), None));
        // Watermarks of an idle channel are ignored.
        assert_eq!(v.input_watermark(2, wm(100)), out(None, None));
        assert!(!v.is_idle());
    }

    #[test]
    fn all_idle_makes_the_input_idle_and_resume_makes_it_active() {
        let mut v = StatusWatermarkValve::new(2);
        v.input_watermark(0, wm(10));
        v.input_watermark(1, wm(4));
        assert_eq!(v.current_watermark(), 4);
        assert_eq!(
            v.input_watermark_status(0, WatermarkStatus::Idle),
            out(None, None)
        );
        // The last active channel held the minimum: going idle releases the max of all.
        assert_eq!(
            v.input_watermark_status(1, WatermarkStatus::Idle),
            out(Some(10), Some(WatermarkStatus::Idle))
        );
        assert!(v.is_idle());
        assert_eq!(v.input_watermark(0, wm(50)), out(None, None));
        assert_eq!(
            v.input_watermark_status(1, WatermarkStatus::Active),
            out(None, Some(WatermarkStatus::Active))
        );
        // A second active status changes nothing.
        assert_eq!(
            v.input_watermark_status(1, WatermarkStatus::Active),
            out(None, None)
        );
    }

    #[test]
    fn resumed_channel_behind_does_not_pull_the_watermark_back() {
        let mut v = StatusWatermarkValve::new(2);
        v.input_watermark(0, wm(5));
        v.input_watermark_status(1, WatermarkStatus::Idle);
        assert_eq!(v.current_watermark(), 5);
        assert_eq!(v.input_watermark(0, wm(100)), out(Some(100), None));
        v.input_watermark_status(1, WatermarkStatus::Active);
        // Channel 1 is at MIN: it is not aligned, so channel 0 alone still moves the minimum.
        assert_eq!(v.input_watermark(0, wm(110)), out(Some(110), None));
        assert_eq!(v.input_watermark(1, wm(50)), out(None, None));
        // Once caught up it takes part again and holds the minimum.
        assert_eq!(v.input_watermark(1, wm(120)), out(None, None));
        assert_eq!(v.input_watermark(0, wm(200)), out(Some(120), None));
        assert_eq!(v.current_watermark(), 120);
    }

    #[test]
    fn ended_channels_are_excluded() {
        let mut v = StatusWatermarkValve::new(2);
        v.input_watermark(0, wm(10));
        assert_eq!(v.input_end(1), out(Some(10), None));
        assert!(!v.all_finished());
        assert_eq!(v.input_end(0), out(None, None));
        assert!(v.all_finished());
    }

    #[test]
    fn last_active_channel_ending_leaves_the_input_idle() {
        let mut v = StatusWatermarkValve::new(2);
        v.input_watermark_status(0, WatermarkStatus::Idle);
        v.input_watermark(1, wm(3));
        assert_eq!(v.current_watermark(), 3);
        assert_eq!(v.input_end(1), out(None, Some(WatermarkStatus::Idle)));
        assert!(!v.all_finished());
    }
}
