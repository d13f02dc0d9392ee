//! `feedbacknet tune`: choose the blur and the box threshold on one half of a data set and
//! report the other half at those fixed settings, so that no number is tuned on its own images.
//!
//! Each image's map is computed once; every (blur, threshold) pair of the grid is then scored
//! on the stored maps exactly as `feedbacknet eval` scores them ([`localize_in_image`], then the
//! largest connected component). The halves are the images of even and of odd data set index;
//! each half is tuned in turn and the other reported (two-fold cross-validation).
//!
//! Several methods (`--method feedback,feedback-cam,gradcam`) are tuned on one pass over the
//! images: methods that share gates share one solve ([`FeedbackNet::explain`]). For
//! feedback-cam, `--cam-weights` and `--feedback-blurs` add the fusion's Grad-CAM weight and
//! feedback blur to the grid, and `--feedback-maps` the map read off the gates (feedback and
//! feedback-cam); every variant is made from the same solve.

use std::path::Path;

use feedbacknet::{
    ColourImage, DynamicImage, FeedbackNet, InputSpec, LocalizeConfig, Method, MethodSpec,
    RefineConfig, Request, SaliencyMap, load_image, localize_in_image,
};
use feedbacknet_eval::{
    Dataset, Explanation, ImageRecord, MeasureConfig, Sample, Summary, measure_box_with_image,
    score_explanation,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{
    args::{FeedbackMapArg, RefineArg, TuneArgs},
    error::{CliError, Result},
    net::{build, feedback_cam_with},
    output::{create_parent, write_atomic},
};

/// One image's stored maps (unblurred, at ground-truth size) and predictions.
struct Stored {
    sample: Sample,
    top5: Vec<usize>,
    /// Per method, one map per candidate setting ([`Candidates`]).
    maps: Vec<Vec<SaliencyMap>>,
    /// Per method: time of the prediction and the map, in ms (a solve shared by several
    /// methods counts in each).
    times_ms: Vec<f64>,
    /// The image at the maps' size, when a refinement reads it.
    image: Option<ColourImage>,
}

/// One image as one method sees it: a map per candidate.
struct Scored<'a> {
    sample: &'a Sample,
    top5: &'a [usize],
    maps: &'a [SaliencyMap],
    image: Option<&'a ColourImage>,
}

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

/// The map settings of one method: variant 0 is the command line's; the grid tries
/// `searched`.
struct Candidates {
    method: Method,
    variants: Vec<Variant>,
    searched: Vec<usize>,
}

impl Candidates {
    fn of(method: Method, args: &TuneArgs) -> Self {
        let s = &args.settings;
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
            for cam_weight in list(&args.cam_weights, s.cam_weight) {
                for feedback_blur in list(&args.feedback_blurs, s.feedback_blur) {
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
                cam_weight: s.cam_weight,
                feedback_blur: s.feedback_blur,
            }),
        };
        let mut variants = vec![given];
        let mut searched = Vec::new();
        for feedback_map in &maps {
            for fusion in &fusions {
                let v = Variant {
                    feedback_map: feedback_map.clone(),
                    fusion: *fusion,
                };
                let at = variants.iter().position(|x| *x == v).unwrap_or_else(|| {
                    variants.push(v);
                    variants.len() - 1
                });
                searched.push(at);
            }
        }
        Self {
            method,
            variants,
            searched,
        }
    }

    /// What `explain` runs for each variant.
    fn specs(&self, args: &TuneArgs) -> Vec<MethodSpec> {
        self.variants
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

/// GT-known accuracy of one grid point on one half.
#[derive(Debug, Clone, Serialize)]
struct GridPoint {
    /// The map setting (feedback methods only).
    #[serde(flatten)]
    variant: Variant,
    #[serde(skip)]
    candidate: usize,
    refine: RefineArg,
    blur: f32,
    threshold: f32,
    gt_known_loc: f64,
}

/// One fold: settings chosen on `tuned_on`, metrics of `reported_on` at those settings.
#[derive(Debug, Clone, Serialize)]
struct Fold {
    tuned_on: &'static str,
    reported_on: &'static str,
    #[serde(flatten)]
    variant: Variant,
    refine: RefineArg,
    blur: f32,
    threshold: f32,
    tuned_gt_known_loc: f64,
    reported: Summary,
}

#[derive(Debug, Serialize)]
struct TuneResult {
    method: String,
    model: String,
    data: String,
    images: usize,
    failed: Vec<String>,
    /// The method settings of the command line (the grid overrides blur and threshold).
    settings: serde_json::Value,
    /// Median time per image of the prediction and the map, in ms.
    median_ms: f64,
    /// Every image at the command line's `--blur` and `--threshold` (what `eval` reports).
    at_given_settings: Fold,
    grid: Vec<(String, Vec<GridPoint>)>,
    folds: Vec<Fold>,
    /// Mean over the two folds of the held-out GT-known accuracy.
    held_out_gt_known_loc: f64,
    /// Mean over the two folds of the held-out MaxBoxAccV2.
    held_out_maxbox_acc_v2: f64,
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
    let candidates: Vec<Candidates> = args
        .methods
        .iter()
        .map(|&m| Candidates::of(m, &args))
        .collect();
    for spec in candidates.iter().flat_map(|c| c.specs(&args)) {
        if let Some(config) = spec.feedback_cam {
            config
                .fusion
                .validate()
                .map_err(|e| CliError::Usage(format!("--cam-weights / --feedback-blurs: {e}")))?;
        }
    }
    let (data, dataset) = args.data.open()?;
    let net = build(&args.model, &args.settings, args.methods[0])?;
    let (stored, failed) = compute_maps(&net, &args, &candidates, &dataset)?;
    let results = candidates
        .iter()
        .enumerate()
        .map(|(m, c)| tune_method(&stored, m, c, &failed, &args, &net, &data))
        .collect::<Result<Vec<_>>>()?;
    for result in &results {
        print_result(result);
    }
    if let Some(path) = &args.json {
        let json = match results.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            several => serde_json::to_string_pretty(several),
        }
        .map_err(|e| CliError::Encode {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        create_parent(path)?;
        write_atomic(path, (json + "\n").as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The grid, both folds and the given settings of the `m`-th method.
fn tune_method(
    stored: &[Stored],
    m: usize,
    candidates: &Candidates,
    failed: &[String],
    args: &TuneArgs,
    net: &FeedbackNet,
    data: &Path,
) -> Result<TuneResult> {
    let scored = |parity: Option<usize>| -> Vec<Scored<'_>> {
        stored
            .iter()
            .filter(|s| parity.is_none_or(|p| s.sample.index % 2 == p))
            .map(|s| Scored {
                sample: &s.sample,
                top5: &s.top5,
                maps: &s.maps[m],
                image: s.image.as_ref(),
            })
            .collect()
    };
    let halves = [("even", 0usize), ("odd", 1usize)];
    let mut grid = Vec::new();
    let mut folds = Vec::new();
    for (i, &(name, parity)) in halves.iter().enumerate() {
        let (other_name, other_parity) = halves[1 - i];
        let points = score_grid(&scored(Some(parity)), candidates, args, net.input_spec())?;
        let best = best_point(&points);
        let reported = summarize(&scored(Some(other_parity)), &best, net)?;
        folds.push(Fold {
            tuned_on: name,
            reported_on: other_name,
            variant: best.variant.clone(),
            refine: best.refine,
            blur: best.blur,
            threshold: best.threshold,
            tuned_gt_known_loc: best.gt_known_loc,
            reported,
        });
        grid.push((name.to_string(), points));
    }
    let mean = |f: fn(&Fold) -> f64| folds.iter().map(f).sum::<f64>() / folds.len() as f64;
    let (blur, threshold) = (args.settings.blur, args.settings.threshold);
    let given = GridPoint {
        variant: candidates.variants[0].clone(),
        candidate: 0,
        refine: RefineArg::None,
        blur,
        threshold,
        gt_known_loc: f64::NAN,
    };
    let at_given_settings = Fold {
        tuned_on: "none (given settings)",
        reported_on: "all",
        variant: given.variant.clone(),
        refine: given.refine,
        blur,
        threshold,
        tuned_gt_known_loc: f64::NAN,
        reported: summarize(&scored(None), &given, net)?,
    };
    Ok(TuneResult {
        median_ms: median(stored.iter().map(|s| s.times_ms[m]).collect()),
        at_given_settings,
        method: args.methods[m].to_string(),
        model: crate::net::model_path(&args.model).display().to_string(),
        data: data.display().to_string(),
        images: stored.len(),
        failed: failed.to_vec(),
        settings: crate::eval::method_settings(&args.settings),
        held_out_gt_known_loc: mean(|f| f.reported.gt_known_loc),
        held_out_maxbox_acc_v2: mean(|f| f.reported.maxbox_acc_v2),
        grid,
        folds,
    })
}

/// The unblurred maps of the true class of every image (at ground-truth size, one per method)
/// and the top-5 predictions; images that fail are listed and left out.
fn compute_maps(
    net: &FeedbackNet,
    args: &TuneArgs,
    candidates: &[Candidates],
    dataset: &Dataset,
) -> Result<(Vec<Stored>, Vec<String>)> {
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
    let (mut stored, mut failed) = (Vec::new(), Vec::new());
    for sample in samples {
        match stored_map(net, args, candidates, sample) {
            Ok(s) => stored.push(s),
            Err(e) => {
                bar.println(format!("{}: {e}", sample.id));
                failed.push(sample.id.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((stored, failed))
}

fn stored_map(
    net: &FeedbackNet,
    args: &TuneArgs,
    candidates: &[Candidates],
    sample: &Sample,
) -> Result<Stored> {
    let image = load_image(&sample.path)?;
    let started = std::time::Instant::now();
    let top5 = net
        .predict(&image, 5)?
        .into_iter()
        .map(|p| p.class.index)
        .collect();
    let predict_ms = started.elapsed().as_secs_f64() * 1e3;
    let (w, h) = sample.size;
    let colour = args
        .refine
        .contains(&RefineArg::Colour)
        .then(|| colour_image(&image, w, h))
        .transpose()?;
    let specs = candidates.iter().flat_map(|c| c.specs(args));
    let request = Request::class(sample.class).methods(specs);
    let mut results = net.explain(&image, &request)?.into_iter();
    let (mut maps, mut times_ms) = (Vec::new(), Vec::new());
    for c in candidates {
        let mut per_candidate = Vec::with_capacity(c.variants.len());
        for result in results.by_ref().take(c.variants.len()) {
            if per_candidate.is_empty() {
                let t = &result.timings;
                times_ms.push(
                    predict_ms + t.preprocess_ms + t.solve_ms + t.saliency_ms + t.localize_ms,
                );
            }
            per_candidate.push(
                result
                    .saliency
                    .resize_bilinear(w as usize, h as usize)
                    .map_err(feedbacknet::Error::from)?,
            );
        }
        maps.push(per_candidate);
    }
    Ok(Stored {
        sample: sample.clone(),
        top5,
        maps,
        times_ms,
        image: colour,
    })
}

/// The image as RGB at `w`x`h` (the maps' size), for the colour refinement.
pub(crate) fn colour_image(image: &DynamicImage, w: u32, h: u32) -> Result<ColourImage> {
    // The maps are usually at the image's own size: no resampling then.
    let rgb = if (image.width(), image.height()) == (w, h) {
        image.to_rgb8()
    } else {
        image
            .resize_exact(w, h, image::imageops::FilterType::Triangle)
            .to_rgb8()
    };
    Ok(ColourImage::new(w as usize, h as usize, rgb.into_raw())
        .map_err(feedbacknet::Error::from)?)
}

/// The smoothed map of [`localize_in_image`] (blur `blur` network-input pixels), as
/// `feedbacknet eval` and `FeedbackNet::infer` smooth it.
fn smoothed(map: &SaliencyMap, blur: f32, spec: &InputSpec) -> Result<SaliencyMap> {
    let config = LocalizeConfig::default().with_blur_sigma(blur);
    let located = localize_in_image(map, (spec.width, spec.height), &config, None);
    Ok(located.map_err(feedbacknet::Error::from)?.smoothed)
}

/// GT-known accuracy of every (variant, refinement, blur, threshold) point on `images`.
fn score_grid(
    images: &[Scored<'_>],
    candidates: &Candidates,
    args: &TuneArgs,
    spec: &feedbacknet::InputSpec,
) -> Result<Vec<GridPoint>> {
    let mut points = Vec::new();
    for &candidate in &candidates.searched {
        for &blur in &args.blurs {
            let smoothed: Vec<SaliencyMap> = images
                .iter()
                .map(|s| smoothed(&s.maps[candidate], blur, spec))
                .collect::<Result<_>>()?;
            for &refine in &args.refine {
                points.extend(
                    score_thresholds(images, &smoothed, refine, &args.thresholds)?
                        .into_iter()
                        .map(|(threshold, gt_known_loc)| GridPoint {
                            variant: candidates.variants[candidate].clone(),
                            candidate,
                            refine,
                            blur,
                            threshold,
                            gt_known_loc,
                        }),
                );
            }
        }
    }
    Ok(points)
}

/// The measuring settings of one grid point (the maps come blurred).
fn measure_config(refine: RefineArg, threshold: f32) -> MeasureConfig {
    MeasureConfig::default()
        .with_blur_sigma(0.0)
        .with_threshold(threshold)
        .with_refine((refine == RefineArg::Colour).then(RefineConfig::default))
}

/// `(threshold, GT-known accuracy)` of the smoothed maps at each threshold.
fn score_thresholds(
    images: &[Scored<'_>],
    smoothed: &[SaliencyMap],
    refine: RefineArg,
    thresholds: &[f32],
) -> Result<Vec<(f32, f64)>> {
    let mut scores = Vec::with_capacity(thresholds.len());
    for &threshold in thresholds {
        let config = measure_config(refine, threshold);
        let mut hits = 0usize;
        for (s, map) in images.iter().zip(smoothed) {
            let (_, iou) = measure_box_with_image(map, s.image, &s.sample.boxes, &config)?;
            hits += usize::from(iou >= feedbacknet_eval::LOC_IOU_THRESHOLD);
        }
        scores.push((threshold, hits as f64 / images.len().max(1) as f64));
    }
    Ok(scores)
}

/// The best grid point (the first one on ties: the grid's order decides).
fn best_point(points: &[GridPoint]) -> GridPoint {
    let mut best = points[0].clone();
    for p in points {
        if p.gt_known_loc > best.gt_known_loc {
            best = p.clone();
        }
    }
    best
}

/// Every metric of `images` at one fixed setting (MaxBoxAccV2 sweeps the threshold itself).
fn summarize(images: &[Scored<'_>], at: &GridPoint, net: &FeedbackNet) -> Result<Summary> {
    let config = measure_config(at.refine, at.threshold);
    let records: Vec<ImageRecord> = images
        .iter()
        .map(|s| {
            let map = &s.maps[at.candidate];
            let explanation = Explanation {
                top5: s.top5.to_vec(),
                true_class_map: smoothed(map, at.blur, net.input_spec())?,
                top_maps: Vec::new(),
                image: s.image.cloned(),
            };
            Ok(score_explanation(s.sample, &explanation, &config)?)
        })
        .collect::<Result<_>>()?;
    Ok(Summary::from_records(&records, &config.sweep)?)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn print_result(r: &TuneResult) {
    println!(
        "{} on {} ({} images, {:.0} ms per image)",
        r.method,
        file_name(&r.model),
        r.images,
        r.median_ms
    );
    let g = &r.at_given_settings;
    println!(
        "all images at blur {}, threshold {:.2}: GT-known {:.1} %, MaxBoxAccV2 {:.1} %, top-1 loc {:.1} %",
        g.blur,
        g.threshold,
        100.0 * g.reported.gt_known_loc,
        100.0 * g.reported.maxbox_acc_v2,
        100.0 * g.reported.top1_loc,
    );
    for f in &r.folds {
        println!(
            "tuned on {:<4}: {}blur {:>4}, threshold {:.2} ({:.1} % there) -> {}: GT-known {:.1} %, MaxBoxAccV2 {:.1} %, top-1 loc {:.1} %",
            f.tuned_on,
            variant_text(&f.variant, f.refine),
            f.blur,
            f.threshold,
            100.0 * f.tuned_gt_known_loc,
            f.reported_on,
            100.0 * f.reported.gt_known_loc,
            100.0 * f.reported.maxbox_acc_v2,
            100.0 * f.reported.top1_loc,
        );
    }
    println!(
        "held out (mean of both folds): GT-known {:.1} %, MaxBoxAccV2 {:.1} %",
        100.0 * r.held_out_gt_known_loc,
        100.0 * r.held_out_maxbox_acc_v2
    );
    if !r.failed.is_empty() {
        println!("{} images failed and were left out", r.failed.len());
    }
}

fn variant_text(v: &Variant, refine: RefineArg) -> String {
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
    let refine = match refine {
        RefineArg::None => "",
        RefineArg::Colour => "colour-refined, ",
    };
    map + &fusion + refine
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}
