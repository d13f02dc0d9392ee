//! `feedbacknet tune`: choose the blur and the box threshold on one half of a data set and
//! report the other half at those fixed settings, so that no number is tuned on its own images.
//!
//! The scoring is `feedbacknet_eval::tune`'s (two-fold cross-validation on stored maps, each
//! blurred by [`smoothed_at_image`] exactly as `feedbacknet eval` blurs them); the maps are the
//! library's [`stored_maps`]. This front end turns the arguments into the candidate map
//! settings and the grid, shows progress, prints and writes the results.
//!
//! Several methods (`--method feedback,feedback-cam,gradcam`) are tuned on one pass over the
//! images: methods that share gates share one solve ([`FeedbackNet::explain`]). For
//! feedback-cam, `--cam-weights` and `--feedback-blurs` add the fusion's Grad-CAM weight and
//! feedback blur to the grid, and `--feedback-maps` the map read off the gates (feedback and
//! feedback-cam); every variant is made from the same solve.

use std::path::Path;

use feedbacknet::{
    FeedbackNet, MapScale, Method, MethodSpec, SaliencyMap, perturbed_maps, smoothed_at_image,
    stored_maps,
};
use feedbacknet_eval::{
    Dataset, Sample,
    tune::{Candidates, Fold, Grid, Refinement, StoredImage, TuneResult, tune_method},
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{
    args::{FeedbackMapArg, RefineArg, TuneArgs},
    error::{CliError, Result},
    net::{build, feedback_cam_with, model_path, settings_line},
    output::write_json_file,
};

/// A feedback-cam fusion setting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Fusion {
    cam_weight: f32,
    feedback_blur: f32,
}

/// One candidate map setting of a method: the map read off the gates (feedback methods) and
/// the fusion (feedback-cam).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Variant {
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_map: Option<FeedbackMapArg>,
    #[serde(flatten)]
    fusion: Option<Fusion>,
}

/// The map settings of one method: variant 0 is the command line's.
struct MethodCandidates {
    method: Method,
    candidates: Candidates<Variant>,
}

impl MethodCandidates {
    /// The method's candidates: the variant 0 is the net's own fusion (the tuned one, or the
    /// flags').
    fn of(method: Method, args: &TuneArgs, net: &FeedbackNet) -> Self {
        let s = &args.settings;
        let own = net.box_settings(Method::FeedbackCam).feedback_cam.fusion;
        let (cam_weight, feedback_blur) = (own.rule.cam_weight(), own.fine_blur_sigma);
        let reads_gates = matches!(method, Method::Feedback | Method::FeedbackCam);
        let fused = method == Method::FeedbackCam;
        let list = |values: &[f32], given: f32| match values {
            [] => vec![given],
            v => v.to_vec(),
        };
        let maps = match (reads_gates, args.feedback_maps.as_slice()) {
            (false, _) => vec![None],
            (true, []) => vec![Some(s.feedback_map.clone())],
            (true, maps) => maps.iter().cloned().map(Some).collect(),
        };
        let fusions: Vec<Option<Fusion>> = if fused {
            let mut fusions = Vec::new();
            for cam_weight in list(&args.cam_weights, cam_weight) {
                for feedback_blur in list(&args.feedback_blurs, feedback_blur) {
                    fusions.push(Some(Fusion {
                        cam_weight,
                        feedback_blur,
                    }));
                }
            }
            fusions
        } else {
            vec![None]
        };
        let given = Variant {
            feedback_map: reads_gates.then(|| s.feedback_map.clone()),
            fusion: fused.then_some(Fusion {
                cam_weight,
                feedback_blur,
            }),
        };
        let tried = maps.iter().flat_map(|feedback_map| {
            fusions.iter().map(|fusion| Variant {
                feedback_map: feedback_map.clone(),
                fusion: *fusion,
            })
        });
        Self {
            method,
            candidates: Candidates::new(given, tried),
        }
    }

    /// What `explain` runs for each variant.
    fn specs(&self, args: &TuneArgs) -> Vec<MethodSpec> {
        self.candidates
            .variants()
            .iter()
            .map(|v| {
                let mut spec = MethodSpec::new(self.method);
                if let Some(f) = v.fusion {
                    spec = spec.with_feedback_cam(feedback_cam_with(
                        &args.settings,
                        f.cam_weight,
                        f.feedback_blur,
                    ));
                }
                if let Some(map) = &v.feedback_map {
                    spec = spec.with_feedback_map(map.0.clone());
                }
                spec
            })
            .collect()
    }
}

pub fn run(args: TuneArgs) -> Result<()> {
    if args.blurs.is_empty() || args.thresholds.is_empty() {
        return Err(CliError::Usage(
            "--blurs and --thresholds need at least one value".into(),
        ));
    }
    if args.methods.is_empty() {
        return Err(CliError::Usage("--method needs at least one method".into()));
    }
    if let Some(floor) = args.stable_boxes
        && !(0.0..=1.0).contains(&floor)
    {
        return Err(CliError::Usage(format!(
            "--stable-boxes is a fraction in [0, 1], got {floor}"
        )));
    }
    let (data, dataset) = args.data.open()?;
    let net = build(&args.model, &args.settings, args.methods[0])?;
    eprintln!("{}", settings_line(&net));
    let methods: Vec<MethodCandidates> = args
        .methods
        .iter()
        .map(|&m| MethodCandidates::of(m, &args, &net))
        .collect();
    let specs: Vec<Vec<MethodSpec>> = methods.iter().map(|c| c.specs(&args)).collect();
    for spec in specs.iter().flatten() {
        if let Some(config) = spec.feedback_cam {
            config
                .fusion
                .validate()
                .map_err(|e| CliError::Usage(format!("--cam-weights / --feedback-blurs: {e}")))?;
        }
    }
    let (stored, failed) = compute_maps(&net, &args, &specs, &dataset);
    // The input's size only: the tune blurs the images' maps in parallel.
    let spec = net.input_spec().clone();
    let smooth = move |map: &SaliencyMap, blur: f32| -> Result<SaliencyMap> {
        Ok(smoothed_at_image(map, blur, &spec)?)
    };
    let results = methods
        .iter()
        .enumerate()
        .map(|(m, c)| {
            Ok(TuneResult {
                method: c.method.to_string(),
                model: model_path(&args.model).display().to_string(),
                data: data.display().to_string(),
                images: stored.len(),
                failed: failed.clone(),
                settings: settings_json(&args, &net),
                tuning: tune_method(
                    &stored,
                    m,
                    &c.candidates,
                    &grid(&args, &net, c.method),
                    &smooth,
                )?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for result in &results {
        print_result(result);
    }
    match &args.json {
        Some(path) => write_json(path, &results),
        None => Ok(()),
    }
}

/// The method settings given, with the model's preprocessing and class layout (`model_info`).
fn settings_json(args: &TuneArgs, net: &FeedbackNet) -> serde_json::Value {
    let mut settings = crate::net::settings_json(&args.settings);
    if let (Some(map), Ok(info)) = (
        settings.as_object_mut(),
        serde_json::to_value(net.model_info()),
    ) {
        map.insert("model_info".into(), info);
        if let Some(floor) = args.stable_boxes {
            let noise = serde_json::json!({ "floor": floor, "grey": args.grey, "seed": args.seed });
            map.insert("stable_boxes".into(), noise);
        }
    }
    settings
}

/// The grid of the command line; the given settings are the method's own (`--blur` and
/// `--threshold`, else the tuned ones, with the tuned refinement).
fn grid(args: &TuneArgs, net: &FeedbackNet, method: Method) -> Grid {
    let own = net.box_settings(method);
    Grid {
        blurs: args.blurs.clone(),
        thresholds: args.thresholds.clone(),
        scales: args.map_scales.clone(),
        refinements: args.refine.iter().map(|&r| Refinement::from(r)).collect(),
        given_blur: own.localize.blur_sigma,
        given_threshold: own.localize.threshold,
        given_scale: own.localize.scale,
        given_refine: Refinement::of(own.refine.as_ref()),
        min_box_stability: args.stable_boxes,
    }
}

/// The results as JSON: one object for one method, a list for several.
fn write_json(path: &Path, results: &[TuneResult<Variant>]) -> Result<()> {
    match results {
        [one] => write_json_file(path, one)?,
        several => write_json_file(path, &several)?,
    }
    println!("wrote {}", path.display());
    Ok(())
}

/// The stored maps of every image (one group of `specs` per method), with a progress bar;
/// images that fail are listed and left out.
fn compute_maps(
    net: &FeedbackNet,
    args: &TuneArgs,
    specs: &[Vec<MethodSpec>],
    dataset: &Dataset,
) -> (Vec<StoredImage>, Vec<String>) {
    let samples: Vec<&Sample> = dataset
        .samples
        .iter()
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} maps [{elapsed} < {eta}, {per_sec}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let names: Vec<&str> = args.methods.iter().map(|m| m.name()).collect();
    bar.set_message(names.join(","));
    // The images' colours, where the grid or a method's own setting refines.
    let colour = args.refine.iter().any(|&r| r != RefineArg::None)
        || args
            .methods
            .iter()
            .any(|&m| net.box_settings(m).refine.is_some());
    let decode = args.data.decode.options();
    let (mut stored, mut failed) = (Vec::new(), Vec::new());
    let stored_image = |sample: &Sample| -> feedbacknet::Result<StoredImage> {
        let mut stored = stored_maps(net, sample, specs, colour, &decode)?;
        if args.stable_boxes.is_some() {
            let noise = (args.grey, args.seed);
            let perturbed = perturbed_maps(net, sample, specs, colour, &decode, noise)?;
            stored.perturbed = Some(perturbed);
        }
        Ok(stored)
    };
    for sample in samples {
        match stored_image(sample) {
            Ok(s) => {
                for warning in &s.warnings {
                    bar.suspend(|| eprintln!("warning: {}: {warning}", sample.id));
                }
                stored.push(s)
            }
            Err(e) => {
                bar.println(format!("{}: {e}", sample.id));
                failed.push(sample.id.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    (stored, failed)
}

fn print_result(r: &TuneResult<Variant>) {
    let t = &r.tuning;
    println!(
        "{} on {} ({} images, {:.0} ms per image)",
        r.method,
        file_name(&r.model),
        r.images,
        t.median_ms
    );
    let g = &t.at_given_settings;
    println!(
        "all images at {}blur {}, threshold {:.2}: GT-known {:.1} %, MaxBoxAccV2 {:.1} %, top-1 loc {:.1} %{}",
        scale_text(g.scale),
        g.blur,
        g.threshold,
        100.0 * g.reported.gt_known_loc,
        100.0 * g.reported.maxbox_acc_v2,
        100.0 * g.reported.top1_loc,
        stable_text(g.reported_box_stability),
    );
    for f in &t.folds {
        println!(
            "tuned on {:<4}: {}blur {:>4}, threshold {:.2} ({:.1} % there{}) -> {}: GT-known {:.1} %, MaxBoxAccV2 {:.1} %, top-1 loc {:.1} %{}",
            f.tuned_on,
            fold_text(f),
            f.blur,
            f.threshold,
            100.0 * f.tuned_gt_known_loc,
            stable_text(f.tuned_box_stability),
            f.reported_on,
            100.0 * f.reported.gt_known_loc,
            100.0 * f.reported.maxbox_acc_v2,
            100.0 * f.reported.top1_loc,
            stable_text(f.reported_box_stability),
        );
    }
    println!(
        "held out (mean of both folds): GT-known {:.1} %, MaxBoxAccV2 {:.1} %",
        100.0 * t.held_out_gt_known_loc,
        100.0 * t.held_out_maxbox_acc_v2
    );
    if !r.failed.is_empty() {
        println!("{} images failed and were left out", r.failed.len());
    }
}

/// `scale p99, ` (nothing for the maximum, the default).
fn scale_text(scale: MapScale) -> String {
    match scale {
        MapScale::Maximum => String::new(),
        scale => format!("scale {scale}, "),
    }
}

/// `, boxes stable 95.0 %` (nothing without a stability score).
fn stable_text(stability: Option<f64>) -> String {
    stability.map_or(String::new(), |s| {
        format!(", boxes stable {:.1} %", 100.0 * s)
    })
}

/// The chosen map setting and refinement of a fold, as printed before its blur.
fn fold_text(f: &Fold<Variant>) -> String {
    let v = &f.variant;
    let map = v
        .feedback_map
        .as_ref()
        .map_or(String::new(), |m| format!("map {m}, "));
    let fusion = v.fusion.map_or(String::new(), |f| {
        format!(
            "cam weight {}, feedback blur {}, ",
            f.cam_weight, f.feedback_blur
        )
    });
    let refine = match f.refine {
        Refinement::None => "",
        Refinement::Colour => "colour-refined, ",
        Refinement::ColourTrilinear => "colour-refined (trilinear), ",
        Refinement::GrabCut => "grabcut-refined, ",
    };
    map + &fusion + refine + &scale_text(f.scale)
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}
