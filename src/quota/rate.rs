//! The rate a quota is checked against and the throttle time of a violation, computed as
//! Kafka's metrics library and `ClientQuotaManager` do, so clients see the same numbers:
//!
//! - a `Rate` over a `SampledStat` of `quota.window.num` samples, each
//!   `quota.window.size.seconds` long: a record goes into the current sample, which is
//!   replaced by a fresh one once it is a window old; samples older than all the windows
//!   together are reset before measuring;
//! - the rate is the samples' sum over the time they span, counted as at least
//!   `samples - 1` full windows (so a new client's first burst is spread over the whole
//!   window rather than over the few milliseconds it has existed);
//! - a violation (the rate after recording is above the bound) throttles for
//!   `(rate - bound) / bound * window` milliseconds: the time after which the same samples
//!   give exactly the bound.
//!
//! Times are milliseconds from any fixed origin (the shard's start); pure arithmetic, no
//! clock, so the tests drive it by hand.

/// `quota.window.num` and `quota.window.size.seconds`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Number of samples kept (Kafka default 11).
    pub samples: u32,
    /// Length of one sample in ms (Kafka default 1000).
    pub window_ms: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            samples: 11,
            window_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// When the sample started (Kafka's `lastWindowMs`).
    start_ms: u64,
    value: f64,
}

/// A windowed rate per second (Kafka's `Rate` over `WindowedSum`); see the module doc.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    /// Adds `value` at `now_ms` (Kafka's `SampledStat.record`).
    pub fn record(&mut self, config: WindowConfig, value: f64, now_ms: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample {
                start_ms: now_ms,
                value: 0.0,
            });
            self.current = 0;
        }
        let complete =
            now_ms.saturating_sub(self.samples[self.current].start_ms) >= config.window_ms;
        if complete {
            self.current = (self.current + 1) % config.samples.max(1) as usize;
            let fresh = Sample {
                start_ms: now_ms,
                value: 0.0,
            };
            match self.samples.get_mut(self.current) {
                Some(sample) => *sample = fresh,
                None => self.samples.push(fresh),
            }
        }
        self.samples[self.current].value += value;
    }

    /// Resets samples too old to count (Kafka's `purgeObsoleteSamples`).
    fn purge(&mut self, config: WindowConfig, now_ms: u64) {
        let expire_age = u64::from(config.samples) * config.window_ms;
        for sample in &mut self.samples {
            if now_ms.saturating_sub(sample.start_ms) >= expire_age {
                *sample = Sample {
                    start_ms: now_ms,
                    value: 0.0,
                };
            }
        }
    }

    /// The time the rate is measured over, in ms (Kafka's `Rate.windowSize`): from the
    /// oldest sample to now, but at least `samples - 1` full windows, and at least 1 ms.
    pub fn window_size_ms(&mut self, config: WindowConfig, now_ms: u64) -> u64 {
        self.purge(config, now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full_windows = elapsed / config.window_ms.max(1);
        let min_full_windows = u64::from(config.samples.saturating_sub(1));
        if full_windows < min_full_windows {
            elapsed += (min_full_windows - full_windows) * config.window_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second at `now_ms` (Kafka's `Rate.measure`).
    pub fn measure(&mut self, config: WindowConfig, now_ms: u64) -> f64 {
        let window = self.window_size_ms(config, now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }
}

/// Kafka's `ClientQuotaManager.throttleTime`: how long to hold a client whose `rate` is above
/// `bound` so that, measured over `window_ms`, it comes back to the bound; 0 when within it.
#[must_use]
pub fn throttle_ms(rate: f64, bound: f64, window_ms: u64) -> u64 {
    if rate <= bound || bound <= 0.0 {
        return 0;
    }
    ((rate - bound) / bound * window_ms as f64).round() as u64
}

/// Records `value` and answers the throttle time the bound calls for (Kafka's
/// `Sensor.record` with a quota, then `throttleTime` of the violation).
pub fn record_and_throttle(
    rate: &mut Rate,
    config: WindowConfig,
    value: f64,
    bound: f64,
    now_ms: u64,
) -> u64 {
    rate.record(config, value, now_ms);
    let observed = rate.measure(config, now_ms);
    if observed <= bound {
        return 0;
    }
    throttle_ms(observed, bound, rate.window_size_ms(config, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: WindowConfig = WindowConfig {
        samples: 11,
        window_ms: 1000,
    };

    #[test]
    fn a_new_sensor_spreads_its_first_bytes_over_samples_minus_one_windows() {
        let mut rate = Rate::default();
        rate.record(CONFIG, 10_000.0, 0);
        // 10 full windows are assumed: 10 000 bytes / 10 s.
        assert_eq!(rate.window_size_ms(CONFIG, 0), 10_000);
        assert!((rate.measure(CONFIG, 0) - 1000.0).abs() < 1e-9);
        // Half a second later the window is 10.5 s.
        assert!((rate.measure(CONFIG, 500) - 10_000.0 / 10.5).abs() < 1e-9);
    }

    #[test]
    fn samples_roll_over_and_expire() {
        let mut rate = Rate::default();
        for second in 0..30u64 {
            rate.record(CONFIG, 100.0, second * 1000);
        }
        // 11 samples of 100 bytes spanning 10 s (the oldest started at 19 s).
        assert!((rate.measure(CONFIG, 29_000) - 110.0).abs() < 1e-9);
        // Long after the last record every sample is obsolete: no rate.
        assert_eq!(rate.measure(CONFIG, 100_000), 0.0);
    }

    #[test]
    fn throttle_time_is_kafkas_formula() {
        // 50% over the bound on a 10 s window: 5 s of silence bring it back.
        assert_eq!(throttle_ms(1500.0, 1000.0, 10_000), 5000);
        assert_eq!(throttle_ms(999.0, 1000.0, 10_000), 0);
        assert_eq!(throttle_ms(1000.0, 1000.0, 10_000), 0);
        let mut rate = Rate::default();
        // 15 000 bytes at once against 1000 B/s: rate 1500 B/s over 10 s.
        let t = record_and_throttle(&mut rate, CONFIG, 15_000.0, 1000.0, 0);
        assert_eq!(t, 5000);
    }

    #[test]
    fn a_steady_client_obeying_the_throttle_converges_to_the_bound() {
        // A client sending 10 KiB as soon as it is allowed against a 100 KiB/s bound. As in
        // Kafka it may burst a window's worth whenever the oldest sample expires and pays it
        // back over the next window, so over a finite time it is ahead by at most one window's
        // worth: measured over 10 minutes, within 2%.
        let mut rate = Rate::default();
        let (bound, chunk) = (100.0 * 1024.0, 10.0 * 1024.0);
        let (mut now, mut sent) = (0u64, 0.0);
        while now < 600_000 {
            let throttle = record_and_throttle(&mut rate, CONFIG, chunk, bound, now);
            sent += chunk;
            now += throttle.max(1);
        }
        let achieved = sent / 600.0;
        assert!(
            (achieved - bound).abs() / bound < 0.02,
            "achieved {achieved} B/s against {bound}"
        );
    }
}
