//! A small line-chart renderer: one [`Chart`] becomes one inline `<svg>` element, with axes,
//! ticks, grid lines, axis titles (which carry the units), a legend, shaded bands, marker lines
//! and a tooltip per data point. No script, no external file: colours and fonts are attributes
//! of the SVG itself, so a chart also reads correctly when copied out of the page.
//!
//! # How data points are counted (the tests rely on this)
//!
//! - The root `<svg class="chart">` carries `data-chart="<id>"` and `data-points="N"`, where N
//!   is the number of x positions (for a timeline chart: the number of timeline entries).
//! - Each series is a `<g class="series" data-series="<name>" data-points="M">`, where M is the
//!   number of its values that exist; its `<polyline>` elements together have exactly M
//!   vertices (a second without a value, such as latency in a second where nothing completed,
//!   breaks the line in two rather than inventing a value). Lone vertices also get a small
//!   `<circle class="lone">`, so that they are visible; those circles are not extra points.
//! - One `<rect class="hit">` per x position carries that position's `<title>` tooltip, so
//!   every chart has exactly N of them.

use std::fmt::Write;

use crate::axis::Axis;

/// Width of every chart, in SVG user units (pixels at 100 % zoom).
pub const WIDTH: f64 = 600.0;
/// Height of every chart.
pub const HEIGHT: f64 = 300.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 18.0;
const BOTTOM: f64 = 44.0;
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const INK: &str = "#1f2937";
const MUTED: &str = "#6b7280";
const GRID: &str = "#e5e7eb";

/// How a series marks its points besides the line.
#[derive(Debug, Clone, PartialEq)]
pub enum Marks {
    /// A line only.
    Line,
    /// A line and a dot on every point, in the series colour.
    Dots,
    /// A line and a dot on every point, each dot in its own colour (e.g. good / bad steps).
    ColouredDots(Vec<&'static str>),
}

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text, also `data-series`.
    pub name: String,
    /// Stroke colour.
    pub colour: &'static str,
    /// Drawn dashed (targets and references, as opposed to measurements).
    pub dashed: bool,
    /// One value per x position; `None` where there is none.
    pub values: Vec<Option<f64>>,
    /// Dots on the points.
    pub marks: Marks,
}

impl Series {
    /// A solid line without dots.
    pub fn line(name: impl Into<String>, colour: &'static str, values: Vec<Option<f64>>) -> Series {
        Series { name: name.into(), colour, dashed: false, values, marks: Marks::Line }
    }
}

/// A shaded range of x (the warmup, the drain, a fault).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Start, in x units.
    pub from: f64,
    /// End, in x units.
    pub to: f64,
    /// Written at its top left.
    pub label: String,
    /// A fault's window (issue 13): tinted red and always labelled with the fault's name.
    pub fault: bool,
}

/// A labelled reference line across the plot.
#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    /// A vertical line at `x`; with `ring`, a circle is drawn at `(x, ring)` too.
    Vertical {
        /// Position, in x units.
        x: f64,
        /// Written beside the line's top.
        label: String,
        /// Optional y value of a highlighted point on the line.
        ring: Option<f64>,
        /// Line colour.
        colour: &'static str,
    },
    /// A horizontal line at `y` (an SLO, a limit).
    Horizontal {
        /// Position, in y units.
        y: f64,
        /// Written above the line's right end.
        label: String,
        /// Line colour.
        colour: &'static str,
    },
    /// A faint unlabelled vertical line (a stage boundary).
    Divider {
        /// Position, in x units.
        x: f64,
    },
}

/// Everything one chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Short identifier (`latency`), written as `data-chart` and used for element ids.
    pub id: String,
    /// The heading written at the top of the chart.
    pub title: String,
    /// The x position of every point (seconds, or req/s for the latency-vs-throughput curve).
    pub xs: Vec<f64>,
    /// The horizontal axis.
    pub x_axis: Axis,
    /// The vertical axis.
    pub y_axis: Axis,
    /// The lines, drawn in order (later on top).
    pub series: Vec<Series>,
    /// Shaded ranges behind the lines.
    pub bands: Vec<Band>,
    /// Reference lines.
    pub markers: Vec<Marker>,
    /// One tooltip per x position.
    pub tooltips: Vec<String>,
    /// A remark written in the middle of the plot (`no failures`), if any.
    pub note: Option<String>,
}

/// The plot area inside the chart.
#[derive(Debug, Clone, Copy)]
struct Plot {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Chart {
    /// Renders the chart as one `<svg>` element.
    pub fn to_svg(&self) -> String {
        let mut out = String::with_capacity(4096 + self.xs.len() * 64 * (self.series.len() + 1));
        let (legend, legend_bottom) = layout_legend(&self.series);
        let top = legend_bottom + 10.0;
        let plot = Plot { x: LEFT, y: top, w: WIDTH - LEFT - RIGHT, h: HEIGHT - BOTTOM - top };
        let id = escape(&self.id);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{id}" data-points="{n}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-{id}-title" font-family="{FONT}" font-size="11" fill="{INK}">"#,
            n = self.xs.len()
        );
        let _ = write!(out, r#"<title id="chart-{id}-title">{}</title>"#, escape(&self.title));
        let _ = write!(
            out,
            r#"<text class="chart-title" x="{LEFT}" y="17" font-size="13" font-weight="600">{}</text>"#,
            escape(&self.title)
        );
        self.grid_and_axes(&mut out, plot);
        self.bands(&mut out, plot);
        self.markers(&mut out, plot);
        for series in &self.series {
            self.series(&mut out, plot, series);
        }
        self.marker_rings(&mut out, plot);
        if let Some(note) = &self.note {
            let _ = write!(
                out,
                r#"<text class="note" x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}" font-style="italic">{}</text>"#,
                plot.x + plot.w / 2.0,
                plot.y + plot.h / 2.0,
                escape(note)
            );
        }
        self.hits(&mut out, plot);
        for item in &legend {
            let s = &self.series[item.index];
            let dash = if s.dashed { r#" stroke-dasharray="4 3""# } else { "" };
            let _ = write!(
                out,
                r#"<g class="legend-item"><line x1="{x:.1}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="{c}" stroke-width="2.5"{dash}/><text x="{tx:.1}" y="{ty:.1}">{name}</text></g>"#,
                x = item.x,
                x2 = item.x + SWATCH,
                y = item.y,
                c = s.colour,
                tx = item.x + SWATCH + 4.0,
                ty = item.y + 4.0,
                name = escape(&s.name)
            );
        }
        out.push_str("</svg>");
        out
    }

    fn px(&self, plot: Plot, x: f64) -> f64 {
        plot.x + self.x_axis.fraction(x) * plot.w
    }

    fn py(&self, plot: Plot, y: f64) -> f64 {
        plot.y + plot.h - self.y_axis.fraction(y) * plot.h
    }

    fn grid_and_axes(&self, out: &mut String, plot: Plot) {
        out.push_str(r#"<g class="grid" stroke-width="1">"#);
        for tick in &self.y_axis.ticks {
            let y = self.py(plot, tick.value);
            let _ = write!(
                out,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{MUTED}" stroke="none">{}</text>"#,
                plot.x,
                plot.x + plot.w,
                plot.x - 6.0,
                y + 3.5,
                escape(&tick.label)
            );
        }
        for tick in &self.x_axis.ticks {
            let x = self.px(plot, tick.value);
            let bottom = plot.y + plot.h;
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" y1="{bottom:.1}" x2="{x:.1}" y2="{:.1}" stroke="{MUTED}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}" stroke="none">{}</text>"#,
                bottom + 4.0,
                bottom + 16.0,
                escape(&tick.label)
            );
        }
        out.push_str("</g>");
        let _ = write!(
            out,
            r#"<g class="axes" stroke="{MUTED}" stroke-width="1"><line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{b:.1}"/><line x1="{x:.1}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/></g>"#,
            x = plot.x,
            y = plot.y,
            b = plot.y + plot.h,
            r = plot.x + plot.w
        );
        let _ = write!(
            out,
            r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">{}</text>"#,
            plot.x + plot.w / 2.0,
            HEIGHT - 8.0,
            escape(&self.x_axis.title)
        );
        let _ = write!(
            out,
            r#"<text class="axis-title" transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="{MUTED}">{}</text>"#,
            plot.y + plot.h / 2.0,
            escape(&self.y_axis.title)
        );
    }

    fn bands(&self, out: &mut String, plot: Plot) {
        for band in &self.bands {
            let (x1, x2) = (self.px(plot, band.from), self.px(plot, band.to));
            let (class, fill) = if band.fault { ("band fault", "#fde2e1") } else { ("band", "#f3f4f6") };
            let _ = write!(
                out,
                r##"<g class="{class}"><rect x="{x1:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" fill-opacity="0.8"/>"##,
                plot.y,
                (x2 - x1).max(0.0),
                plot.h,
            );
            if !band.label.is_empty() {
                let colour = if band.fault { "#b42318" } else { MUTED };
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" fill="{colour}" font-size="10">{}</text>"#,
                    x1 + 3.0,
                    plot.y + 11.0,
                    escape(&band.label)
                );
            }
            out.push_str("</g>");
        }
    }

    fn markers(&self, out: &mut String, plot: Plot) {
        for marker in &self.markers {
            match marker {
                Marker::Divider { x } => {
                    let x = self.px(plot, *x);
                    let _ = write!(
                        out,
                        r#"<line class="divider" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{GRID}" stroke-width="1.5" stroke-dasharray="2 3"/>"#,
                        plot.y,
                        plot.y + plot.h
                    );
                }
                Marker::Vertical { x, label, colour, .. } => {
                    let x = self.px(plot, *x);
                    let anchor_right = x > plot.x + plot.w * 0.7;
                    let (tx, anchor) = if anchor_right { (x - 5.0, "end") } else { (x + 5.0, "start") };
                    let _ = write!(
                        out,
                        r#"<g class="marker"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{colour}" font-weight="600">{}</text></g>"#,
                        plot.y,
                        plot.y + plot.h,
                        plot.y + 12.0,
                        escape(label)
                    );
                }
                Marker::Horizontal { y, label, colour } => {
                    let y = self.py(plot, *y);
                    let _ = write!(
                        out,
                        r#"<g class="marker"><line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="1.2" stroke-dasharray="3 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{colour}" font-size="10">{}</text></g>"#,
                        plot.x,
                        plot.x + plot.w,
                        plot.x + plot.w - 2.0,
                        y - 4.0,
                        escape(label)
                    );
                }
            }
        }
    }

    fn marker_rings(&self, out: &mut String, plot: Plot) {
        for marker in &self.markers {
            if let Marker::Vertical { x, ring: Some(y), colour, .. } = marker {
                let _ = write!(
                    out,
                    r#"<circle class="ring" cx="{:.1}" cy="{:.1}" r="7" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                    self.px(plot, *x),
                    self.py(plot, *y)
                );
            }
        }
    }

    fn series(&self, out: &mut String, plot: Plot, series: &Series) {
        let present = series.values.iter().take(self.xs.len()).filter(|v| v.is_some()).count();
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(
            out,
            r#"<g class="series" data-series="{}" data-points="{present}" fill="none" stroke="{}" stroke-width="1.8" stroke-linejoin="round"{dash}>"#,
            escape(&series.name),
            series.colour
        );
        let points: Vec<Option<(f64, f64)>> = self
            .xs
            .iter()
            .zip(series.values.iter().chain(std::iter::repeat(&None)))
            .map(|(x, v)| v.filter(|v| v.is_finite()).map(|v| (self.px(plot, *x), self.py(plot, v))))
            .collect();
        for run in points.split(Option::is_none).filter(|run| !run.is_empty()) {
            out.push_str(r#"<polyline points=""#);
            for (i, (x, y)) in run.iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{x:.1},{y:.1}");
            }
            out.push_str(r#""/>"#);
            if let [Some((x, y))] = run {
                let _ = write!(
                    out,
                    r#"<circle class="lone" cx="{x:.1}" cy="{y:.1}" r="2.2" fill="{}" stroke="none"/>"#,
                    series.colour
                );
            }
        }
        let colours: Option<Vec<&'static str>> = match &series.marks {
            Marks::Line => None,
            Marks::Dots => Some(vec![series.colour; points.len()]),
            Marks::ColouredDots(colours) => Some(colours.clone()),
        };
        if let Some(colours) = colours {
            for (point, colour) in points.iter().zip(colours.iter().chain(std::iter::repeat(&series.colour))) {
                if let Some((x, y)) = point {
                    let _ = write!(
                        out,
                        r##"<circle class="dot" cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}" stroke="#ffffff" stroke-width="1.2" stroke-dasharray="none"/>"##
                    );
                }
            }
        }
        out.push_str("</g>");
    }

    /// Transparent hit areas: one per x position, each with its tooltip. Their edges lie half
    /// way between neighbouring points, so hovering anywhere above a point shows its values.
    fn hits(&self, out: &mut String, plot: Plot) {
        let xs: Vec<f64> = self.xs.iter().map(|x| self.px(plot, *x)).collect();
        let increasing = xs.windows(2).all(|w| w[0] < w[1]);
        out.push_str(r#"<g class="hits" fill="transparent" stroke="none">"#);
        for (i, x) in xs.iter().enumerate() {
            let (left, right) = if increasing {
                let left = if i == 0 { plot.x.min(*x) } else { (xs[i - 1] + x) / 2.0 };
                let right = if i + 1 == xs.len() { (plot.x + plot.w).max(*x) } else { (x + xs[i + 1]) / 2.0 };
                (left, right)
            } else {
                (x - 6.0, x + 6.0)
            };
            let tip = self.tooltips.get(i).map(String::as_str).unwrap_or("");
            let _ = write!(
                out,
                r#"<rect class="hit" x="{left:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                plot.y,
                (right - left).max(0.5),
                plot.h,
                escape(tip)
            );
        }
        out.push_str("</g>");
    }
}

const SWATCH: f64 = 16.0;

/// Where one legend entry goes.
struct LegendItem {
    index: usize,
    x: f64,
    y: f64,
}

/// Lays the legend out in rows under the title, wrapping before the right edge; returns the
/// entries and the y of the last row.
fn layout_legend(series: &[Series]) -> (Vec<LegendItem>, f64) {
    let mut items = Vec::with_capacity(series.len());
    let (mut x, mut y) = (LEFT, 34.0);
    for (index, s) in series.iter().enumerate() {
        // An estimate of the text width at 11px: good enough to wrap, no font metrics needed.
        let width = SWATCH + 4.0 + s.name.chars().count() as f64 * 6.3 + 16.0;
        if x > LEFT && x + width > WIDTH - RIGHT {
            x = LEFT;
            y += 16.0;
        }
        items.push(LegendItem { index, x, y });
        x += width;
    }
    (items, y)
}

/// Escapes text for use in XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: Vec<Option<f64>>) -> Chart {
        let n = values.len();
        Chart {
            id: "t".into(),
            title: "A <test> & more".into(),
            xs: (1..=n).map(|i| i as f64).collect(),
            x_axis: Axis::time("time", n as f64),
            y_axis: Axis::from_zero("ms", 10.0),
            series: vec![Series::line("p99", "#000000", values)],
            bands: vec![Band { from: 0.0, to: 1.0, label: "warmup".into(), fault: false }],
            markers: vec![Marker::Divider { x: 2.0 }],
            tooltips: (1..=n).map(|i| format!("t={i}s")).collect(),
            note: None,
        }
    }

    fn polyline_vertices(svg: &str) -> usize {
        svg.split(r#"<polyline points=""#)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or("").split(' ').count())
            .sum()
    }

    #[test]
    fn one_vertex_and_one_hit_area_per_point() {
        let svg = chart(vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]).to_svg();
        assert!(svg.contains(r#"data-points="4""#));
        assert_eq!(polyline_vertices(&svg), 4);
        assert_eq!(svg.matches(r#"class="hit""#).count(), 4);
        assert!(svg.contains("A &lt;test&gt; &amp; more"));
    }

    #[test]
    fn a_missing_value_breaks_the_line() {
        let svg = chart(vec![Some(1.0), None, Some(3.0), Some(4.0)]).to_svg();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(polyline_vertices(&svg), 3);
        assert!(svg.contains(r#"data-series="p99" data-points="3""#));
        assert_eq!(svg.matches(r#"class="lone""#).count(), 1);
        assert_eq!(svg.matches(r#"class="hit""#).count(), 4);
    }

    #[test]
    fn legend_wraps() {
        let many: Vec<Series> =
            (0..12).map(|i| Series::line(format!("connect_timeout_{i}"), "#000000", vec![])).collect();
        let (items, bottom) = layout_legend(&many);
        assert!(bottom > 34.0);
        assert!(items.iter().all(|i| i.x < WIDTH - RIGHT));
    }
}
