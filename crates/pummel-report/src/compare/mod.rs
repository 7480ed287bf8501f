//! Two runs side by side, metric by metric, with a verdict per row: the regression gate of CI.
//!
//! Rows: achieved rate, latency p50, p90, p99, max and mean, service-time p99 and error rate
//! over the whole run, then, when both runs have the same number of stages (more than one),
//! rate, p50, p99 and error rate per stage, and for plan files the same four per request name
//! that both runs have. Each row has the base and new values, the change in
//! percent, the tolerance, and a verdict:
//!
//! - **same** when the change is within the noise of the two runs (see [`noise`]), each metric
//!   judged by its own per-second series: for rate, latency and service time, |change| ≤
//!   max(2 × the larger per-second relative spread, 2 %); for the error rate, |new − base| ≤
//!   max(2 × the larger per-second spread, 0.1 percentage point). Service time with no
//!   per-second series in either run (older results) gets a fixed ±10 %, and a note says so;
//! - otherwise **better** or **worse** by direction: a higher rate is better, a higher latency
//!   or error rate is worse;
//! - **n/a** when only one of the runs has the figure (e.g. no request completed).
//!
//! [`fail_if`] rules are judged on the raw change of the whole-run rows, noise or not: a gate
//! says exactly what it checks.

pub mod fail_if;
pub mod noise;
pub mod render;

use pummel_results::document::ResultsDocument;
use pummel_results::summary::{LatencyFigures, NamedSummary, StageSummary, Summary};
use serde::{Serialize, Serializer};

use crate::fmt;
pub use noise::Noise;

/// A figure that `compare` puts side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Achieved rate, completed requests per second.
    Rate,
    /// Latency median (from the intended start).
    P50,
    /// Latency 90th percentile.
    P90,
    /// Latency 99th percentile.
    P99,
    /// Slowest request.
    Max,
    /// Mean latency.
    Mean,
    /// Service time 99th percentile (from the actual send).
    ServiceP99,
    /// Failed over completed requests.
    ErrorRate,
}

/// How a metric's values are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Requests per second.
    PerSecond,
    /// A fraction (0.01 = 1 %).
    Fraction,
}

impl Metric {
    /// Every metric of the whole-run rows, in order.
    pub const ALL: [Metric; 8] = [
        Metric::Rate,
        Metric::P50,
        Metric::P90,
        Metric::P99,
        Metric::Max,
        Metric::Mean,
        Metric::ServiceP99,
        Metric::ErrorRate,
    ];

    /// The metrics repeated per stage.
    pub const PER_STAGE: [Metric; 4] = [Metric::Rate, Metric::P50, Metric::P99, Metric::ErrorRate];

    /// The name used in `--fail-if` and JSON: `rate`, `p99`, `service.p99`, `error_rate`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rate => "rate",
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P99 => "p99",
            Metric::Max => "max",
            Metric::Mean => "mean",
            Metric::ServiceP99 => "service.p99",
            Metric::ErrorRate => "error_rate",
        }
    }

    /// The label of its row: `latency p99`.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Rate => "achieved rate",
            Metric::P50 => "latency p50",
            Metric::P90 => "latency p90",
            Metric::P99 => "latency p99",
            Metric::Max => "latency max",
            Metric::Mean => "latency mean",
            Metric::ServiceP99 => "service time p99",
            Metric::ErrorRate => "error rate",
        }
    }

    /// Its unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::Rate => Unit::PerSecond,
            Metric::ErrorRate => Unit::Fraction,
            _ => Unit::Ms,
        }
    }

    /// True when more is better (only the rate).
    pub fn higher_is_better(self) -> bool {
        self == Metric::Rate
    }

    /// A value of this metric as people read it.
    pub fn show(self, value: f64) -> String {
        match self.unit() {
            Unit::Ms => fmt::ms(value),
            Unit::PerSecond => format!("{} req/s", fmt::rate(value)),
            Unit::Fraction => fmt::percent(value),
        }
    }

    fn of_run(self, s: &Summary) -> Option<f64> {
        let l = s.latency_ms;
        match self {
            Metric::Rate => Some(s.rate.achieved),
            Metric::P50 => l.map(|l| l.p50),
            Metric::P90 => l.map(|l| l.p90),
            Metric::P99 => l.map(|l| l.p99),
            Metric::Max => l.map(|l| l.max),
            Metric::Mean => l.map(|l| l.mean),
            Metric::ServiceP99 => s.service_time_ms.map(|l| l.p99),
            Metric::ErrorRate => (s.requests.completed > 0).then_some(s.requests.error_rate),
        }
    }

    fn of_stage(self, s: &StageSummary) -> Option<f64> {
        self.of_part(s.achieved_rate, s.latency_ms, s.completed, s.error_rate)
    }

    fn of_named(self, s: &NamedSummary) -> Option<f64> {
        self.of_part(s.rate, s.latency_ms, s.completed, s.error_rate)
    }

    /// The figure of a part of a run (a stage, a request name), which has no service time.
    fn of_part(self, rate: f64, l: Option<LatencyFigures>, completed: u64, error_rate: f64) -> Option<f64> {
        match self {
            Metric::Rate => Some(rate),
            Metric::P50 => l.map(|l| l.p50),
            Metric::P90 => l.map(|l| l.p90),
            Metric::P99 => l.map(|l| l.p99),
            Metric::Max => l.map(|l| l.max),
            Metric::Mean => l.map(|l| l.mean),
            Metric::ServiceP99 => None,
            Metric::ErrorRate => (completed > 0).then_some(error_rate),
        }
    }

    /// The per-second spread of this metric's own series in a run (relative; absolute for the
    /// error rate); `None` when the run's timeline has no such series.
    fn spread(self, n: &Noise) -> Option<f64> {
        match self {
            Metric::Rate => Some(n.rate),
            Metric::P50 | Metric::Mean => Some(n.p50),
            Metric::P90 => Some(n.p90),
            Metric::P99 => Some(n.p99),
            Metric::ServiceP99 => n.service_p99,
            Metric::Max => Some(n.max),
            Metric::ErrorRate => Some(n.error_rate),
        }
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The verdict of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Changed for the better, beyond the noise.
    Better,
    /// Changed for the worse, beyond the noise.
    Worse,
    /// Within the noise.
    Same,
    /// Only one run has the figure.
    #[serde(rename = "n/a")]
    NotComparable,
}

impl Verdict {
    /// `better`, `worse`, `same`, `n/a`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
            Verdict::NotComparable => "n/a",
        }
    }
}

/// How far a value may move and still be "same".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tolerance {
    /// A relative band, in percent of the base value.
    Relative {
        /// ± percent.
        pct: f64,
    },
    /// An absolute band in the metric's unit (the error rate: a fraction).
    Absolute {
        /// ± value.
        value: f64,
    },
}

impl Tolerance {
    /// `±2.0%`, `±0.10 pp`.
    pub fn show(self) -> String {
        match self {
            Tolerance::Relative { pct } => format!("±{pct:.1}%"),
            Tolerance::Absolute { value } => format!("±{:.2} pp", value * 100.0),
        }
    }
}

/// One metric of one scope (the whole run or a stage), side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// 1-based stage number, or `None` for the whole run.
    pub stage: Option<usize>,
    /// The request name of a plan file's per-name row; `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What is compared.
    pub metric: Metric,
    /// The row's label: `latency p99`, `stage 2 (1,000 req/s) latency p99`.
    pub label: String,
    /// Value in the base run (ms, req/s or a fraction).
    pub base: Option<f64>,
    /// Value in the new run.
    pub new: Option<f64>,
    /// new − base, in the metric's unit.
    pub change: Option<f64>,
    /// (new − base) / base in percent; `None` when either is missing or base is 0 and new is not.
    pub change_pct: Option<f64>,
    /// The band within which the row is "same".
    pub tolerance: Tolerance,
    /// The verdict.
    pub verdict: Verdict,
}

/// One run's identity, for the heading and the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// The file as given.
    pub path: String,
    /// When it started.
    pub started_at: String,
    /// `GET http://...`.
    pub target: String,
    /// Seconds measured.
    pub duration_s: f64,
    /// True when the run was cut short.
    pub partial: bool,
    /// Its per-second noise.
    pub noise: Noise,
}

impl RunInfo {
    fn of(doc: &ResultsDocument, path: &str) -> RunInfo {
        let text = |p: &str| doc.plan.pointer(p).and_then(|v| v.as_str()).unwrap_or("?").to_string();
        RunInfo {
            path: path.to_string(),
            started_at: doc.started_at.clone(),
            target: format!("{} {}", doc.method().unwrap_or("?"), text("/target/url")),
            duration_s: doc.summary.duration_s,
            partial: doc.summary.partial,
            noise: Noise::estimate(&doc.timeline),
        }
    }
}

/// Two runs compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The reference run.
    pub base: RunInfo,
    /// The run under judgement.
    pub new: RunInfo,
    /// Whole-run rows, then per-stage rows.
    pub rows: Vec<Row>,
    /// Remarks worth reading before trusting the rows (different targets, partial runs...).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Compares `new` against `base`; the paths are only used in messages.
    pub fn new(base: &ResultsDocument, base_path: &str, new: &ResultsDocument, new_path: &str) -> Comparison {
        let base_info = RunInfo::of(base, base_path);
        let new_info = RunInfo::of(new, new_path);
        let mut rows: Vec<Row> = Metric::ALL
            .iter()
            .filter_map(|m| {
                row(
                    *m,
                    None,
                    m.label().to_string(),
                    m.of_run(&base.summary),
                    m.of_run(&new.summary),
                    &base_info.noise,
                    &new_info.noise,
                )
            })
            .collect();
        let mut notes = Vec::new();
        let (bs, ns) = (&base.summary.stages, &new.summary.stages);
        if bs.len() == ns.len() && bs.len() > 1 {
            for (i, (b, n)) in bs.iter().zip(ns).enumerate() {
                let scope = match b.target_rate {
                    Some(r) => format!("stage {} ({} req/s)", i + 1, fmt::rate(r)),
                    None => format!("stage {}", i + 1),
                };
                rows.extend(Metric::PER_STAGE.iter().filter_map(|m| {
                    let label = format!("{scope} {}", m.label());
                    row(*m, Some(i + 1), label, m.of_stage(b), m.of_stage(n), &base_info.noise, &new_info.noise)
                }));
            }
        } else if bs.len() != ns.len() {
            notes.push(format!("the runs have {} and {} stages: per-stage rows left out", bs.len(), ns.len()));
        }
        for b in &base.summary.by_name {
            let Some(n) = new.summary.by_name.iter().find(|n| n.name == b.name) else { continue };
            rows.extend(Metric::PER_STAGE.iter().filter_map(|m| {
                let label = format!("{} {}", b.name, m.label());
                let mut row = row(*m, None, label, m.of_named(b), m.of_named(n), &base_info.noise, &new_info.noise)?;
                row.name = Some(b.name.clone());
                Some(row)
            }));
        }
        let unknown = Metric::ServiceP99.spread(&base_info.noise).or(Metric::ServiceP99.spread(&new_info.noise));
        if unknown.is_none() && rows.iter().any(|r| r.metric == Metric::ServiceP99) {
            notes.push(format!(
                "service time p99: neither timeline has per-second service times (results from an older pummel), \
                 so its noise is unknown and its band is a fixed ±{:.0}%",
                noise::SERVICE_FALLBACK * 100.0
            ));
        }
        if base_info.target != new_info.target {
            notes.push(format!("different targets: {} vs {}", base_info.target, new_info.target));
        }
        if base.load() != new.load() || base.scenario_names() != new.scenario_names() {
            notes.push("the load differs between the runs (rate, stages or connections)".to_string());
        }
        for info in [&base_info, &new_info] {
            if info.partial {
                notes.push(format!("{} is partial (interrupted or aborted)", info.path));
            }
        }
        Comparison { base: base_info, new: new_info, rows, notes }
    }

    /// The whole-run row of `metric`; `None` when neither run has the figure.
    pub fn run_row(&self, metric: Metric) -> Option<&Row> {
        self.rows.iter().find(|r| r.stage.is_none() && r.name.is_none() && r.metric == metric)
    }
}

/// Builds one row; `None` when neither run has the figure.
fn row(
    metric: Metric,
    stage: Option<usize>,
    label: String,
    base: Option<f64>,
    new: Option<f64>,
    nb: &Noise,
    nn: &Noise,
) -> Option<Row> {
    if base.is_none() && new.is_none() {
        return None;
    }
    // The larger spread of the runs that have the metric's series.
    let spread = match (metric.spread(nb), metric.spread(nn)) {
        (Some(b), Some(n)) => Some(b.max(n)),
        (one, other) => one.or(other),
    };
    let tolerance = match (metric.unit(), spread) {
        (Unit::Fraction, spread) => {
            Tolerance::Absolute { value: (noise::NOISE_FACTOR * spread.unwrap_or(0.0)).max(noise::MIN_ERROR_RATE) }
        }
        (_, Some(spread)) => {
            Tolerance::Relative { pct: 100.0 * (noise::NOISE_FACTOR * spread).max(noise::MIN_RELATIVE) }
        }
        (_, None) => Tolerance::Relative { pct: 100.0 * noise::SERVICE_FALLBACK },
    };
    let change = base.zip(new).map(|(b, n)| n - b);
    let change_pct = base.zip(new).and_then(|(b, n)| relative_change_pct(b, n)).filter(|c| c.is_finite());
    let verdict = match base.zip(new) {
        None => Verdict::NotComparable,
        Some((b, n)) => {
            let same = match tolerance {
                Tolerance::Absolute { value } => (n - b).abs() <= value,
                Tolerance::Relative { pct } => relative_change_pct(b, n).is_some_and(|c| c.abs() <= pct),
            };
            if same {
                Verdict::Same
            } else if (n > b) == metric.higher_is_better() {
                Verdict::Better
            } else {
                Verdict::Worse
            }
        }
    };
    Some(Row { stage, name: None, metric, label, base, new, change, change_pct, tolerance, verdict })
}

/// (new − base) / base in percent: 0 when both are 0, ±∞ when only base is 0.
pub fn relative_change_pct(base: f64, new: f64) -> Option<f64> {
    if !(base.is_finite() && new.is_finite()) {
        return None;
    }
    if base == 0.0 {
        return Some(if new == 0.0 { 0.0 } else { f64::INFINITY.copysign(new) });
    }
    Some((new - base) / base.abs() * 100.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fixture;

    /// A copy of `doc` whose every latency (summary, stages, timeline) is multiplied by `factor`.
    pub fn scale_latency(doc: &ResultsDocument, factor: f64) -> ResultsDocument {
        let mut doc = doc.clone();
        let scale = |l: &mut pummel_results::summary::LatencyFigures| {
            for v in [&mut l.min, &mut l.mean, &mut l.p50, &mut l.p90, &mut l.p95, &mut l.p99, &mut l.p999, &mut l.max]
            {
                *v *= factor;
            }
        };
        doc.summary.latency_ms.iter_mut().for_each(scale);
        doc.summary.service_time_ms.iter_mut().for_each(scale);
        doc.summary.stages.iter_mut().flat_map(|s| s.latency_ms.iter_mut()).for_each(scale);
        for e in &mut doc.timeline {
            for l in e.latency_ms.iter_mut().chain(e.service_time_ms.iter_mut()) {
                l.p50 *= factor;
                l.p90 *= factor;
                l.p99 *= factor;
                l.max *= factor;
            }
        }
        doc
    }

    /// `doc` with per-second latency p99 growing a hundredfold over the run (a target that
    /// breaks: requests wait longer and longer in line), and per-second service-time p99
    /// wobbling by ±`wobble` (relative) around its value.
    fn swinging(doc: &ResultsDocument, wobble: f64) -> ResultsDocument {
        let mut doc = doc.clone();
        for (i, e) in doc.timeline.iter_mut().enumerate() {
            if let Some(l) = &mut e.latency_ms {
                l.p99 *= (1.0 + i as f64).powi(2);
            }
            if let Some(s) = &mut e.service_time_ms {
                s.p99 *= 1.0 + wobble * ((i % 3) as f64 - 1.0);
            }
        }
        doc
    }

    /// `doc` with its run's service-time p99 multiplied by `factor`.
    fn service_p99_times(doc: &ResultsDocument, factor: f64) -> ResultsDocument {
        let mut doc = doc.clone();
        doc.summary.service_time_ms.iter_mut().for_each(|s| s.p99 *= factor);
        doc
    }

    #[test]
    fn service_time_is_judged_by_its_own_noise() {
        let base = swinging(&fixture::open_run(), 0.0);
        // The latency's band is huge; service time is steady, and 98 % faster.
        let new = service_p99_times(&base, 0.02);
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        let latency = c.run_row(Metric::P99).unwrap();
        assert!(matches!(latency.tolerance, Tolerance::Relative { pct } if pct > 100.0), "{latency:?}");
        let service = c.run_row(Metric::ServiceP99).unwrap();
        assert_eq!(service.tolerance, Tolerance::Relative { pct: 2.0 }, "steady: the 2 % floor");
        assert_eq!(service.verdict, Verdict::Better, "{service:?}");
        let back = Comparison::new(&new, "b.json", &base, "a.json");
        assert_eq!(back.run_row(Metric::ServiceP99).unwrap().verdict, Verdict::Worse);
        assert!(c.notes.iter().all(|n| !n.contains("service time")), "{:?}", c.notes);
    }

    #[test]
    fn a_service_time_change_within_its_own_noise_is_the_same() {
        // Service time itself wobbles ±10 % from second to second: a 10 % change is noise.
        let base = swinging(&fixture::open_run(), 0.1);
        let new = service_p99_times(&base, 0.9);
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        let service = c.run_row(Metric::ServiceP99).unwrap();
        assert!(matches!(service.tolerance, Tolerance::Relative { pct } if pct > 10.0 && pct < 100.0), "{service:?}");
        assert_eq!(service.verdict, Verdict::Same, "{service:?}");
    }

    #[test]
    fn without_a_service_time_series_the_band_is_fixed_and_said() {
        let mut base = swinging(&fixture::open_run(), 0.0);
        for e in &mut base.timeline {
            e.service_time_ms = None;
        }
        let c = Comparison::new(&base, "a.json", &service_p99_times(&base, 0.02), "b.json");
        let service = c.run_row(Metric::ServiceP99).unwrap();
        assert_eq!(service.tolerance, Tolerance::Relative { pct: 10.0 });
        assert_eq!(service.verdict, Verdict::Better, "a 98 % change is never the same");
        assert!(c.notes.iter().any(|n| n.contains("neither timeline has per-second service times")), "{:?}", c.notes);
        let c = Comparison::new(&base, "a.json", &service_p99_times(&base, 1.05), "b.json");
        assert_eq!(c.run_row(Metric::ServiceP99).unwrap().verdict, Verdict::Same);
    }

    #[test]
    fn identical_runs_are_the_same_everywhere() {
        let doc = fixture::find_limit_run();
        let c = Comparison::new(&doc, "a.json", &doc, "b.json");
        assert_eq!(c.rows.len(), Metric::ALL.len() + 4 * Metric::PER_STAGE.len());
        assert!(c.rows.iter().all(|r| r.verdict == Verdict::Same), "{:#?}", c.rows);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn doubled_latency_is_worse_and_a_lower_rate_too() {
        let base = fixture::open_run();
        let mut new = scale_latency(&base, 2.0);
        new.summary.rate.achieved *= 0.5;
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        let p99 = c.run_row(Metric::P99).unwrap();
        assert_eq!(p99.verdict, Verdict::Worse);
        assert!((p99.change_pct.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(c.run_row(Metric::Rate).unwrap().verdict, Verdict::Worse);
        assert_eq!(c.run_row(Metric::ErrorRate).unwrap().verdict, Verdict::Same);
        let back = Comparison::new(&new, "b.json", &base, "a.json");
        assert_eq!(back.run_row(Metric::P99).unwrap().verdict, Verdict::Better);
        assert_eq!(back.run_row(Metric::Rate).unwrap().verdict, Verdict::Better);
    }

    #[test]
    fn small_changes_are_noise() {
        let base = fixture::open_run();
        let new = scale_latency(&base, 1.015);
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        assert!(c.rows.iter().all(|r| r.verdict == Verdict::Same), "{:#?}", c.rows);
    }

    #[test]
    fn error_rate_uses_an_absolute_band() {
        let base = fixture::open_run();
        let mut new = base.clone();
        new.summary.requests.error_rate += 0.0005;
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        assert_eq!(c.run_row(Metric::ErrorRate).unwrap().verdict, Verdict::Same);
        new.summary.requests.error_rate += 0.05;
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        assert_eq!(c.run_row(Metric::ErrorRate).unwrap().verdict, Verdict::Worse);
    }

    #[test]
    fn missing_figures_are_not_comparable() {
        let base = fixture::open_run();
        let mut new = base.clone();
        new.summary.latency_ms = None;
        let c = Comparison::new(&base, "a.json", &new, "b.json");
        assert_eq!(c.run_row(Metric::P99).unwrap().verdict, Verdict::NotComparable);
        assert_eq!(relative_change_pct(0.0, 0.0), Some(0.0));
        assert_eq!(relative_change_pct(0.0, 1.0), Some(f64::INFINITY));
    }

    #[test]
    fn different_stage_counts_are_noted() {
        let a = fixture::open_run();
        let b = fixture::find_limit_run();
        let c = Comparison::new(&a, "a.json", &b, "b.json");
        assert!(c.rows.iter().all(|r| r.stage.is_none()));
        assert!(c.notes.iter().any(|n| n.contains("1 and 4 stages")), "{:?}", c.notes);
        assert!(c.notes.iter().any(|n| n.contains("different targets")), "{:?}", c.notes);
    }
}
