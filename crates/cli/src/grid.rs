//! `feedbacknet grid`: the grid pointing game (Rao et al., CVPR 2022).
//!
//! Mosaics of `n × n` images of distinct classes, each classified correctly and confidently on
//! its own, are built from the data set (`feedbacknet_eval::grid`); every cell's class is
//! explained on the whole mosaic by each method, and its map scored against that cell: the
//! share of its positive mass inside the cell, whether its peak lies there, and GT-known
//! localization of the cell's boxes. The maps are the evaluator's ([`MethodExplainer`]: the
//! saliency at the mosaic's resolution, blurred), boxed at each method's own box settings
//! (tuned on the net's dev images; `--blur`, `--threshold`, `--refine` replace them), the
//! refinement reading the mosaic's colours.

use std::{path::Path, time::Instant};

use feedbacknet::{DecodeOptions, FeedbackNet, InputSize, JointExplainer, Method, MethodExplainer};
use feedbacknet_eval::grid::{
    CellScore, Classification, Classifier, GridManifest, GridSummary, MosaicDone, MosaicLayout,
    SelectConfig, select,
};
use feedbacknet_eval::{
    Dataset, ExplainError, GalleryItem, GridReport, config_table, encode_png, sha256_file,
};
use image::{RgbImage, imageops::FilterType};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::{
    args::{CropsArg, GridArgs, GridScaleArg, ResizeArg},
    error::{CliError, Result},
    net::{box_line, box_measure, build, model_path, settings_line, with_refine},
    output::{create_parent, stem, write_atomic, write_json_file},
    render::{draw_rect, overlay},
};

/// Longest side of a mosaic picture in the report.
const PICTURE_SIDE: u32 = 320;

/// Outline colour of the explained cell in the report's pictures: white.
const CELL_COLOR: [u8; 3] = [255, 255, 255];

/// A net's top-1 class and probability, for the selection.
struct NetClassifier<'a>(&'a FeedbackNet);

impl Classifier for NetClassifier<'_> {
    fn classify(
        &self,
        image: &image::DynamicImage,
    ) -> std::result::Result<Classification, ExplainError> {
        let top = self.0.predict(image, 1)?.into_iter().next();
        let top = top.ok_or("the net gave no class")?;
        Ok(Classification {
            class: top.class.index,
            probability: top.probability,
        })
    }
}

/// One method's results.
struct MethodResult {
    method: Method,
    summary: GridSummary,
    scores: Vec<CellScore>,
}

pub fn run(mut args: GridArgs) -> Result<()> {
    let started = Instant::now();
    if args.settings.crops == CropsArg::Ten {
        return Err(CliError::Usage(
            "grid: --crops ten would cut the mosaic's cells apart; use --crops single".into(),
        ));
    }
    let first = args
        .methods
        .first()
        .copied()
        .ok_or_else(|| CliError::Usage("grid: --method needs at least one method".into()))?;
    let (data, dataset) = args.data.open()?;
    let model = model_path(&args.model);
    let decode = args.data.decode.options();
    let manifest = {
        let single = build(&args.model, &args.settings, first)?;
        eprintln!("{}", settings_line(&single));
        match &args.from_manifest {
            Some(path) => GridManifest::read(path)?,
            None => choose(&args, &dataset, &single, &decode)?,
        }
    };
    report_selection(&manifest, &args)?;
    let net = mosaic_net(&mut args, &manifest, first)?;
    let mut results = Vec::new();
    let mut pictures = Vec::new();
    // One explanation call per mosaic for all the methods (feedback and feedback-cam share
    // their solve); each method then reads its own maps.
    let joint = JointExplainer::new(
        (args.methods.iter())
            .map(|&method| MethodExplainer {
                net: &net,
                method,
                blur: net.box_settings(method).localize.blur_sigma,
                refine: false,
            })
            .collect(),
    );
    for (index, &method) in args.methods.iter().enumerate() {
        // The method's own blur, threshold, scale and refinement (with the mosaic's colours).
        let measure = box_measure(&net.box_settings(method)).with_sweep(Vec::new());
        let explainer = joint.view(index);
        eprintln!("boxes: {}", box_line(&net, method));
        let bar = progress_bar("mosaics", method.name());
        let scores = feedbacknet_eval::grid::evaluate(
            &manifest,
            &dataset,
            &explainer,
            &measure,
            &decode,
            |done| {
                bar.set_length(done.total as u64);
                bar.set_position(done.done as u64);
                if done.entry.index < args.gallery {
                    pictures.extend(draw(&net, method, &done));
                }
            },
        )?;
        bar.finish_and_clear();
        let summary = GridSummary::from_scores(manifest.layout.n, &scores);
        print_row(method, &summary);
        results.push(MethodResult {
            method,
            summary,
            scores,
        });
    }
    let wall_s = started.elapsed().as_secs_f64();
    println!("{} methods in {wall_s:.1} s", results.len());
    let config = run_config(&args, &data, &model, &net, &manifest);
    if let Some(path) = &args.json {
        write_json(path, &config, &model, &manifest, &results, wall_s)?;
    }
    if let Some(path) = &args.report {
        let table = config_table(&config);
        let methods: Vec<(String, GridSummary)> = results
            .iter()
            .map(|r| (r.method.name().to_string(), r.summary.clone()))
            .collect();
        let title = format!(
            "feedbacknet grid: {0}x{0} mosaics on {1}",
            manifest.layout.n,
            stem(&model)
        );
        let page = GridReport {
            title: &title,
            config: &table,
            methods: &methods,
            gallery: &pictures,
        }
        .to_html();
        create_parent(path)?;
        write_atomic(path, page.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Selects the mosaics with the single-image net, cells at its input size.
fn choose(
    args: &GridArgs,
    dataset: &Dataset,
    net: &FeedbackNet,
    decode: &DecodeOptions,
) -> Result<GridManifest> {
    let config = SelectConfig::default()
        .with_n(args.n)
        .with_mosaics(args.mosaics)
        .with_seed(args.seed)
        .with_confidence(args.confidence);
    let spec = net.input_spec();
    let (w, h) = (side(spec.width)?, side(spec.height)?);
    let layout = MosaicLayout::new(args.n, w, h)?;
    let bar = progress_bar("images classified", "selecting");
    bar.set_length(dataset.len() as u64);
    let selection = select(dataset, &NetClassifier(net), &config, decode, |p| {
        bar.set_position(p.examined as u64);
        bar.set_message(format!("{}/{} mosaics", p.complete, p.wanted));
    })?;
    bar.finish_and_clear();
    Ok(GridManifest::new(&selection, dataset, &config, layout)?)
}

fn side(pixels: usize) -> Result<u32> {
    u32::try_from(pixels).map_err(|_| CliError::Usage(format!("input side {pixels} too large")))
}

/// Prints what the selection found, writes the manifest if asked, refuses an empty one.
fn report_selection(manifest: &GridManifest, args: &GridArgs) -> Result<()> {
    let s = &manifest.select;
    println!(
        "{} mosaics of {n}x{n} (seed {}, confidence >= {}): {} images classified, {} confident and correct, {} failed",
        manifest.mosaics.len(),
        s.seed,
        s.confidence,
        manifest.examined,
        manifest.accepted,
        manifest.failed,
        n = s.n,
    );
    if manifest.mosaics.len() < s.mosaics {
        eprintln!(
            "warning: only {} of the {} mosaics asked for: the data set ran out (lower --confidence?)",
            manifest.mosaics.len(),
            s.mosaics
        );
    }
    if let Some(path) = &args.manifest {
        create_parent(path)?;
        manifest.write(path)?;
        println!("wrote {}", path.display());
    }
    if manifest.mosaics.is_empty() {
        return Err(CliError::Usage(
            "grid: no complete mosaic; lower --confidence or use a larger data set".into(),
        ));
    }
    Ok(())
}

/// The net that explains the mosaics: the whole mosaic stretched onto its input, at the
/// mosaic's size (`--scale cells`) or the net's own (`--scale input`).
fn mosaic_net(args: &mut GridArgs, manifest: &GridManifest, method: Method) -> Result<FeedbackNet> {
    let preprocess = &mut args.model.preprocess;
    preprocess.resize = Some(ResizeArg::Stretch);
    if args.scale == GridScaleArg::Cells {
        let (w, h) = manifest.layout.size();
        let size = InputSize::new(h as usize, w as usize).map_err(feedbacknet::Error::from)?;
        preprocess.input_size = Some(size);
    }
    Ok(with_refine(
        build(&args.model, &args.settings, method)?,
        args.refine,
    ))
}

fn progress_bar(unit: &str, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template = format!("{{bar:30}} {{pos}}/{{len}} {unit} [{{elapsed}} < {{eta}}] {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message.to_string());
    bar
}

fn print_row(method: Method, s: &GridSummary) {
    let pct = |v: f64| format!("{:5.1} %", 100.0 * v);
    println!(
        "{:<14} mass in cell {}  peak in cell {}  GT-known loc {}  mean IoU {:.3}  ({} cells, {} failed; chance {})",
        method.name(),
        pct(s.mass_share),
        pct(s.peak_in_cell),
        pct(s.gt_known_loc),
        s.mean_iou,
        s.cells,
        s.failed,
        pct(s.chance)
    );
}

/// The report's pictures of one mosaic: per cell, its class map over the mosaic, the cell
/// outlined and its ground-truth boxes drawn.
fn draw(net: &FeedbackNet, method: Method, done: &MosaicDone<'_>) -> Vec<GalleryItem> {
    let Some(image) = done.image else {
        return Vec::new();
    };
    done.entry
        .cells
        .iter()
        .zip(done.maps)
        .zip(done.scores)
        .filter_map(|((cell, map), score)| {
            let mut picture = overlay(image, map.as_ref()?, &cell.boxes, 0.5);
            let rect = cell.rect;
            let outline = feedbacknet::BoundingBox::new(
                rect.x as f32,
                rect.y as f32,
                (rect.x + rect.width) as f32,
                (rect.y + rect.height) as f32,
            )
            .ok()?;
            draw_rect(&mut picture, &outline, CELL_COLOR, 2);
            let png = encode_png(&shrink(&picture)).ok()?;
            Some(GalleryItem {
                id: format!(
                    "{} mosaic {} cell {}",
                    method.name(),
                    done.entry.index,
                    score.cell
                ),
                class: cell.class,
                label: net.labels().get(cell.class).map(|l| l.name().to_string()),
                iou: score.iou,
                png,
            })
        })
        .collect()
}

/// The picture with its longer side at most [`PICTURE_SIDE`].
fn shrink(picture: &RgbImage) -> RgbImage {
    let (w, h) = picture.dimensions();
    let longer = w.max(h);
    if longer <= PICTURE_SIDE {
        return picture.clone();
    }
    let scale =
        |v: u32| ((u64::from(v) * u64::from(PICTURE_SIDE) / u64::from(longer)) as u32).max(1);
    image::imageops::resize(picture, scale(w), scale(h), FilterType::Triangle)
}

/// The run's configuration, as recorded in the JSON summary and the report.
fn run_config(
    args: &GridArgs,
    data: &Path,
    model: &Path,
    net: &FeedbackNet,
    manifest: &GridManifest,
) -> serde_json::Value {
    let methods: Vec<&str> = args.methods.iter().map(|m| m.name()).collect();
    let spec = net.input_spec();
    let mut config = json!({
        "model": model.display().to_string(),
        "model_info": net.model_info(),
        "data": data.display().to_string(),
        "methods": methods,
        "n": manifest.layout.n,
        "mosaics": manifest.mosaics.len(),
        "seed": manifest.select.seed,
        "confidence": manifest.select.confidence,
        "scale": args.scale,
        "mosaic_size": manifest.layout.size(),
        "net_input": (spec.width, spec.height),
        "from_manifest": args.from_manifest.as_ref().map(|p| p.display().to_string()),
        "backend": format!("{:?}", args.model.backend),
    });
    if let (Some(config), serde_json::Value::Object(settings)) = (
        config.as_object_mut(),
        crate::net::settings_json(&args.settings),
    ) {
        config.extend(settings);
    }
    config
}

fn write_json(
    path: &Path,
    config: &serde_json::Value,
    model: &Path,
    manifest: &GridManifest,
    results: &[MethodResult],
    wall_s: f64,
) -> Result<()> {
    let methods: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            json!({
                "method": r.method.name(),
                "summary": r.summary,
                "cells": r.scores,
            })
        })
        .collect();
    let contents = json!({
        "config": config,
        "model_sha256": sha256_file(model)?,
        "wall_s": wall_s,
        "methods": methods,
        "manifest": manifest,
    });
    write_json_file(path, &contents)?;
    println!("wrote {}", path.display());
    Ok(())
}
