//! Restart decisions after a job failure (Flink's `RestartBackoffTimeStrategy` family): pure
//! logic over failure timestamps, no clocks or threads, so the JobMaster or MiniCluster that
//! owns the job can ask it and schedule the restart itself.

use eddy_core::RestartStrategyConfig;
use std::collections::VecDeque;
use std::time::Duration;

/// Decides whether and when a failed job restarts (Flink's RestartBackoffTimeStrategy).
///
/// - `none`: never restarts.
/// - `fixed-delay`: restarts after `delay` for the first `attempts` failures, then gives up.
/// - `failure-rate`: restarts after `delay` unless, counting this failure, more than
///   `max_failures` failures happened within the last `interval` (a failure exactly `interval`
///   ago still counts, as in Flink).
/// - `exponential-delay`: the first failure waits the initial backoff, each further one the
///   previous backoff times the multiplier, capped at the max backoff. A failure at least
///   `reset_threshold` after the previous one starts over (initial backoff, attempt count 0).
///   The delay varies by ±`jitter` × backoff (deterministic, from the failure time), never
///   above the max backoff. After `attempts` failures without a reset the job fails.
#[derive(Clone, Debug)]
pub struct RestartBackoff {
    cfg: RestartStrategyConfig,
    /// Failures so far (fixed-delay) or since the last reset (exponential-delay).
    attempts: u64,
    /// Failure times within the failure-rate interval, oldest first.
    failures: VecDeque<i64>,
    /// The exponential backoff of the latest failure, before jitter.
    backoff_ms: u64,
    /// Time of the latest failure (exponential-delay).
    last_failure_ms: Option<i64>,
}

impl RestartBackoff {
    /// A strategy with no failures seen yet.
    pub fn new(cfg: &RestartStrategyConfig) -> Self {
        RestartBackoff {
            cfg: cfg.clone(),
            attempts: 0,
            failures: VecDeque::new(),
            backoff_ms: 0,
            last_failure_ms: None,
        }
    }

    /// A failure happened at `now_ms` (ms since epoch). Returns the delay before restarting, or
    /// None if the job must fail (attempts exhausted / rate exceeded / strategy none).
    pub fn on_failure(&mut self, now_ms: i64) -> Option<Duration> {
        match self.cfg {
            RestartStrategyConfig::None => None,
            RestartStrategyConfig::FixedDelay { attempts, delay_ms } => {
                self.attempts = self.attempts.saturating_add(1);
                (self.attempts <= u64::from(attempts)).then(|| Duration::from_millis(delay_ms))
            }
            RestartStrategyConfig::FailureRate {
                max_failures,
                interval_ms,
                delay_ms,
            } => {
                let interval = i64::try_from(interval_ms).unwrap_or(i64::MAX);
                while let Some(&oldest) = self.failures.front() {
                    if now_ms.saturating_sub(oldest) > interval {
                        self.failures.pop_front();
                    } else {
                        break;
                    }
                }
                self.failures.push_back(now_ms);
                let max = usize::try_from(max_failures).unwrap_or(usize::MAX);
                // Only the newest `max + 1` can decide whether the rate is exceeded.
                while self.failures.len() > max.saturating_add(1) {
                    self.failures.pop_front();
                }
                (self.failures.len() <= max).then(|| Duration::from_millis(delay_ms))
            }
            RestartStrategyConfig::ExponentialDelay {
                initial_backoff_ms,
                max_backoff_ms,
                multiplier,
                reset_threshold_ms,
                jitter,
                attempts,
            } => {
                let initial = initial_backoff_ms.min(max_backoff_ms);
                let reset = match self.last_failure_ms {
                    None => true,
                    Some(last) => {
                        now_ms.saturating_sub(last)
                            >= i64::try_from(reset_threshold_ms).unwrap_or(i64::MAX)
                    }
                };
                if reset {
                    self.backoff_ms = initial;
                    self.attempts = 0;
                } else {
                    let grown = self.backoff_ms as f64 * multiplier.max(1.0);
                    self.backoff_ms = if grown >= max_backoff_ms as f64 {
                        max_backoff_ms
                    } else {
                        (grown as u64).max(initial)
                    };
                }
                self.last_failure_ms = Some(now_ms);
                self.attempts = self.attempts.saturating_add(1);
                if self.attempts > u64::from(attempts) {
                    return None;
                }
                let delay = self
                    .backoff_ms
                    .saturating_add_signed(self.jitter_ms(jitter, now_ms))
                    .min(max_backoff_ms);
                Some(Duration::from_millis(delay))
            }
        }
    }

    /// Uniform in `-offset..=offset` with `offset = jitter × backoff`, from a SplitMix64 hash
    /// of the failure time and the attempt number (same inputs, same jitter).
    fn jitter_ms(&self, jitter: f64, now_ms: i64) -> i64 {
        let offset = (self.backoff_ms as f64 * jitter.clamp(0.0, 1.0)) as u64;
        if offset == 0 {
            return 0;
        }
        let span = offset.saturating_mul(2).saturating_add(1);
        let r = splitmix64((now_ms as u64) ^ self.attempts.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        i64::try_from(r % span).unwrap_or(i64::MAX) - offset
    }

    /// Human-readable description for errors, e.g. "fixed-delay (3 attempts, 1s delay)".
    pub fn describe(&self) -> String {
        match &self.cfg {
            RestartStrategyConfig::None => "none (restarts disabled)".to_string(),
            RestartStrategyConfig::FixedDelay { attempts, delay_ms } => format!(
                "fixed-delay ({attempts} attempt{}, {} delay)",
                plural(u64::from(*attempts)),
                format_ms(*delay_ms)
            ),
            RestartStrategyConfig::FailureRate {
                max_failures,
                interval_ms,
                delay_ms,
            } => format!(
                "failure-rate (at most {max_failures} failure{} per {}, {} delay)",
                plural(u64::from(*max_failures)),
                format_ms(*interval_ms),
                format_ms(*delay_ms)
            ),
            RestartStrategyConfig::ExponentialDelay {
                initial_backoff_ms,
                max_backoff_ms,
                multiplier,
                reset_threshold_ms,
                jitter,
                attempts,
            } => {
                let attempts = if *attempts == u32::MAX {
                    "unlimited attempts".to_string()
                } else {
                    format!("{attempts} attempt{}", plural(u64::from(*attempts)))
                };
                format!(
                    "exponential-delay ({} initial backoff, {} max backoff, multiplier \
                     {multiplier}, jitter {jitter}, reset after {}, {attempts})",
                    format_ms(*initial_backoff_ms),
                    format_ms(*max_backoff_ms),
                    format_ms(*reset_threshold_ms),
                )
            }
        }
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `1h`, `1min`, `1s` or `1500ms`: the largest unit that divides the value.
fn format_ms(ms: u64) -> String {
    match ms {
        0 => "0ms".to_string(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}min", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn ms(d: Option<Duration>) -> Option<u64> {
        d.map(|d| d.as_millis() as u64)
    }

    fn exponential(jitter: f64, attempts: u32) -> RestartStrategyConfig {
        RestartStrategyConfig::ExponentialDelay {
            initial_backoff_ms: 1000,
            max_backoff_ms: 10_000,
            multiplier: 2.0,
            reset_threshold_ms: 60_000,
            jitter,
            attempts,
        }
    }

    #[test]
    fn none_never_restarts() {
        let mut r = RestartBackoff::new(&RestartStrategyConfig::None);
        assert_eq!(r.on_failure(T0), None);
        assert_eq!(r.on_failure(T0 + 3_600_000), None);
        assert_eq!(r.describe(), "none (restarts disabled)");
    }

    #[test]
    fn fixed_delay_restarts_attempts_times() {
        let cfg = RestartStrategyConfig::FixedDelay {
            attempts: 3,
            delay_ms: 1000,
        };
        let mut r = RestartBackoff::new(&cfg);
        for i in 0..3 {
            assert_eq!(ms(r.on_failure(T0 + i * 10_000)), Some(1000), "failure {i}");
        }
        assert_eq!(r.on_failure(T0 + 1_000_000), None);
        assert_eq!(r.on_failure(T0 + 2_000_000), None);
        assert_eq!(r.describe(), "fixed-delay (3 attempts, 1s delay)");

        let mut zero = RestartBackoff::new(&RestartStrategyConfig::FixedDelay {
            attempts: 0,
            delay_ms: 0,
        });
        assert_eq!(zero.on_failure(T0), None);
        assert_eq!(
            RestartBackoff::new(&RestartStrategyConfig::fixed_delay_default()).describe(),
            "fixed-delay (1 attempt, 1s delay)"
        );
    }

    #[test]
    fn failure_rate_counts_failures_within_the_interval() {
        let cfg = RestartStrategyConfig::FailureRate {
            max_failures: 2,
            interval_ms: 60_000,
            delay_ms: 500,
        };
        let mut r = RestartBackoff::new(&cfg);
        assert_eq!(ms(r.on_failure(T0)), Some(500));
        assert_eq!(ms(r.on_failure(T0 + 10_000)), Some(500));
        // Third failure within a minute of the first: rate exceeded.
        assert_eq!(r.on_failure(T0 + 20_000), None);

        // Failures spread out more than the interval never exceed the rate.
        let mut r = RestartBackoff::new(&cfg);
        for i in 0..20 {
            assert_eq!(ms(r.on_failure(T0 + i * 30_001)), Some(500), "failure {i}");
        }

        // A failure exactly `interval` ago still counts; one ms later it has left the window.
        let mut r = RestartBackoff::new(&cfg);
        assert!(r.on_failure(T0).is_some());
        assert!(r.on_failure(T0 + 1).is_some());
        assert_eq!(r.on_failure(T0 + 60_000), None);
        let mut r = RestartBackoff::new(&cfg);
        assert!(r.on_failure(T0).is_some());
        assert!(r.on_failure(T0 + 1).is_some());
        assert!(r.on_failure(T0 + 60_001).is_some());
        assert_eq!(
            r.describe(),
            "failure-rate (at most 2 failures per 1min, 500ms delay)"
        );
    }

    #[test]
    fn failure_rate_defaults_allow_one_failure_per_minute() {
        let mut r = RestartBackoff::new(&RestartStrategyConfig::failure_rate_default());
        assert_eq!(ms(r.on_failure(T0)), Some(1000));
        assert_eq!(r.on_failure(T0 + 59_000), None);
        let mut r = RestartBackoff::new(&RestartStrategyConfig::failure_rate_default());
        assert!(r.on_failure(T0).is_some());
        assert!(r.on_failure(T0 + 61_000).is_some());
    }

    #[test]
    fn exponential_delay_grows_to_the_max() {
        let mut r = RestartBackoff::new(&exponential(0.0, u32::MAX));
        let delays: Vec<_> = (0..6).map(|i| ms(r.on_failure(T0 + i * 1000))).collect();
        assert_eq!(
            delays,
            [1000, 2000, 4000, 8000, 10_000, 10_000].map(Some).to_vec()
        );
    }

    #[test]
    fn exponential_delay_truncates_fractional_backoff() {
        let mut r = RestartBackoff::new(&RestartStrategyConfig::ExponentialDelay {
            initial_backoff_ms: 1000,
            max_backoff_ms: 60_000,
            multiplier: 1.5,
            reset_threshold_ms: 3_600_000,
            jitter: 0.0,
            attempts: u32::MAX,
        });
        let delays: Vec<_> = (0..4).map(|i| ms(r.on_failure(T0 + i))).collect();
        assert_eq!(delays, [1000, 1500, 2250, 3375].map(Some).to_vec());
    }

    #[test]
    fn exponential_delay_resets_after_a_quiet_period() {
        let mut r = RestartBackoff::new(&exponential(0.0, 3));
        assert_eq!(ms(r.on_failure(T0)), Some(1000));
        assert_eq!(ms(r.on_failure(T0 + 5_000)), Some(2000));
        assert_eq!(ms(r.on_failure(T0 + 10_000)), Some(4000));
        // Just under the threshold since the previous failure: no reset, attempts exhausted.
        let mut exhausted = r.clone();
        assert_eq!(exhausted.on_failure(T0 + 10_000 + 59_999), None);
        // At the threshold: back to the initial backoff with a fresh attempt budget.
        assert_eq!(ms(r.on_failure(T0 + 70_000)), Some(1000));
        assert_eq!(ms(r.on_failure(T0 + 71_000)), Some(2000));
        assert_eq!(ms(r.on_failure(T0 + 72_000)), Some(4000));
        assert_eq!(r.on_failure(T0 + 73_000), None);
    }

    #[test]
    fn exponential_delay_exhausts_attempts() {
        let mut r = RestartBackoff::new(&exponential(0.0, 2));
        assert!(r.on_failure(T0).is_some());
        assert!(r.on_failure(T0 + 1).is_some());
        assert_eq!(r.on_failure(T0 + 2), None);
        assert!(r.describe().contains("2 attempts"), "{}", r.describe());
    }

    #[test]
    fn exponential_jitter_is_bounded_and_deterministic() {
        let mut seen = std::collections::BTreeSet::new();
        for t in 0..500 {
            let now = T0 + t * 7919;
            let mut r = RestartBackoff::new(&exponential(0.5, u32::MAX));
            let first = ms(r.on_failure(now)).unwrap();
            assert!((500..=1500).contains(&first), "{first}");
            seen.insert(first);
            // Same history, same delays.
            let mut again = RestartBackoff::new(&exponential(0.5, u32::MAX));
            assert_eq!(ms(again.on_failure(now)), Some(first));
            // Grown backoff 2000 ± 1000; at the max, jitter never exceeds the max.
            let second = ms(r.on_failure(now + 1)).unwrap();
            assert!((1000..=3000).contains(&second), "{second}");
            for i in 2..10 {
                let d = ms(r.on_failure(now + i)).unwrap();
                assert!(d <= 10_000, "{d}");
            }
            let at_max = ms(r.on_failure(now + 10)).unwrap();
            assert!((5000..=10_000).contains(&at_max), "{at_max}");
        }
        assert!(seen.len() > 100, "jitter should vary: {}", seen.len());
    }

    #[test]
    fn exponential_default_describes_itself() {
        let r = RestartBackoff::new(&RestartStrategyConfig::exponential_default());
        assert_eq!(
            r.describe(),
            "exponential-delay (1s initial backoff, 1min max backoff, multiplier 1.5, \
             jitter 0.1, reset after 1h, unlimited attempts)"
        );
    }

    #[test]
    fn durations_format_with_the_largest_unit() {
        assert_eq!(format_ms(0), "0ms");
        assert_eq!(format_ms(250), "250ms");
        assert_eq!(format_ms(1500), "1500ms");
        assert_eq!(format_ms(30_000), "30s");
        assert_eq!(format_ms(120_000), "2min");
        assert_eq!(format_ms(7_200_000), "2h");
    }
}
