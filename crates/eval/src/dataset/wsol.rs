//! clovaai/wsolevaluation's metadata layout: four text files keyed by image id.

use std::collections::HashMap;
use std::path::Path;

use feedbacknet_localize::BoundingBox;

use crate::dataset::Sample;
use crate::error::{Result, parse_error};
use crate::text::{check_in_image, lines, make_box, parse_field, read_text, split_exact};

/// What the four files say about one image, filled in file by file.
#[derive(Default)]
struct Partial {
    class: Option<usize>,
    size: Option<(u32, u32)>,
    boxes: Vec<BoundingBox>,
}

/// Loads the metadata in `dir`; images are at `image_root/id`.
pub(super) fn load(dir: &Path, image_root: &Path) -> Result<Vec<Sample>> {
    let ids_path = dir.join("image_ids.txt");
    let ids_text = read_text(&ids_path)?;
    let ids: Vec<(usize, &str)> = lines(&ids_text).collect();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (*id, i))
        .collect();
    let mut parts: Vec<Partial> = ids.iter().map(|_| Partial::default()).collect();
    read_keyed(
        &dir.join("class_labels.txt"),
        &index,
        |p, l, [_, class], part| {
            part.class = Some(parse_field(p, l, "class", class)?);
            Ok(())
        },
        &mut parts,
    )?;
    read_keyed(
        &dir.join("image_sizes.txt"),
        &index,
        |p, l, [_, width, height], part| {
            part.size = Some((
                parse_field(p, l, "width", width)?,
                parse_field(p, l, "height", height)?,
            ));
            Ok(())
        },
        &mut parts,
    )?;
    read_keyed(
        &dir.join("localization.txt"),
        &index,
        |p, l, [_, x0, y0, x1, y1], part| {
            let c = |f: &str| parse_field::<f32>(p, l, "box coordinate", f);
            let bbox = make_box(p, l, [c(x0)?, c(y0)?, c(x1)?, c(y1)?])?;
            // image_sizes.txt is read first; an image without a size is refused in `finish`.
            if let Some(size) = part.size {
                check_in_image(p, l, &bbox, size)?;
            }
            part.boxes.push(bbox);
            Ok(())
        },
        &mut parts,
    )?;
    ids.iter()
        .zip(parts)
        .enumerate()
        .map(|(i, (&(line, id), part))| finish(dir, image_root, i, line, id, part))
        .collect()
}

/// Reads a file of `id,field,...` lines with `N` fields, handing each line's
/// fields and the image's [`Partial`] to `apply`.
fn read_keyed<const N: usize>(
    path: &Path,
    index: &HashMap<&str, usize>,
    apply: impl Fn(&Path, usize, [&str; N], &mut Partial) -> Result<()>,
    parts: &mut [Partial],
) -> Result<()> {
    let text = read_text(path)?;
    for (line, row) in lines(&text) {
        let fields: [&str; N] = split_exact(path, line, row)?;
        let id = fields.first().copied().unwrap_or_default();
        let part = index
            .get(id)
            .and_then(|&i| parts.get_mut(i))
            .ok_or_else(|| parse_error(path, line, format!("{id} is not in image_ids.txt")))?;
        apply(path, line, fields, part)?;
    }
    Ok(())
}

/// Checks every file had something to say about the image and builds its [`Sample`].
fn finish(
    dir: &Path,
    root: &Path,
    index: usize,
    line: usize,
    id: &str,
    part: Partial,
) -> Result<Sample> {
    let missing = |file: &str| {
        parse_error(
            dir.join("image_ids.txt"),
            line,
            format!("{id} has no entry in {file}"),
        )
    };
    let class = part.class.ok_or_else(|| missing("class_labels.txt"))?;
    let size = part.size.ok_or_else(|| missing("image_sizes.txt"))?;
    if part.boxes.is_empty() {
        return Err(missing("localization.txt"));
    }

    Ok(Sample {
        index,
        id: id.to_string(),
        path: root.join(id),
        class,
        size,
        boxes: part.boxes,
    })
}
