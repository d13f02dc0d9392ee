//! The inline-SVG bar chart of the IoU histogram.

use std::fmt::Write;

/// Geometry of the chart, in SVG user units.
const WIDTH: usize = 440;
const HEIGHT: usize = 220;
const LEFT: usize = 30;
const BASE: usize = 180;
const BAR_SPACE: usize = 40;
const BAR_WIDTH: usize = 32;
const MAX_BAR: f64 = 150.0;

/// A bar chart of `counts` over equal bins of `[0, 1]`, labelled with each
/// bin's lower edge and count.
pub(crate) fn histogram_svg(counts: &[usize]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"GT-known IoU histogram\">\n"
    );
    for (i, &count) in counts.iter().enumerate() {
        bar(&mut svg, i, count, counts.len(), max);
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{BASE}\" x2=\"{}\" y2=\"{BASE}\" stroke=\"#333\"/>",
        LEFT + counts.len() * BAR_SPACE
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">IoU</text>",
        LEFT + counts.len() * BAR_SPACE / 2,
        HEIGHT - 4
    );
    svg.push_str("</svg>");
    svg
}

/// One bar with its count above and its lower bin edge below.
fn bar(svg: &mut String, i: usize, count: usize, bins: usize, max: f64) {
    let height = (count as f64 / max * MAX_BAR).round();
    let x = LEFT + i * BAR_SPACE + (BAR_SPACE - BAR_WIDTH) / 2;
    let centre = x + BAR_WIDTH / 2;
    let edge = i as f64 / bins.max(1) as f64;
    let _ = writeln!(
        svg,
        "<rect x=\"{x}\" y=\"{}\" width=\"{BAR_WIDTH}\" height=\"{height}\" fill=\"#4a7ebb\"><title>{count}</title></rect>",
        BASE as f64 - height
    );
    let _ = writeln!(
        svg,
        "<text x=\"{centre}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{count}</text>",
        BASE as f64 - height - 3.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{centre}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{edge:.1}</text>",
        BASE + 14
    );
}
