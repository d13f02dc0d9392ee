//! The ILSVRC layout: per-image PASCAL-VOC-style XML annotations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use feedbacknet_localize::BoundingBox;

use crate::dataset::Sample;
use crate::dataset::xml::{self, Node};
use crate::error::{Result, io_error, parse_error};
use crate::text::{check_in_image, lines, make_box, parse_field, read_text};

/// Image extensions tried, in order, for `<xml stem>.<ext>`; the first is
/// the default when none exists.
const IMAGE_EXTENSIONS: [&str; 4] = ["JPEG", "jpg", "jpeg", "png"];

/// Whether `dir` is a folder holding at least one `.xml` file.
pub(super) fn has_xml_files(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    Ok(!xml_files(dir)?.is_empty())
}

/// Loads every annotation in `annotations`, sorted by file name.
pub(super) fn load(annotations: &Path, images: &Path, synsets: &Path) -> Result<Vec<Sample>> {
    let classes = read_synsets(synsets)?;
    xml_files(annotations)?
        .iter()
        .enumerate()
        .map(|(index, xml)| load_one(index, xml, images, &classes))
        .collect()
}

/// `wnid -> class index` from a `wnid name, synonyms` list (class = line order).
fn read_synsets(path: &Path) -> Result<HashMap<String, usize>> {
    let text = read_text(path)?;
    let mut classes = HashMap::new();
    for (class, (line, row)) in lines(&text).enumerate() {
        let wnid = row.split_whitespace().next().unwrap_or_default();
        if classes.insert(wnid.to_string(), class).is_some() {
            return Err(parse_error(path, line, format!("{wnid} is listed twice")));
        }
    }
    Ok(classes)
}

/// The `.xml` files of `dir`, sorted by name.
fn xml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
            && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_one(
    index: usize,
    xml_path: &Path,
    images: &Path,
    classes: &HashMap<String, usize>,
) -> Result<Sample> {
    let xml = read_text(xml_path)?;
    let parsed = Annotation::parse(xml_path, &xml, classes)?;
    let stem = xml_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let id = image_name(images, stem);
    Ok(Sample {
        index,
        path: images.join(&id),
        id,
        class: parsed.class,
        size: parsed.size,
        boxes: parsed.boxes,
    })
}

/// `stem.ext` for the first of [`IMAGE_EXTENSIONS`] that exists in `images`.
fn image_name(images: &Path, stem: &str) -> String {
    let names = IMAGE_EXTENSIONS.iter().map(|e| format!("{stem}.{e}"));
    let mut names = names.collect::<Vec<_>>();
    let found = names
        .iter()
        .position(|n| images.join(n).is_file())
        .unwrap_or(0);
    names.swap_remove(found)
}

/// What one annotation file says.
struct Annotation {
    size: (u32, u32),
    class: usize,
    boxes: Vec<BoundingBox>,
}

impl Annotation {
    fn parse(path: &Path, xml: &str, classes: &HashMap<String, usize>) -> Result<Self> {
        let doc = xml::parse(path, xml)?;
        let root = doc.root();
        let size =
            xml::element(root, "size").ok_or_else(|| parse_error(path, 1, "no <size> element"))?;
        let size = (number(path, size, "width")?, number(path, size, "height")?);
        let objects: Vec<Node<'_, '_>> = xml::elements(root, "object").collect();
        let first = objects
            .first()
            .ok_or_else(|| parse_error(path, 1, "no <object> element"))?;
        let (wnid, class) = class_of(path, *first, classes)?;
        let mut boxes = Vec::new();
        for object in objects
            .iter()
            .filter(|o| name_of(**o).as_deref() == Some(wnid.as_str()))
        {
            let bbox = bndbox(path, *object)?;
            check_in_image(path, xml::line(*object), &bbox, size)?;
            boxes.push(bbox);
        }
        Ok(Self { size, class, boxes })
    }
}

fn name_of(object: Node<'_, '_>) -> Option<String> {
    xml::element(object, "name").map(xml::text)
}

/// The object's wnid and its class index.
fn class_of(
    path: &Path,
    object: Node<'_, '_>,
    classes: &HashMap<String, usize>,
) -> Result<(String, usize)> {
    let name = xml::element(object, "name")
        .ok_or_else(|| parse_error(path, xml::line(object), "<object> without <name>"))?;
    let wnid = xml::text(name);
    let class = classes.get(&wnid).ok_or_else(|| {
        let msg = format!("{wnid} is not in the synset list");
        parse_error(path, xml::line(name), msg)
    })?;
    Ok((wnid, *class))
}

fn bndbox(path: &Path, object: Node<'_, '_>) -> Result<BoundingBox> {
    let b = xml::element(object, "bndbox")
        .ok_or_else(|| parse_error(path, xml::line(object), "<object> without <bndbox>"))?;
    let c = [
        number(path, b, "xmin")?,
        number(path, b, "ymin")?,
        number(path, b, "xmax")?,
        number(path, b, "ymax")?,
    ];
    make_box(path, xml::line(b), c)
}

/// The number in the `tag` child of `parent`.
fn number<T: std::str::FromStr>(path: &Path, parent: Node<'_, '_>, tag: &str) -> Result<T> {
    let node = xml::element(parent, tag)
        .ok_or_else(|| parse_error(path, xml::line(parent), format!("no <{tag}> element")))?;
    parse_field(path, xml::line(node), tag, &xml::text(node))
}
