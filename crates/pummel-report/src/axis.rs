//! Axis scales and their ticks: where a value lands on a chart and which round numbers label it.
//!
//! Linear value axes start at zero (a rate or a latency drawn from zero cannot exaggerate a
//! change) and end on a "nice" tick: 1, 2, 2.5 or 5 × 10^k apart. Logarithmic axes, used for
//! latency when the slowest requests are 50 times slower than the median, put a tick on every
//! decade (and on 2× and 5× when the range is short). Time axes tick on whole seconds, minutes
//! or hours.

use crate::fmt;

/// How values map to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (decades).
    Log,
}

/// One labelled tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Where it is, in the axis's unit.
    pub value: f64,
    /// What is written beside it.
    pub label: String,
}

/// An axis: its title (with the unit), its range and its ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The title, with the unit: `latency (ms)`, `req/s`.
    pub title: String,
    /// Linear or logarithmic.
    pub scale: Scale,
    /// Value at the start of the axis.
    pub min: f64,
    /// Value at the end of the axis.
    pub max: f64,
    /// The labelled ticks, ascending, all within `min..=max`.
    pub ticks: Vec<Tick>,
}

/// Ratio of the largest to the smallest positive value above which latency axes go log.
pub const LOG_RATIO: f64 = 50.0;

impl Axis {
    /// A linear axis from zero to a round number at or above `max_value` (0..1 when there is
    /// nothing above zero).
    pub fn from_zero(title: impl Into<String>, max_value: f64) -> Axis {
        let max_value = if max_value.is_finite() && max_value > 0.0 { max_value } else { 1.0 };
        let step = nice_step(max_value / 5.0);
        let top = (max_value / step - 1e-9).ceil().max(1.0) * step;
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= top + step * 1e-6)
            .map(|value| Tick { value, label: number(value) })
            .collect();
        Axis { title: title.into(), scale: Scale::Linear, min: 0.0, max: top, ticks }
    }

    /// A time axis in seconds from 0 to at least `last`, ticked on round durations.
    pub fn time(title: impl Into<String>, last: f64) -> Axis {
        const STEPS: [u64; 16] = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600];
        let last = if last.is_finite() && last > 0.0 { last } else { 1.0 };
        let step = STEPS.iter().copied().find(|s| last / *s as f64 <= 8.0).unwrap_or(86400);
        let top = ((last / step as f64) - 1e-9).ceil().max(1.0) as u64 * step;
        let ticks =
            (0..=top / step).map(|i| i * step).map(|s| Tick { value: s as f64, label: fmt::clock(s) }).collect();
        Axis { title: title.into(), scale: Scale::Linear, min: 0.0, max: top as f64, ticks }
    }

    /// A logarithmic axis covering `low..=high` (both positive), from decade to decade.
    pub fn log(title: impl Into<String>, low: f64, high: f64) -> Axis {
        let low = if low.is_finite() && low > 0.0 { low } else { 1.0 };
        let high = if high.is_finite() && high > low { high } else { low * 10.0 };
        let first = low.log10().floor() as i32;
        let mut last = high.log10().ceil() as i32;
        if last <= first {
            last = first + 1;
        }
        let multiples: &[f64] = if last - first <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        let mut ticks = Vec::new();
        for decade in first..=last {
            let base = 10f64.powi(decade);
            for m in multiples {
                let value = base * m;
                if value <= 10f64.powi(last) * (1.0 + 1e-9) {
                    ticks.push(Tick { value, label: number(value) });
                }
            }
        }
        Axis {
            title: format!("{} (log scale)", title.into()),
            scale: Scale::Log,
            min: 10f64.powi(first),
            max: 10f64.powi(last),
            ticks,
        }
    }

    /// A latency axis: linear from zero, unless the values span more than [`LOG_RATIO`], when
    /// a log axis keeps the median readable beside a slow maximum.
    pub fn latency(title: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Axis {
        let (mut low, mut high) = (f64::INFINITY, 0.0f64);
        for v in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
            low = low.min(v);
            high = high.max(v);
        }
        if high > 0.0 && high / low >= LOG_RATIO { Axis::log(title, low, high) } else { Axis::from_zero(title, high) }
    }

    /// Where `value` lies along the axis: 0.0 at `min`, 1.0 at `max`, clamped to that range.
    pub fn fraction(&self, value: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (value - self.min) / (self.max - self.min),
            Scale::Log => {
                let v = value.max(self.min);
                (v.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
            }
        };
        if f.is_finite() { f.clamp(0.0, 1.0) } else { 0.0 }
    }
}

/// A round step near `raw`: 1, 2, 2.5 or 5 times a power of ten.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A tick label: short (`2.5k`, `1M`, `0.5`), with no more decimals than the value needs.
pub fn number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let (scaled, suffix) = if value.abs() >= 1e6 {
        (value / 1e6, "M")
    } else if value.abs() >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let decimals = (0..4)
        .find(|d| {
            let f = 10f64.powi(*d);
            ((scaled * f).round() - scaled * f).abs() < 1e-6 * f
        })
        .unwrap_or(3);
    format!("{scaled:.*}{suffix}", decimals as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(axis: &Axis) -> Vec<&str> {
        axis.ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn linear_axes_end_on_a_round_tick() {
        let a = Axis::from_zero("req/s", 2004.0);
        assert_eq!(a.max, 2500.0);
        assert_eq!(labels(&a), ["0", "500", "1k", "1.5k", "2k", "2.5k"]);
        let b = Axis::from_zero("ms", 22.1);
        assert_eq!(b.max, 25.0);
        assert_eq!(labels(&b), ["0", "5", "10", "15", "20", "25"]);
        let c = Axis::from_zero("ms", 0.0);
        assert_eq!((c.min, c.max), (0.0, 1.0));
        let d = Axis::from_zero("%", 0.9);
        assert_eq!(labels(&d), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
    }

    #[test]
    fn exact_maxima_are_not_padded() {
        assert_eq!(Axis::from_zero("x", 2000.0).max, 2000.0);
    }

    #[test]
    fn time_axes_tick_on_round_durations() {
        assert_eq!(labels(&Axis::time("t", 11.0)), ["0", "2s", "4s", "6s", "8s", "10s", "12s"]);
        let long = Axis::time("t", 600.0);
        assert_eq!(long.max, 600.0);
        assert_eq!(labels(&long)[1], "2m");
    }

    #[test]
    fn latency_goes_log_only_over_a_wide_range() {
        assert_eq!(Axis::latency("ms", [10.0, 25.0]).scale, Scale::Linear);
        let log = Axis::latency("ms", [0.8, 1000.0]);
        assert_eq!(log.scale, Scale::Log);
        assert_eq!((log.min, log.max), (0.1, 1000.0));
        assert_eq!(labels(&log), ["0.1", "1", "10", "100", "1k"]);
        assert!((log.fraction(1.0) - 1.0 / 4.0).abs() < 1e-9);
    }

    #[test]
    fn fractions_are_clamped() {
        let a = Axis::from_zero("x", 10.0);
        assert_eq!(a.fraction(5.0), 0.5);
        assert_eq!(a.fraction(-1.0), 0.0);
        assert_eq!(a.fraction(f64::NAN), 0.0);
    }
}
