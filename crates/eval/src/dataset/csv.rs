//! The project's `boxes.csv` layout: one row per ground-truth box, read
//! with the `csv` crate.

use std::collections::HashMap;
use std::path::Path;

use csv::{Position, ReaderBuilder, StringRecord, Trim};

use crate::dataset::Sample;
use crate::error::{Result, parse_error};
use crate::text::{check_in_image, make_box, parse_field, read_text};

/// Columns this loader reads, found by name in the header.
const COLUMNS: [&str; 8] = [
    "image",
    "class_idx",
    "img_w",
    "img_h",
    "x0",
    "y0",
    "x1",
    "y1",
];

/// Loads `csv`, grouping rows by image in order of first appearance.
pub(super) fn load(csv: &Path, root: &Path) -> Result<Vec<Sample>> {
    let text = read_text(csv)?;
    let mut rows = records(csv, &text);
    let (_, header) = rows
        .next()
        .transpose()?
        .ok_or_else(|| parse_error(csv, 1, "empty file, expected a header"))?;
    let columns = column_positions(csv, &header)?;
    let mut samples: Vec<Sample> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let (line, row) = row?;
        if row.len() != header.len() {
            let msg = format!("{} fields where the header has {}", row.len(), header.len());
            return Err(parse_error(csv, line, msg));
        }
        let parsed = parse_row(csv, line, &row, &columns)?;
        check_in_image(csv, line, &parsed.bbox, parsed.size)?;
        add_row(csv, line, parsed, root, &mut samples, &mut by_id)?;
    }
    Ok(samples)
}

/// The non-blank records of `text` (RFC 4180: fields may be quoted),
/// fields trimmed, each with the 1-based line it starts on.
fn records<'a>(
    csv: &'a Path,
    text: &'a str,
) -> impl Iterator<Item = Result<(usize, StringRecord)>> + 'a {
    let reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(Trim::All)
        .from_reader(text.as_bytes());
    reader
        .into_records()
        .filter_map(move |record| match record {
            Ok(r) if r.len() == 1 && r.get(0).is_some_and(str::is_empty) => None,
            Ok(r) => Some(Ok((start_line(text, r.position()), r))),
            Err(e) => Some(Err(parse_error(
                csv,
                start_line(text, e.position()),
                e.to_string(),
            ))),
        })
}

/// 1-based line of the first non-blank character at or after `position`
/// (the reader's position of a record includes the blank lines before it).
fn start_line(text: &str, position: Option<&Position>) -> usize {
    let Some(position) = position else {
        return 1;
    };
    let byte = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let rest = text.get(byte..).unwrap_or_default();
    let blank = &rest[..rest.len() - rest.trim_start().len()];
    let line = usize::try_from(position.line()).unwrap_or(usize::MAX);
    line.saturating_add(blank.matches('\n').count())
}

/// Position of each of [`COLUMNS`] in the header.
fn column_positions(csv: &Path, header: &StringRecord) -> Result<[usize; 8]> {
    let mut positions = [0; 8];
    for (slot, wanted) in positions.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|n| n == wanted)
            .ok_or_else(|| parse_error(csv, 1, format!("header lacks the column {wanted:?}")))?;
    }
    Ok(positions)
}

/// One parsed row: image id, class, size and box.
struct Row {
    id: String,
    class: usize,
    size: (u32, u32),
    bbox: feedbacknet_localize::BoundingBox,
}

fn parse_row(csv: &Path, line: usize, row: &StringRecord, columns: &[usize; 8]) -> Result<Row> {
    let name = |i: usize| COLUMNS.get(i).copied().unwrap_or_default();
    let field = |i: usize| {
        columns
            .get(i)
            .and_then(|&c| row.get(c))
            .ok_or_else(|| parse_error(csv, line, format!("missing column {:?}", name(i))))
    };
    let num = |i: usize| field(i).and_then(|s| parse_field::<f32>(csv, line, name(i), s));
    let bbox = make_box(csv, line, [num(4)?, num(5)?, num(6)?, num(7)?])?;
    Ok(Row {
        id: field(0)?.to_string(),
        class: parse_field(csv, line, "class_idx", field(1)?)?,
        size: (
            parse_field(csv, line, "img_w", field(2)?)?,
            parse_field(csv, line, "img_h", field(3)?)?,
        ),
        bbox,
    })
}

/// Appends the row's box to its image, creating the image on first sight.
fn add_row(
    csv: &Path,
    line: usize,
    row: Row,
    root: &Path,
    samples: &mut Vec<Sample>,
    by_id: &mut HashMap<String, usize>,
) -> Result<()> {
    if let Some(sample) = by_id.get(&row.id).and_then(|&i| samples.get_mut(i)) {
        if (sample.class, sample.size) != (row.class, row.size) {
            let msg = format!(
                "{} has another class or size than on its earlier rows",
                row.id
            );
            return Err(parse_error(csv, line, msg));
        }
        sample.boxes.push(row.bbox);
        return Ok(());
    }
    by_id.insert(row.id.clone(), samples.len());
    samples.push(Sample {
        index: samples.len(),
        path: root.join(&row.id),
        id: row.id,
        class: row.class,
        size: row.size,
        boxes: vec![row.bbox],
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_and_fields(text: &str) -> Vec<(usize, Vec<String>)> {
        records(Path::new("b.csv"), text)
            .map(|r| {
                let (line, record) = r.unwrap();
                (line, record.iter().map(str::to_string).collect())
            })
            .collect()
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted() {
        let text = "\n a , b \r\n\n   \n\t\r\nc,d\n,\n\n";
        let rows = lines_and_fields(text);
        let expected = [(2, vec!["a", "b"]), (6, vec!["c", "d"]), (7, vec!["", ""])];
        let expected: Vec<(usize, Vec<String>)> = expected
            .into_iter()
            .map(|(l, f)| (l, f.into_iter().map(String::from).collect()))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn quoted_fields_may_hold_commas_and_line_breaks() {
        let rows = lines_and_fields("\"a,b\",\"x\ny\"\nc\n");
        assert_eq!(rows[0].1, vec!["a,b".to_string(), "x\ny".to_string()]);
        assert_eq!((rows[0].0, rows[1].0), (1, 3));
    }
}
