//! The chart the README shows, drawn from a run's [`Results`] with plotters' SVG backend:
//! requests per second for each load at 32 connections on top, and below it the median
//! latency over one connection and the median start, one bar per server in each group.
//! Every axis is logarithmic: the servers and scenarios span three orders of magnitude, and
//! on a log axis equal ratios look equal. A server with no number for a group has no bar
//! there; the tables say why.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::bench::results::{Results, format_ms, format_us};
use crate::bench::scenario::Scenario;

const SIZE: (u32, u32) = (1200, 900);
/// Height of the throughput panel; the other two share the rest.
const TOP_HEIGHT: u32 = 520;
/// Part of a group's width its bars take, the rest being the gap to the next group.
const GROUP_WIDTH: f64 = 0.8;

/// One colour per server, in run order.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(255, 187, 120),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One server's bars: a value (or none) per group.
struct Series<'r> {
    label: &'r str,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

/// One panel of grouped bars.
struct Panel<'a> {
    caption: String,
    unit: &'a str,
    groups: Vec<&'static str>,
    /// Writes a bar's value above it.
    format: fn(f64) -> String,
    legend: bool,
}

/// Draws the chart of `results` into the SVG file `path`.
pub(crate) fn render(results: &Results, path: &Path) -> anyhow::Result<()> {
    let ran: Vec<_> = results
        .servers
        .iter()
        .filter(|server| server.skipped.is_none())
        .collect();
    let series = |scenarios: &[Scenario]| -> Vec<Series<'_>> {
        ran.iter()
            .zip(COLORS.iter().cycle())
            .map(|(server, color)| Series {
                label: &server.label,
                color: *color,
                values: scenarios.iter().map(|s| server.value(*s)).collect(),
            })
            .collect()
    };
    let titles = |scenarios: &[Scenario]| scenarios.iter().map(|s| s.title()).collect();

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(TOP_HEIGHT);
    let (left, right) = bottom.split_horizontally(SIZE.0 / 3);

    let loads = [
        Scenario::Health,
        Scenario::Create,
        Scenario::ListSmall,
        Scenario::ListLarge,
    ];
    draw(
        &top,
        &Panel {
            caption: format!(
                "cargo xtask bench: requests per second, wrk -t2 -c32, {} s each, {} cores",
                results.seconds, results.machine.cores
            ),
            unit: "req/s (log)",
            groups: titles(&loads),
            format: short_number,
            legend: true,
        },
        &series(&loads),
    )?;
    draw(
        &left,
        &Panel {
            caption: "median latency, one connection".to_owned(),
            unit: "µs (log)",
            groups: titles(&[Scenario::HealthLatency]),
            format: format_us,
            legend: false,
        },
        &series(&[Scenario::HealthLatency]),
    )?;
    let starts = [Scenario::StartCold, Scenario::StartWarm];
    draw(
        &right,
        &Panel {
            caption: format!(
                "exec to first 200, median of {}",
                crate::bench::start::STARTS
            ),
            unit: "ms (log)",
            groups: titles(&starts),
            format: format_ms,
            legend: false,
        },
        &series(&starts),
    )?;
    root.present()?;
    Ok(())
}

/// One panel: a group of bars per entry of `panel.groups`, a bar per series in each.
fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel<'_>,
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    let values = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
    };
    let low = values().fold(f64::INFINITY, f64::min);
    let high = values().fold(0.0, f64::max);
    if !low.is_finite() || low <= 0.0 {
        // Nothing to draw: say so rather than draw an empty frame.
        area.draw(&Text::new(
            format!("{}: no numbers", panel.caption),
            (20, 20),
            ("sans-serif", 16),
        ))?;
        return Ok(());
    }
    // Bars start below the smallest value, and the top leaves room for labels and legend.
    let floor = low / 2.0;
    let ceiling = high * if panel.legend { 12.0 } else { 3.0 };
    let groups = panel.groups.len();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..groups as f64 - 0.5, (floor..ceiling).log_scale())?;
    let names = panel.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&|x| {
            // Group i is centred on i; the axis may ask for labels between groups too.
            let i = x.round();
            match (x - i).abs() < 1e-6 && i >= 0.0 {
                true => names
                    .get(i as usize)
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
                false => String::new(),
            }
        })
        // A log axis's light lines would be a grey band per decade.
        .light_line_style(TRANSPARENT)
        .y_labels(8)
        .y_desc(panel.unit)
        .y_label_formatter(&|y| short_number(*y))
        .draw()?;

    let width = GROUP_WIDTH / series.len().max(1) as f64;
    let above = TextStyle::from(("sans-serif", 10)).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (n, one) in series.iter().enumerate() {
        let bars: Vec<(f64, f64)> = one
            .values
            .iter()
            .enumerate()
            .filter_map(|(group, value)| {
                let left = group as f64 - GROUP_WIDTH / 2.0 + n as f64 * width;
                value.map(|value| (left, value))
            })
            .collect();
        let color = one.color;
        chart
            .draw_series(bars.iter().map(|&(left, value)| {
                Rectangle::new([(left, floor), (left + width * 0.9, value)], color.filled())
            }))?
            .label(one.label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart.draw_series(bars.iter().map(|&(left, value)| {
            Text::new(
                (panel.format)(value),
                (left + width * 0.45, value),
                above.clone(),
            )
        }))?;
    }
    if panel.legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    Ok(())
}

/// `19.3k`, `450`, `1.2M`: a number as the axis labels show it.
fn short_number(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v if v >= 10.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::short_number;

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(short_number(19_253.0), "19k");
        assert_eq!(short_number(4_305.0), "4.3k");
        assert_eq!(short_number(450.4), "450");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(1_300_000.0), "1.3M");
    }
}
