//! `annotations`: text -> the evaluation data set loaders: the project's `boxes.csv`,
//! clovaai/wsolevaluation's four metadata files, and ILSVRC XML annotations with a synset list.
//!
//! Input layout: the first byte picks the format (`% 3`: 0 csv, 1 wsolevaluation, 2 ILSVRC);
//! the rest is split at NUL bytes into the files' contents, in the order
//! `boxes.csv`; `image_ids.txt`, `class_labels.txt`, `image_sizes.txt`, `localization.txt`;
//! `synset_words.txt`, then one or two `.xml` files. Missing parts are empty files.

use std::path::Path;

use feedbacknet_eval::{Dataset, EvalError};

/// Inputs larger than this are skipped.
pub const MAX_BYTES: usize = 64 * 1024;

/// Which loader an input goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `boxes.csv`.
    BoxesCsv,
    /// wsolevaluation metadata.
    Wsol,
    /// ILSVRC XML.
    Ilsvrc,
}

/// Loads the files encoded in `data`; `None` for an empty or too large input. Must not panic or
/// abort, whatever the bytes.
pub fn run(data: &[u8]) -> Option<(Format, Result<Dataset, EvalError>)> {
    let (&first, rest) = data.split_first()?;
    if data.len() > MAX_BYTES {
        return None;
    }
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let root = crate::scratch::dir().join("annotations");
    // A fresh folder: the ILSVRC loader reads every `.xml` file in it.
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("the scratch folder is created");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(root.join(name), bytes).expect("a scratch file is written");
    };
    let result = match first % 3 {
        0 => {
            write("boxes.csv", part(0));
            (
                Format::BoxesCsv,
                Dataset::from_boxes_csv(&root.join("boxes.csv"), None),
            )
        }
        1 => {
            let names = [
                "image_ids.txt",
                "class_labels.txt",
                "image_sizes.txt",
                "localization.txt",
            ];
            for (i, name) in names.iter().enumerate() {
                write(name, part(i));
            }
            (
                Format::Wsol,
                Dataset::from_wsol_metadata(&root, Path::new("images")),
            )
        }
        _ => {
            write("synset_words.txt", part(0));
            write("ILSVRC2012_val_00000001.xml", part(1));
            if parts.len() > 2 {
                write("ILSVRC2012_val_00000002.xml", part(2));
            }
            let synsets = root.join("synset_words.txt");
            (Format::Ilsvrc, Dataset::from_ilsvrc(&root, &root, &synsets))
        }
    };
    Some(result)
}
