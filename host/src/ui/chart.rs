//! Line charts as inline SVG, written by hand: axes with round ticks, a grid, one polyline per
//! series. The plot's data ranges ride on the `<svg>` as `data-` attributes, so the page's
//! script can turn a mouse position back into steps and values for the hover read-out (and
//! the browser tests can check that the drawn points are the logged values).

use std::fmt::Write;

use super::downsample::{Point, XAxis};
use super::html::Html;
use crate::history::format_utc;

pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;
const VIEW_BOX: &str = "0 0 720 260";
/// Pixel columns of the plot area: the downsampling width that loses nothing visible.
pub const PLOT_COLUMNS: usize = (WIDTH - LEFT - RIGHT) as usize;

/// One line of a chart.
pub struct Line<'a> {
    pub label: &'a str,
    pub color: String,
    pub points: &'a [Point],
}

/// Distinct colours for up to ten lines, then evenly spread hues for more (100 runs on one
/// compare chart stay told apart by the legend's hover highlight rather than by colour alone).
pub fn color(index: usize, of: usize) -> String {
    const PALETTE: [&str; 10] = [
        "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#4f46e5", "#a16207",
    ];
    if of <= PALETTE.len() {
        PALETTE[index % PALETTE.len()].to_owned()
    } else {
        let hue = (index as f64 * 360.0 / of as f64).round();
        format!("hsl({hue},65%,45%)")
    }
}

/// Round tick positions covering `lo..=hi`, about `count` of them (1, 2 or 5 times a power of ten apart).
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut tick = first;
    while tick <= hi + step * 1e-9 && ticks.len() < 50 {
        ticks.push(if tick.abs() < step * 1e-9 { 0.0 } else { tick });
        tick += step;
    }
    ticks
}

/// A value short enough for an axis label or a table cell: `0.0123`, `1.5e+06`, `42`.
pub fn short_number(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs();
    if !(1e-4..1e6).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

fn x_label(x: XAxis, value: f64) -> String {
    match x {
        XAxis::Step => short_number(value.round()),
        // The time of day (UTC); the date is in the run's record.
        XAxis::Time => format_utc(value as i64)[11..].to_owned(),
    }
}

/// The ranges the chart shows: every point of every line, with a margin above and below.
fn domain(lines: &[Line<'_>], x: XAxis) -> Option<(f64, f64, f64, f64)> {
    let mut points = lines
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|p| p.value.is_finite());
    let first = points.next()?;
    let (mut x0, mut x1, mut y0, mut y1) = (x.of(first), x.of(first), first.value, first.value);
    for p in points {
        x0 = x0.min(x.of(p));
        x1 = x1.max(x.of(p));
        y0 = y0.min(p.value);
        y1 = y1.max(p.value);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        (y0, y1) = (y0 - pad, y1 + pad);
    } else {
        let pad = (y1 - y0) * 0.05;
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    Some((x0, x1, y0, y1))
}

/// Writes one chart. `name` identifies it for the page's script (`data-name`).
pub fn render(html: &mut Html, name: &str, x: XAxis, lines: &[Line<'_>]) {
    let Some((x0, x1, y0, y1)) = domain(lines, x) else {
        html.element("p", &[("class", Some("muted"))], "No numeric values to draw.");
        return;
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |v: f64| LEFT + (v - x0) / (x1 - x0) * plot_w;
    let py = |v: f64| TOP + (y1 - v) / (y1 - y0) * plot_h;
    let axis = match x {
        XAxis::Step => "step",
        XAxis::Time => "time",
    };
    html.open(
        "svg",
        &[
            ("class", Some("chart")),
            ("xmlns", Some("http://www.w3.org/2000/svg")),
            ("viewBox", Some(VIEW_BOX)),
            ("role", Some("img")),
            ("aria-label", Some(name)),
            ("data-name", Some(name)),
            ("data-x", Some(axis)),
        ],
    );
    html.raw("<desc>");
    html.text(name);
    html.raw("</desc>");
    // The ranges and the plot box, for the hover script and for tests.
    html.open_numeric(
        "g",
        "frame",
        &[
            ("data-xmin", x0),
            ("data-xmax", x1),
            ("data-ymin", y0),
            ("data-ymax", y1),
            ("data-left", LEFT),
            ("data-top", TOP),
            ("data-width", plot_w),
            ("data-height", plot_h),
        ],
    )
    .close("g");
    html.open_numeric(
        "rect",
        "plot",
        &[("x", LEFT), ("y", TOP), ("width", plot_w), ("height", plot_h)],
    )
    .close("rect");
    let round = |v: f64| (v * 10.0).round() / 10.0;
    html.raw("<g class=\"grid\">");
    for tick in ticks(y0, y1, 5) {
        let y = round(py(tick));
        html.open_numeric("line", "", &[("x1", LEFT), ("x2", LEFT + plot_w), ("y1", y), ("y2", y)])
            .close("line");
        html.open_numeric("text", "ylabel", &[("x", LEFT - 6.0), ("y", y + 4.0)])
            .text(&short_number(tick))
            .close("text");
    }
    let x_ticks = ticks(x0, x1, 6);
    for tick in x_ticks.iter().filter(|t| x == XAxis::Time || t.fract() == 0.0) {
        let at = round(px(*tick));
        html.open_numeric("line", "", &[("x1", at), ("x2", at), ("y1", TOP), ("y2", TOP + plot_h)])
            .close("line");
        html.open_numeric("text", "xlabel", &[("x", at), ("y", TOP + plot_h + 16.0)])
            .text(&x_label(x, *tick))
            .close("text");
    }
    html.raw("</g>");
    html.open_numeric("text", "axis-name", &[("x", LEFT + plot_w), ("y", HEIGHT - 2.0)])
        .text(axis)
        .close("text");
    for line in lines {
        let mut coordinates = String::with_capacity(line.points.len() * 14);
        for p in line.points.iter().filter(|p| p.value.is_finite()) {
            if !coordinates.is_empty() {
                coordinates.push(' ');
            }
            let _ = write!(coordinates, "{:.2},{:.2}", px(x.of(p)), py(p.value));
        }
        html.open(
            "polyline",
            &[
                ("class", Some("series")),
                ("fill", Some("none")),
                ("stroke", Some(&line.color)),
                ("stroke-width", Some("1.6")),
                ("stroke-linejoin", Some("round")),
                ("data-label", Some(line.label)),
                ("points", Some(&coordinates)),
            ],
        );
        html.close("polyline");
        if let [only] = line.points {
            let (cx, cy) = (format!("{:.2}", px(x.of(only))), format!("{:.2}", py(only.value)));
            html.open(
                "circle",
                &[
                    ("cx", Some(&cx)),
                    ("cy", Some(&cy)),
                    ("r", Some("3")),
                    ("fill", Some(&line.color)),
                ],
            );
            html.close("circle");
        }
    }
    html.raw("<line class=\"cursor\" x1=\"0\" x2=\"0\" y1=\"0\" y2=\"0\"></line></svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.13, 0.61, 5), vec![0.2, 0.30000000000000004, 0.4, 0.5, 0.6]);
        assert_eq!(ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short_number(0.123456), "0.1235");
        assert_eq!(short_number(42.0), "42");
        assert_eq!(short_number(1_500_000.0), "1.50e6");
        assert_eq!(short_number(0.0), "0");
    }

    #[test]
    fn a_chart_draws_each_point_where_its_value_is() {
        let points: Vec<Point> = (0..5)
            .map(|i| Point {
                step: i,
                time_ms: 0,
                value: i as f64,
            })
            .collect();
        let mut html = Html::new();
        render(
            &mut html,
            "loss <b>",
            XAxis::Step,
            &[Line {
                label: "run \"1\"",
                color: color(0, 1),
                points: &points,
            }],
        );
        let svg = html.into_string();
        assert!(svg.contains("data-name=\"loss &lt;b&gt;\""));
        assert!(svg.contains("data-label=\"run &quot;1&quot;\""));
        assert!(
            svg.contains("<g class=\"frame\" data-xmin=\"0\" data-xmax=\"4\""),
            "{svg}"
        );
        assert!(svg.contains("<text class=\"ylabel\""), "{svg}");
        let points_attr = svg.split(" points=\"").nth(1).unwrap().split('"').next().unwrap();
        let coordinates: Vec<(f64, f64)> = points_attr
            .split(' ')
            .map(|pair| {
                let (x, y) = pair.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(coordinates.len(), 5);
        assert!((coordinates[0].0 - LEFT).abs() < 0.01 && (coordinates[4].0 - (WIDTH - RIGHT)).abs() < 0.01);
        assert!(
            coordinates.windows(2).all(|w| w[1].1 < w[0].1),
            "larger values are drawn higher"
        );
    }
}
