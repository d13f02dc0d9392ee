//! clovaai/wsolevaluation's metadata layout: four text files keyed by image id.

use std::collections::HashMap;
use std::path::Path;

use feedbacknet_localize::BoundingBox;

use crate::dataset::Sample;
use crate::error::{Result, parse_error};
use crate::text::{lines, make_box, parse_field, read_text, split_exact};

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
        2,
        &index,
        |p, l, f, part| {
            part.class = Some(parse_field(p, l, "class", f[1])?);
            Ok(())
        },
        &mut parts,
    )?;
    read_keyed(
        &dir.join("image_sizes.txt"),
        3,
        &index,
        |p, l, f, part| {
            part.size = Some((
                parse_field(p, l, "width", f[1])?,
                parse_field(p, l, "height", f[2])?,
            ));
            Ok(())
        },
        &mut parts,
    )?;
    read_keyed(
        &dir.join("localization.txt"),
        5,
        &index,
        |p, l, f, part| {
            let c = |i: usize| parse_field::<f32>(p, l, "box coordinate", f[i]);
            part.boxes
                .push(make_box(p, l, [c(1)?, c(2)?, c(3)?, c(4)?])?);
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

/// Reads a file of `id,field,...` lines with `n` fields, handing each line's
/// fields and the image's [`Partial`] to `apply`.
fn read_keyed(
    path: &Path,
    n: usize,
    index: &HashMap<&str, usize>,
    apply: impl Fn(&Path, usize, &[&str], &mut Partial) -> Result<()>,
    parts: &mut [Partial],
) -> Result<()> {
    let text = read_text(path)?;
    for (line, row) in lines(&text) {
        let fields = split_exact(path, line, row, n)?;
        let i = *index.get(fields[0]).ok_or_else(|| {
            parse_error(path, line, format!("{} is not in image_ids.txt", fields[0]))
        })?;
        apply(path, line, &fields, &mut parts[i])?;
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
