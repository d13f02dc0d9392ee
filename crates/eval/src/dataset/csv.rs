//! The project's `boxes.csv` layout: one row per ground-truth box.

use std::collections::HashMap;
use std::path::Path;

use crate::dataset::Sample;
use crate::error::{Result, parse_error};
use crate::text::{lines, make_box, parse_field, read_text};

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
    let mut rows = lines(&text);
    let (_, header) = rows
        .next()
        .ok_or_else(|| parse_error(csv, 1, "empty file, expected a header"))?;
    let columns = column_positions(csv, header)?;
    let mut samples: Vec<Sample> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (line, row) in rows {
        let parsed = parse_row(csv, line, row, &columns)?;
        add_row(csv, line, parsed, root, &mut samples, &mut by_id)?;
    }
    Ok(samples)
}

/// Position of each of [`COLUMNS`] in the header.
fn column_positions(csv: &Path, header: &str) -> Result<[usize; 8]> {
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut positions = [0; 8];
    for (slot, wanted) in positions.iter_mut().zip(COLUMNS) {
        *slot = names
            .iter()
            .position(|n| *n == wanted)
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

fn parse_row(csv: &Path, line: usize, row: &str, columns: &[usize; 8]) -> Result<Row> {
    let fields: Vec<&str> = row.split(',').map(str::trim).collect();
    let field = |i: usize| {
        fields
            .get(columns[i])
            .copied()
            .ok_or_else(|| parse_error(csv, line, format!("missing column {:?}", COLUMNS[i])))
    };
    let num = |i: usize| field(i).and_then(|s| parse_field::<f32>(csv, line, COLUMNS[i], s));
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
    if let Some(&i) = by_id.get(&row.id) {
        let sample = &mut samples[i];
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
