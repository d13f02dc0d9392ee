//! Evaluation data sets: images with a class and ground-truth boxes.
//!
//! Three layouts load into the same [`Dataset`]:
//!
//! * [`Layout::BoxesCsv`]: the project's `boxes.csv` (one row per box).
//! * [`Layout::WsolMetadata`]: clovaai/wsolevaluation's metadata folder
//!   (`image_ids.txt`, `class_labels.txt`, `image_sizes.txt`,
//!   `localization.txt`) plus a folder holding the images.
//! * [`Layout::Ilsvrc`]: the ILSVRC 2012 validation images plus one
//!   PASCAL-VOC-style XML annotation per image and a synset list.
//!
//! Boxes are kept as the files give them, as continuous coordinates
//! `x0 = xmin, x1 = xmax` (the same convention `boxes.csv` uses when it
//! scales the ILSVRC boxes to the stored images), in the pixels of the image
//! of size [`Sample::size`].

mod csv;
mod ilsvrc;
mod shard;
mod wsol;
mod xml;

use std::path::{Path, PathBuf};

use feedbacknet_localize::BoundingBox;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

pub use shard::Shard;

/// One evaluation image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Position in data set order (kept by [`Dataset::shard`]).
    pub index: usize,
    /// Image path relative to the image root, e.g.
    /// `images/ILSVRC2012_val_00000361.JPEG` or `val/ILSVRC2012_val_00000001.JPEG`.
    pub id: String,
    /// The image file: the image root joined with `id`.
    pub path: PathBuf,
    /// Ground-truth class, 0..999 in the standard sorted-wnid order.
    pub class: usize,
    /// `(width, height)` of the image the boxes refer to.
    pub size: (u32, u32),
    /// Ground-truth boxes of `class`, in pixels of an image of `size`.
    pub boxes: Vec<BoundingBox>,
}

/// Which file layout a [`Dataset`] was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// The project's `boxes.csv`.
    BoxesCsv,
    /// clovaai/wsolevaluation metadata files.
    WsolMetadata,
    /// ILSVRC per-image XML annotations.
    Ilsvrc,
}

/// An ordered list of [`Sample`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The images, in data set order (`samples[i].index == i` unless sharded).
    pub samples: Vec<Sample>,
    /// The layout the samples were read from.
    pub layout: Layout,
}

/// File names that mark a synset list (`wnid name, synonyms` per line).
pub const SYNSET_FILE_NAMES: [&str; 2] = ["synset_words.txt", "LOC_synset_mapping.txt"];

impl Dataset {
    /// Opens a data set, detecting its layout from `path`:
    ///
    /// * a `.csv` file, or a folder with `boxes.csv`: [`Dataset::from_boxes_csv`]
    ///   (images relative to the csv's folder, or to `image_root` if given);
    /// * a folder with `image_ids.txt`: [`Dataset::from_wsol_metadata`];
    ///   `image_root` is required (images are at `image_root/id`);
    /// * a folder with `.xml` files: [`Dataset::from_ilsvrc`] with those
    ///   annotations, images in `image_root` (default: the same folder), and
    ///   the first synset list ([`SYNSET_FILE_NAMES`]) found in the folder,
    ///   its parent or grandparent, or the image root.
    ///
    /// Errors: [`EvalError::UnknownLayout`] when nothing matches or
    /// `image_root` is missing, [`EvalError::EmptyDataset`] when it holds no image, and the
    /// loaders' errors.
    pub fn open(path: &Path, image_root: Option<&Path>) -> Result<Self> {
        let dataset = Self::open_layout(path, image_root)?;
        if dataset.samples.is_empty() {
            return Err(EvalError::EmptyDataset {
                path: path.to_path_buf(),
            });
        }
        Ok(dataset)
    }

    /// [`Dataset::open`] before the check for an empty data set.
    fn open_layout(path: &Path, image_root: Option<&Path>) -> Result<Self> {
        if path.is_file() {
            return Self::from_boxes_csv(path, image_root);
        }
        if path.join("boxes.csv").is_file() {
            return Self::from_boxes_csv(&path.join("boxes.csv"), image_root);
        }
        if path.join("image_ids.txt").is_file() {
            let root = image_root
                .ok_or_else(|| unknown(path, "wsolevaluation metadata needs an image root"))?;
            return Self::from_wsol_metadata(path, root);
        }
        if ilsvrc::has_xml_files(path)? {
            let images = image_root.unwrap_or(path);
            let synsets = find_synsets(path, images)
                .ok_or_else(|| unknown(path, "no synset list found near the XML annotations"))?;
            return Self::from_ilsvrc(path, images, &synsets);
        }
        Err(unknown(
            path,
            "expected a .csv file, or a folder with boxes.csv, image_ids.txt or .xml files",
        ))
    }

    /// Loads the project's `boxes.csv` layout (see [`Layout::BoxesCsv`]):
    /// rows are grouped by image in order of first appearance; boxes are in
    /// stored-image pixels (`x0..y1`) and [`Sample::size`] is `img_w x img_h`.
    /// Images are at `image_root/image`, `image_root` defaulting to the
    /// csv's folder.
    pub fn from_boxes_csv(csv: &Path, image_root: Option<&Path>) -> Result<Self> {
        let root = image_root.map_or_else(
            || csv.parent().unwrap_or(Path::new(".")).to_path_buf(),
            Path::to_path_buf,
        );
        let samples = csv::load(csv, &root)?;
        Ok(Self {
            samples,
            layout: Layout::BoxesCsv,
        })
    }

    /// Loads clovaai/wsolevaluation metadata from `dir` (see
    /// [`Layout::WsolMetadata`]); images are at `image_root/id`. Boxes are in
    /// the pixels of the original image, whose size is in `image_sizes.txt`.
    pub fn from_wsol_metadata(dir: &Path, image_root: &Path) -> Result<Self> {
        let samples = wsol::load(dir, image_root)?;
        Ok(Self {
            samples,
            layout: Layout::WsolMetadata,
        })
    }

    /// Loads ILSVRC XML annotations (one `*.xml` per image in
    /// `annotations`, sorted by file name) with the images in `images`
    /// (`<xml stem>.JPEG`, or `.jpg`/`.jpeg`/`.png` if such a file exists)
    /// and the class index of each wnid taken from its line in `synsets`.
    /// The class of an image is its first object's; only boxes of that class
    /// are kept.
    pub fn from_ilsvrc(annotations: &Path, images: &Path, synsets: &Path) -> Result<Self> {
        let samples = ilsvrc::load(annotations, images, synsets)?;
        Ok(Self {
            samples,
            layout: Layout::Ilsvrc,
        })
    }

    /// The samples of one shard: those with `index % count == index_1_based - 1`.
    pub fn shard(&self, shard: Shard) -> Dataset {
        let samples = self
            .samples
            .iter()
            .filter(|s| shard.contains(s.index))
            .cloned()
            .collect();
        Dataset {
            samples,
            layout: self.layout,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Total number of ground-truth boxes.
    pub fn box_count(&self) -> usize {
        self.samples.iter().map(|s| s.boxes.len()).sum()
    }
}

fn unknown(path: &Path, reason: &str) -> EvalError {
    EvalError::UnknownLayout {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The first synset list in `dir`, its parent, its grandparent or `images`.
fn find_synsets(dir: &Path, images: &Path) -> Option<PathBuf> {
    let folders = dir.ancestors().take(3).chain(std::iter::once(images));
    folders
        .flat_map(|d| SYNSET_FILE_NAMES.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}
