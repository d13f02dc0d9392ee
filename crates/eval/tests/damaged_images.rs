//! The decoding policy on real files cut or damaged at test time: a truncated JPEG (which its
//! decoder would fill with grey) refused by default and accepted with a warning on request, a
//! truncated PNG refused, the limits, no false alarm on the shared JPEGs, and the same policy
//! in an evaluation run.

mod common;

use std::path::{Path, PathBuf};

use common::{MockExplainer, dev_dir, shared};
use feedbacknet_eval::{
    DamagedImages, Dataset, DecodeOptions, ImageFileError, MeasureConfig, Runner,
    decode_image_file, jpeg_damage, read_records,
};

/// A shared dev-set JPEG (227x227).
fn dev_jpeg() -> PathBuf {
    dev_dir().join("images/ILSVRC2012_val_00000361.JPEG")
}

/// The first `fraction` of `source`'s bytes written to `dir/name`.
fn cut(source: &Path, fraction: f64, dir: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(source).unwrap();
    let len = (bytes.len() as f64 * fraction) as usize;
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..len]).unwrap();
    path
}

#[test]
fn a_truncated_jpeg_is_refused_by_default_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let whole = decode_image_file(dev_jpeg(), &DecodeOptions::default()).unwrap();
    assert!(whole.warnings.is_empty());
    for fraction in [1.0 / 3.0, 2.0 / 3.0, 0.99] {
        let path = cut(&dev_jpeg(), fraction, dir.path(), "cut.jpg");
        // The decoder alone decodes the cut file without an error (it fills the rest).
        assert!(
            image::open(&path).is_ok(),
            "the decoder accepts the cut file"
        );
        match decode_image_file(&path, &DecodeOptions::default()) {
            Err(ImageFileError::Damaged { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains("truncated"), "{reason}");
                assert!(reason.contains("end-of-image marker"), "{reason}");
                let len = std::fs::metadata(&path).unwrap().len();
                assert!(reason.contains(&format!("{len} bytes")), "{reason}");
            }
            other => panic!("cut at {fraction}: {other:?}"),
        }
    }
}

#[test]
fn a_truncated_jpeg_is_decoded_with_a_warning_when_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(&dev_jpeg(), 1.0 / 3.0, dir.path(), "cut.jpg");
    let accept = DecodeOptions::default().damaged(DamagedImages::Accept);
    let loaded = decode_image_file(&path, &accept).unwrap();
    assert_eq!((loaded.image.width(), loaded.image.height()), (227, 227));
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0].contains("truncated"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn a_truncated_png_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let png = shared().join("data/demo/gradcam_both.png");
    assert!(decode_image_file(&png, &DecodeOptions::default()).is_ok());
    let path = cut(&png, 0.5, dir.path(), "cut.png");
    let accept = DecodeOptions::default().damaged(DamagedImages::Accept);
    for options in [DecodeOptions::default(), accept] {
        match decode_image_file(&path, &options) {
            Err(ImageFileError::Decode { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains("end of file"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn images_over_the_limits_are_refused_before_decoding() {
    let refused = |options: DecodeOptions| match decode_image_file(dev_jpeg(), &options) {
        Err(ImageFileError::TooLarge { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    let reason = refused(DecodeOptions::default().max_width(200));
    assert!(
        reason.contains("227x227") && reason.contains("200"),
        "{reason}"
    );
    let reason = refused(DecodeOptions::default().max_height(100));
    assert!(reason.contains("taller"), "{reason}");
    // 227 x 227 RGB needs 154,587 bytes.
    let reason = refused(DecodeOptions::default().max_bytes(150_000));
    assert!(reason.contains("154587"), "{reason}");
    let fits = DecodeOptions::default()
        .max_width(227)
        .max_height(227)
        .max_bytes(154_587);
    assert!(decode_image_file(dev_jpeg(), &fits).is_ok());
}

#[test]
fn no_shared_jpeg_is_called_damaged() {
    let mut checked = 0;
    for folder in [
        dev_dir().join("images"),
        shared().join("data/imagenet-val-fullres/images"),
        shared().join("data/demo"),
    ] {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if bytes.starts_with(&[0xFF, 0xD8]) {
                assert_eq!(jpeg_damage(&bytes), None, "{}", path.display());
                let mut padded = bytes.clone();
                padded.extend([0; 64]);
                assert_eq!(jpeg_damage(&padded), None, "{} padded", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked > 400, "{checked} JPEGs checked");
}

#[test]
fn every_cut_of_a_real_jpeg_is_found() {
    let bytes = std::fs::read(dev_jpeg()).unwrap();
    for len in (2..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        let reason = jpeg_damage(&bytes[..len]);
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("truncated")),
            "cut at {len} of {}: {reason:?}",
            bytes.len()
        );
    }
}

/// A data set of two dev images, the second cut to a third of its length.
fn dataset_with_a_cut_image(dir: &Path) -> Dataset {
    let rows = common::csv_rows();
    let mut csv = String::from("image,class_idx,wnid,img_w,img_h,x0,y0,x1,y1\n");
    for (i, r) in rows.iter().take(2).enumerate() {
        let name = r.image.trim_start_matches("images/");
        let fraction = if i == 1 { 1.0 / 3.0 } else { 1.0 };
        cut(&dev_dir().join(&r.image), fraction, dir, name);
        csv += &format!("{name},{},{},227,227,10,10,100,100\n", r.class, r.wnid);
    }
    std::fs::write(dir.join("boxes.csv"), csv).unwrap();
    Dataset::open(dir, None).unwrap()
}

#[test]
fn the_evaluator_fails_a_truncated_image_or_records_its_warning() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset_with_a_cut_image(dir.path());
    let explainer = MockExplainer::new(&ds);
    let measure = MeasureConfig::default().with_sweep(vec![0.5]);
    let refused = dir.path().join("refused.jsonl");
    let out = Runner::new(&refused)
        .measure(measure.clone())
        .run(&ds, &explainer, |_| {})
        .unwrap();
    assert_eq!((out.evaluated, out.failed), (2, 1));
    let records = read_records(&refused).unwrap().records;
    assert!(records[0].error.is_none() && records[0].warnings.is_empty());
    let error = records[1].error.as_deref().unwrap();
    assert!(
        error.contains("damaged image") && error.contains("truncated"),
        "{error}"
    );
    let accepted = dir.path().join("accepted.jsonl");
    let out = Runner::new(&accepted)
        .measure(measure)
        .decode_options(DecodeOptions::default().damaged(DamagedImages::Accept))
        .run(&ds, &explainer, |_| {})
        .unwrap();
    assert_eq!((out.evaluated, out.failed), (2, 0));
    let records = read_records(&accepted).unwrap().records;
    assert!(records[1].error.is_none());
    assert!(
        records[1].warnings[0].contains("truncated"),
        "{:?}",
        records[1].warnings
    );
    // A sound image's record has no `warnings` key: earlier files read the same.
    let text = std::fs::read_to_string(&accepted).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines[0].contains("warnings") && lines[1].contains("\"warnings\""));
}
