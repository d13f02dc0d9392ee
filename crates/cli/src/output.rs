//! The JSON report and the PNG overlays, written atomically (a failed run never leaves a
//! half-written file in place of an earlier result).

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use feedbacknet::{BoxSettings, DynamicImage, FeedbackNet, Inference, ModelInfo, Prediction};
use serde::Serialize;

use crate::{
    args::InferArgs,
    error::{CliError, Result},
    render::overlay,
};

/// Opacity of the heat map over the photo.
const OVERLAY_ALPHA: f32 = 0.5;

#[derive(Debug, Serialize)]
pub struct Report {
    image: String,
    image_width: u32,
    image_height: u32,
    model: String,
    /// The preprocessing and class layout used, and where each setting came from.
    model_info: ModelInfo,
    /// The number of gated activations (gate sites) at the net's input size, if it could say.
    gate_sites: Option<usize>,
    method: String,
    /// The blur, threshold, refinement and fusion the boxes were made with.
    box_settings: BoxSettings,
    predictions: Vec<Prediction>,
    results: Vec<ResultEntry>,
    total_ms: f64,
    /// What was wrong with an image accepted damaged (`--accept-damaged-images`); absent when
    /// empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// One class's result as the report writes it: the [`Inference`] without its maps (those
/// went into the overlay), so that a long list of classes does not keep every map alive.
#[derive(Debug, Serialize)]
pub struct ResultEntry {
    #[serde(flatten)]
    inference: serde_json::Value,
    overlay: String,
}

impl Report {
    pub fn new(
        args: &InferArgs,
        model: &Path,
        net: &FeedbackNet,
        image: &DynamicImage,
        predictions: Vec<Prediction>,
        results: Vec<ResultEntry>,
        started: Instant,
    ) -> Self {
        Report {
            image: args.image.display().to_string(),
            image_width: image.width(),
            image_height: image.height(),
            model: model.display().to_string(),
            model_info: net.model_info().clone(),
            gate_sites: gate_sites(net),
            method: args.method.to_string(),
            box_settings: net.box_settings(args.method),
            predictions,
            results,
            total_ms: started.elapsed().as_secs_f64() * 1e3,
            warnings: Vec::new(),
        }
    }

    /// The report with the image file's warnings.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }
}

/// The net's gate sites at its own input size (a probe run, cached by the network).
fn gate_sites(net: &FeedbackNet) -> Option<usize> {
    let spec = net.network().input_spec();
    let sites = net.network().gate_sites([spec.height, spec.width]).ok()?;
    Some(sites.len())
}

pub fn stem(image: &Path) -> String {
    image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

pub fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

fn overlay_name(stem: &str, r: &Inference) -> String {
    format!("{stem}_{}_{}.png", r.class.index, slug(&r.class.label))
}

/// Creates the folder `path` lies in, if it has one.
pub fn create_parent(path: &Path) -> Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|source| CliError::Write {
            path: dir.to_path_buf(),
            source,
        }),
        None => Ok(()),
    }
}

/// `picture` encoded as PNG (`path` names the file in an error).
pub fn png_bytes(picture: &image::RgbImage, path: &Path) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| CliError::Encode {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(png)
}

/// Writes `picture` as a PNG to `path` (atomically), creating its folder.
pub fn write_png(path: &Path, picture: &image::RgbImage) -> Result<()> {
    let png = png_bytes(picture, path)?;
    create_parent(path)?;
    write_atomic(path, &png)
}

/// Writes `value` as pretty JSON (one trailing newline) to `path`, atomically, creating its
/// folder.
pub fn write_json_file(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value).map_err(|e| CliError::Encode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    create_parent(path)?;
    write_atomic(path, (json + "\n").as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |source| CliError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes the overlay of each result into `out` (created if needed); returns each result's
/// report entry and the paths written.
pub fn write_overlays(
    out: &Path,
    image_path: &Path,
    rgb: &image::RgbImage,
    results: &[Inference],
) -> Result<(Vec<ResultEntry>, Vec<PathBuf>)> {
    std::fs::create_dir_all(out).map_err(|source| CliError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let stem = stem(image_path);
    let mut entries = Vec::with_capacity(results.len());
    let mut written = Vec::with_capacity(results.len());
    for r in results {
        let name = overlay_name(&stem, r);
        let path = out.join(&name);
        let picture = overlay(rgb, &r.smoothed, &r.boxes, OVERLAY_ALPHA);
        write_atomic(&path, &png_bytes(&picture, &path)?)?;
        let inference = serde_json::to_value(r).map_err(|e| CliError::Encode {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        entries.push(ResultEntry {
            inference,
            overlay: name,
        });
        written.push(path);
    }
    Ok((entries, written))
}

/// Writes the JSON report into `out`; returns its path.
pub fn write_report(out: &Path, image_path: &Path, report: &Report) -> Result<PathBuf> {
    let path = out.join(format!("{}.json", stem(image_path)));
    let json = serde_json::to_vec_pretty(report).map_err(|e| CliError::Encode {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&path, &json)?;
    Ok(path)
}
