//! Small helpers for line-oriented text files.

use std::path::Path;
use std::str::FromStr;

use feedbacknet_localize::BoundingBox;

use crate::error::{Result, io_error, parse_error};

/// Reads a whole UTF-8 text file.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io_error(path))
}

/// Non-blank lines with their 1-based numbers, `\r` and surrounding blanks removed.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Parses one field, naming the file, line and field on failure.
pub(crate) fn parse_field<T: FromStr>(path: &Path, line: usize, name: &str, s: &str) -> Result<T> {
    s.trim()
        .parse()
        .map_err(|_| parse_error(path, line, format!("{name}: cannot parse {s:?}")))
}

/// Builds a box from `x0, y0, x1, y1`, naming the file and line when it is
/// degenerate or not finite.
pub(crate) fn make_box(path: &Path, line: usize, c: [f32; 4]) -> Result<BoundingBox> {
    BoundingBox::new(c[0], c[1], c[2], c[3])
        .map_err(|e| parse_error(path, line, format!("bad box {c:?}: {e}")))
}

/// How far (in pixels) a ground-truth box may reach past its image's edges: ILSVRC's boxes
/// end at the last pixel (`x1 = width - 1`) or past it (`x1 = width`) depending on the tool
/// that converted them. All 80,477 boxes of the ILSVRC 2012 validation metadata are within it.
pub(crate) const BOX_TOLERANCE: f32 = 1.0;

/// Refuses a box that leaves its `width x height` image by more than [`BOX_TOLERANCE`]: a
/// row read with shifted columns, or boxes given in another image's pixels.
pub(crate) fn check_in_image(
    path: &Path,
    line: usize,
    bbox: &BoundingBox,
    (width, height): (u32, u32),
) -> Result<()> {
    let t = BOX_TOLERANCE;
    let (w, h) = (width as f32, height as f32);
    if bbox.x0 >= -t && bbox.y0 >= -t && bbox.x1 <= w + t && bbox.y1 <= h + t {
        return Ok(());
    }
    let msg = format!(
        "box ({}, {}, {}, {}) leaves its {width}x{height} image",
        bbox.x0, bbox.y0, bbox.x1, bbox.y1
    );
    Err(parse_error(path, line, msg))
}

/// Splits `line` at commas into exactly `n` fields.
pub(crate) fn split_exact<'a, const N: usize>(
    path: &Path,
    line: usize,
    text: &'a str,
) -> Result<[&'a str; N]> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    fields.try_into().map_err(|fields: Vec<&str>| {
        let msg = format!(
            "expected {N} comma-separated fields, found {}",
            fields.len()
        );
        parse_error(path, line, msg)
    })
}
