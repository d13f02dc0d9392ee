//! `feedbacknet compare`: one panel PNG with the photo and, per class, each method's map and
//! boxes (the layout of the paper's figures 2 and 5-7), plus a JSON with the numbers.

use std::time::Instant;

use feedbacknet::{BoxSettings, Inference, LoadedImage, ModelInfo, Request, load_image_with};
use serde::Serialize;

use crate::{
    args::CompareArgs,
    error::{CliError, Result},
    infer::{print_warnings, spinner},
    net::{box_line, build, objective_for_classes, settings_line, with_refine},
    output::{write_atomic, write_png},
    panel::Panel,
    render::overlay,
};

/// Height of one tile of the panel, in pixels.
const TILE_HEIGHT: u32 = 240;
/// Opacity of the heat map over the photo.
const OVERLAY_ALPHA: f32 = 0.55;

#[derive(Debug, Serialize)]
struct CompareReport<'a> {
    image: String,
    panel: String,
    model_info: ModelInfo,
    methods: Vec<String>,
    /// Each method's blur, threshold, refinement and fusion (`box_settings[method]`).
    box_settings: Vec<BoxSettings>,
    /// `results[method][class]`.
    results: Vec<Vec<&'a Inference>>,
    total_ms: f64,
    /// What was wrong with an image accepted damaged; absent when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

pub fn run(mut args: CompareArgs) -> Result<()> {
    let started = Instant::now();
    if args.methods.is_empty() {
        return Err(CliError::Usage("give at least one method".into()));
    }
    let bar = spinner();
    if let Some(note) = objective_for_classes(&mut args.settings, args.class.len()) {
        bar.suspend(|| eprintln!("{note}"));
    }
    bar.set_message("loading the model");
    let net = with_refine(
        build(&args.model, &args.settings, args.methods[0])?,
        args.refine,
    );
    bar.suspend(|| {
        eprintln!("{}", settings_line(&net));
        for &method in &args.methods {
            eprintln!("boxes: {}", box_line(&net, method));
        }
    });
    let LoadedImage { image, warnings } = load_image_with(&args.image, &args.decode.options())?;
    bar.suspend(|| print_warnings(&args.image, &warnings));
    let classes = args
        .class
        .iter()
        .map(|c| net.class_index(c.clone()))
        .collect::<feedbacknet::Result<Vec<_>>>()?;
    bar.set_message(format!(
        "{} methods for {} classes (one batch)",
        args.methods.len(),
        classes.len()
    ));
    let request = Request::classes(classes.iter().copied()).methods(args.methods.iter().copied());
    let per_method = net.explain(&image, &request)?.into_per_method();
    bar.set_message("drawing the panel");
    let rgb = image.to_rgb8();
    let tile_w = (TILE_HEIGHT as f64 * f64::from(rgb.width()) / f64::from(rgb.height()))
        .round()
        .clamp(64.0, 4.0 * TILE_HEIGHT as f64) as u32;
    let cols = 1 + args.methods.len() as u32;
    let mut panel = Panel::new(classes.len() as u32, cols, (tile_w, TILE_HEIGHT));
    for (row, _) in classes.iter().enumerate() {
        let label = &per_method[0][row].class.label;
        panel.put(row as u32, 0, &rgb, label);
        for (col, results) in per_method.iter().enumerate() {
            let r = &results[row];
            let picture = overlay(&rgb, &r.smoothed, &r.boxes, OVERLAY_ALPHA);
            let caption = format!("{}: {}", r.method, r.class.label);
            panel.put(row as u32, col as u32 + 1, &picture, &caption);
        }
    }
    write_png(&args.out, &panel.into_image())?;
    let report = CompareReport {
        image: args.image.display().to_string(),
        panel: args.out.display().to_string(),
        model_info: net.model_info().clone(),
        methods: args.methods.iter().map(ToString::to_string).collect(),
        box_settings: args.methods.iter().map(|&m| net.box_settings(m)).collect(),
        results: per_method.iter().map(|rs| rs.iter().collect()).collect(),
        total_ms: started.elapsed().as_secs_f64() * 1e3,
        warnings,
    };
    let json_path = args.out.with_extension("json");
    let json = serde_json::to_vec_pretty(&report).map_err(|e| CliError::Encode {
        path: json_path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(&json_path, &json)?;
    bar.finish_and_clear();
    println!("wrote {}", args.out.display());
    println!("wrote {}", json_path.display());
    Ok(())
}
