//! Loading the three data set layouts from the shared data.

mod common;

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

use common::{CsvRow, bb, csv_rows, dev_dir, dev_set, metadata_dir};
use feedbacknet_eval::{Dataset, EvalError, Layout, Shard};

#[test]
fn boxes_csv_layout() {
    let ds = dev_set();
    assert_eq!(ds.layout, Layout::BoxesCsv);
    assert_eq!((ds.len(), ds.box_count()), (403, 542));
    let first = &ds.samples[0];
    assert_eq!(first.id, "images/ILSVRC2012_val_00000361.JPEG");
    assert_eq!((first.index, first.class, first.size), (0, 300, (227, 227)));
    assert_eq!(first.boxes, vec![bb(37.68, 52.68, 190.23, 202.28)]);
    assert!(first.path.is_file(), "{}", first.path.display());
    assert!(ds.samples.iter().enumerate().all(|(i, s)| s.index == i));
    assert!(ds.samples.iter().all(|s| s.path.is_file()));
    // The csv file itself opens the same way.
    let direct = Dataset::open(&dev_dir().join("boxes.csv"), None).unwrap();
    assert_eq!(direct, ds);
    // Rows are grouped by image in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    for row in csv_rows() {
        if !order.contains(&row.image) {
            order.push(row.image);
        }
    }
    let ids: Vec<&str> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, order);
}

#[test]
fn wsol_metadata_layout() {
    let root = Path::new("/nonexistent/ILSVRC");
    let start = Instant::now();
    let ds = Dataset::open(&metadata_dir(), Some(root)).unwrap();
    eprintln!("50,000-image metadata loaded in {:?}", start.elapsed());
    assert_eq!(ds.layout, Layout::WsolMetadata);
    assert_eq!((ds.len(), ds.box_count()), (50_000, 80_477));
    let first = &ds.samples[0];
    assert_eq!(first.id, "val/ILSVRC2012_val_00000001.JPEG");
    assert_eq!(first.path, root.join("val/ILSVRC2012_val_00000001.JPEG"));
    assert_eq!((first.class, first.size), (65, (500, 375)));
    assert_eq!(first.boxes, vec![bb(111.0, 108.0, 441.0, 193.0)]);
    assert_eq!(ds.samples[1].boxes.len(), 2);
    assert_eq!(ds.samples[49_999].index, 49_999);
    // Without an image root the layout cannot be used.
    assert!(matches!(
        Dataset::open(&metadata_dir(), None),
        Err(EvalError::UnknownLayout { .. })
    ));
}

/// The metadata and the dev csv agree on every dev image (class and
/// original-resolution boxes).
#[test]
fn metadata_agrees_with_dev_csv() {
    let ds = Dataset::from_wsol_metadata(&metadata_dir(), Path::new("/x")).unwrap();
    let by_id: HashMap<&str, usize> = ds
        .samples
        .iter()
        .map(|s| (s.id.as_str(), s.index))
        .collect();
    let grouped = group_by_image(&csv_rows());
    assert_eq!(grouped.len(), 403);
    for (image, rows) in &grouped {
        let name = image.trim_start_matches("images/");
        let s = &ds.samples[by_id[format!("val/{name}").as_str()]];
        assert_eq!(s.class, rows[0].class, "{name}");
        assert_eq!(s.size, rows[0].orig_size, "{name}");
        let boxes: Vec<_> = rows
            .iter()
            .map(|r| bb(r.orig_box[0], r.orig_box[1], r.orig_box[2], r.orig_box[3]))
            .collect();
        assert_eq!(s.boxes, boxes, "{name}");
    }
}

fn group_by_image(rows: &[CsvRow]) -> Vec<(String, Vec<CsvRow>)> {
    let mut grouped: Vec<(String, Vec<CsvRow>)> = Vec::new();
    for row in rows {
        match grouped.iter_mut().find(|(id, _)| *id == row.image) {
            Some((_, v)) => v.push(row.clone()),
            None => grouped.push((row.image.clone(), vec![row.clone()])),
        }
    }
    grouped
}

/// An ILSVRC-style XML annotation for one image's rows.
fn annotation_xml(rows: &[CsvRow]) -> String {
    let stem = rows[0]
        .image
        .trim_start_matches("images/")
        .trim_end_matches(".JPEG");
    let (w, h) = rows[0].orig_size;
    let mut xml = format!(
        "<annotation>\n\t<folder>val</folder>\n\t<filename>{stem}</filename>\n\t<source>\n\t\t<database>ILSVRC_2012</database>\n\t</source>\n\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
    );
    for r in rows {
        let [x0, y0, x1, y1] = r.orig_box;
        let _ = write!(
            xml,
            "\t<object>\n\t\t<name>{}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n\t</object>\n",
            r.wnid
        );
    }
    xml + "</annotation>\n"
}

/// Writes `ILSVRC/{Annotations,Data}` for the first `n` dev images plus the
/// synset list beside them; returns the annotation and image folders.
fn write_ilsvrc_sample(root: &Path, n: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let annotations = root.join("Annotations/val");
    let images = root.join("Data/val");
    std::fs::create_dir_all(&annotations).unwrap();
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(
        dev_dir().join("synset_words.txt"),
        root.join("synset_words.txt"),
    )
    .unwrap();
    for (image, rows) in group_by_image(&csv_rows()).iter().take(n) {
        let name = image.trim_start_matches("images/");
        let stem = name.trim_end_matches(".JPEG");
        std::fs::write(
            annotations.join(format!("{stem}.xml")),
            annotation_xml(rows),
        )
        .unwrap();
        std::fs::copy(dev_dir().join(image), images.join(name)).unwrap();
    }
    (annotations, images)
}

#[test]
fn ilsvrc_xml_layout_matches_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_ilsvrc_sample(dir.path(), 30);
    // The synset list is found two levels up from the annotations.
    let ds = Dataset::open(&annotations, Some(&images)).unwrap();
    assert_eq!(ds.layout, Layout::Ilsvrc);
    assert_eq!(ds.len(), 30);
    let grouped = group_by_image(&csv_rows());
    let expected: HashMap<&str, &Vec<CsvRow>> = grouped
        .iter()
        .take(30)
        .map(|(id, rows)| (id.trim_start_matches("images/"), rows))
        .collect();
    let mut names: Vec<&str> = expected.keys().copied().collect();
    names.sort();
    let ids: Vec<&str> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, names, "sorted by file name");
    let mut multi_box = 0;
    for s in &ds.samples {
        let rows = expected[s.id.as_str()];
        assert_eq!(s.class, rows[0].class, "{}", s.id);
        assert_eq!(s.size, rows[0].orig_size, "{}", s.id);
        let boxes: Vec<_> = rows
            .iter()
            .map(|r| bb(r.orig_box[0], r.orig_box[1], r.orig_box[2], r.orig_box[3]))
            .collect();
        assert_eq!(s.boxes, boxes, "{}", s.id);
        assert_eq!(s.path, images.join(&s.id));
        assert!(s.path.is_file());
        multi_box += usize::from(boxes.len() > 1);
    }
    assert!(multi_box > 0, "the sample has an image with several boxes");
}

#[test]
fn ilsvrc_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let (annotations, images) = write_ilsvrc_sample(dir.path(), 3);
    let xml = annotations.join("ILSVRC2012_val_99999999.xml");
    let text = "<annotation>\n<size><width>10</width><height>10</height></size>\n<object>\n<name>n99999999</name>\n<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>\n</annotation>";
    std::fs::write(&xml, text).unwrap();
    match Dataset::open(&annotations, Some(&images)) {
        Err(EvalError::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!((path, line), (xml.clone(), 4));
            assert!(message.contains("n99999999"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let text = "<annotation>\n<size><width>10</width><height>ten</height></size>\n</annotation>";
    std::fs::write(&xml, text).unwrap();
    match Dataset::open(&annotations, Some(&images)) {
        Err(EvalError::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!((path, line), (xml.clone(), 2));
            assert!(message.contains("height"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    std::fs::remove_file(dir.path().join("synset_words.txt")).unwrap();
    std::fs::remove_file(&xml).unwrap();
    assert!(matches!(
        Dataset::open(&annotations, Some(&images)),
        Err(EvalError::UnknownLayout { .. })
    ));
}

#[test]
fn unknown_layouts_and_bad_csvs() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Dataset::open(dir.path(), None),
        Err(EvalError::UnknownLayout { .. })
    ));
    let csv = dir.path().join("boxes.csv");
    std::fs::write(&csv, "image,class_idx,img_w,img_h,x0,y0,x1\n").unwrap();
    assert!(matches!(
        Dataset::open(dir.path(), None),
        Err(EvalError::Parse { line: 1, .. })
    ));
    let text = "image,class_idx,img_w,img_h,x0,y0,x1,y1\na.jpg,1,10,10,1,1,5,5\na.jpg,oops,10,10,1,1,5,5\n";
    std::fs::write(&csv, text).unwrap();
    match Dataset::open(&csv, None) {
        Err(EvalError::Parse { line, message, .. }) => {
            assert_eq!(line, 3);
            assert!(message.contains("class_idx"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let text =
        "image,class_idx,img_w,img_h,x0,y0,x1,y1\na.jpg,1,10,10,1,1,5,5\na.jpg,2,10,10,1,1,5,5\n";
    std::fs::write(&csv, text).unwrap();
    assert!(matches!(
        Dataset::open(&csv, None),
        Err(EvalError::Parse { line: 3, .. })
    ));
    let missing = dir.path().join("missing.csv");
    assert!(matches!(
        Dataset::from_boxes_csv(&missing, None),
        Err(EvalError::Io { .. })
    ));
}

#[test]
fn empty_short_and_outside_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("boxes.csv");
    let header = "image,class_idx,img_w,img_h,x0,y0,x1,y1\n";
    // A header and no rows: no images to evaluate.
    std::fs::write(&csv, header).unwrap();
    assert!(matches!(
        Dataset::open(&csv, None),
        Err(EvalError::EmptyDataset { .. })
    ));
    // A row one field short would be read with its columns shifted.
    std::fs::write(&csv, format!("{header}a.jpg,1,10,10,1,5,5\n")).unwrap();
    match Dataset::open(&csv, None) {
        Err(EvalError::Parse {
            line: 2, message, ..
        }) => {
            assert!(
                message.contains("7 fields where the header has 8"),
                "{message}"
            )
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // A box past its image (more than a pixel) is refused; one ending on the edge is not.
    std::fs::write(&csv, format!("{header}a.jpg,1,10,10,1,1,11,10\n")).unwrap();
    assert_eq!(Dataset::open(&csv, None).unwrap().samples.len(), 1);
    for outside in ["1,1,50,5", "-5,1,5,5", "1,1,5,12"] {
        std::fs::write(&csv, format!("{header}a.jpg,1,10,10,{outside}\n")).unwrap();
        match Dataset::open(&csv, None) {
            Err(EvalError::Parse {
                line: 2, message, ..
            }) => {
                assert!(message.contains("leaves its 10x10 image"), "{message}")
            }
            other => panic!("{outside}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn shards_split_the_set() {
    let ds = dev_set();
    let shards: Vec<Dataset> = (1..=3)
        .map(|i| ds.shard(Shard::parse(&format!("{i}/3")).unwrap()))
        .collect();
    assert_eq!(
        shards.iter().map(Dataset::len).collect::<Vec<_>>(),
        vec![135, 134, 134]
    );
    assert!(shards[1].samples.iter().all(|s| s.index % 3 == 1));
    let mut indices: Vec<usize> = shards
        .iter()
        .flat_map(|d| d.samples.iter().map(|s| s.index))
        .collect();
    indices.sort();
    assert_eq!(indices, (0..403).collect::<Vec<_>>());
    assert_eq!(ds.shard(Shard::new(1, 1).unwrap()), ds);
    for bad in ["0/3", "4/3", "1/0", "3", "a/b", "-1/3", ""] {
        assert!(
            matches!(Shard::parse(bad), Err(EvalError::InvalidShard { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(Shard::parse(" 2 / 5 ").unwrap().to_string(), "2/5");
    assert_eq!("3/3".parse::<Shard>().unwrap(), Shard::new(3, 3).unwrap());
}
