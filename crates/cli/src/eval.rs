//! `feedbacknet eval` and `feedbacknet merge`: localization metrics over a data set.
//!
//! The map scored for each image is the method's saliency at the image's resolution (the size
//! the ground-truth boxes refer to), blurred with `--blur` network-input pixels scaled to that
//! resolution, and normalized ([`smoothed_at_image`]); `feedbacknet tune` scores the same maps.
//! The explainer is the library's [`MethodExplainer`]; the metrics and the resumable results
//! file are `feedbacknet-eval`'s.

use std::{path::Path, time::Instant};

use feedbacknet::{
    BoxSettings, DecodeOptions, FeedbackNet, Method, MethodExplainer, load_image_with,
    smoothed_at_image,
};
use feedbacknet_eval::{
    Dataset, FailedImage, GalleryItem, ImageRecord, MeasureConfig, Report, ResumePolicy, Runner,
    Sample, Shard, Summary, SummaryFile, Timings, best_and_worst, config_table, encode_png, merge,
    sha256_file, summary_json,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::{
    args::{EvalArgs, MeasureArgs, MergeArgs},
    error::{CliError, Result},
    net::{box_line, box_measure, build, model_path, settings_line, with_refine},
    output::{create_parent, stem, write_atomic},
    render::overlay,
    shard::{self, AutoShard},
};

/// The measuring settings: the method's boxes ([`box_measure`]), the sweep and the pointing
/// tolerance.
fn measure_config(boxes: &BoxSettings, args: &MeasureArgs) -> Result<MeasureConfig> {
    Ok(box_measure(boxes)
        .with_sweep(sweep(args.sweep)?)
        .with_pointing_tolerance_px(args.pointing_tolerance))
}

/// The thresholds `0, step, 2·step, …` below 1 (none for a step of 0).
fn sweep(step: f32) -> Result<Vec<f32>> {
    if step == 0.0 {
        return Ok(Vec::new());
    }
    if !(step.is_finite() && step > 0.0 && step <= 0.5) {
        return Err(CliError::Usage(format!(
            "--sweep {step}: the step must lie in (0, 0.5], or be 0"
        )));
    }
    let n = (1.0 / step).round() as usize;
    Ok((0..n).map(|i| i as f32 / n as f32).collect())
}

pub fn run(args: EvalArgs) -> Result<()> {
    let started = Instant::now();
    let (data, dataset) = args.data.open()?;
    let model = model_path(&args.model);
    let net = with_refine(
        build(&args.model, &args.settings, args.method)?,
        args.measure.refine,
    );
    eprintln!("{}", settings_line(&net));
    eprintln!("boxes: {}", box_line(&net, args.method));
    if args.top_k > 0 {
        net.check_top_k(args.top_k)?;
    }
    let boxes = net.box_settings(args.method);
    let measure = measure_config(&boxes, &args.measure)?;
    let shard = shard(&args)?;
    let runner = runner(&args, measure.clone(), shard.as_ref().map(|(s, _)| *s))?;
    create_parent(&args.results)?;
    let explainer = MethodExplainer {
        net: &net,
        method: args.method,
        blur: boxes.localize.blur_sigma,
        refine: measure.refine.is_some(),
    };
    let bar = progress_bar(&args);
    let outcome = runner.run(&dataset, &explainer, |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        if let Some(error) = &p.last.error {
            bar.println(format!("{}: {error}", p.last.id));
        }
        // On stderr even when it is not a terminal (a hidden bar prints no line).
        for warning in &p.last.warnings {
            bar.suspend(|| eprintln!("warning: {}: {warning}", p.last.id));
        }
    })?;
    bar.finish_and_clear();
    let wall_s = started.elapsed().as_secs_f64();
    println!(
        "{} images evaluated ({} failed), {} skipped as done, in {wall_s:.1} s",
        outcome.evaluated, outcome.failed, outcome.skipped
    );
    print_summary(&outcome.summary, measure.sweep.is_empty());
    if outcome.dropped_partial_line {
        eprintln!(
            "{}: removed its last line, cut short by an interrupted run; that image was evaluated again",
            args.results.display()
        );
    }
    print_failures(&outcome.summary, |f| image_path(&dataset, f));
    let records = merge(&[&args.results])?;
    let config = run_config(&args, &data, &model, &net, shard.as_ref());
    if let Some(path) = &args.json {
        let contents = SummaryFile {
            summary: outcome.summary.clone(),
            config: config.clone(),
            model_sha256: sha256_file(&model)?,
            timings: Timings::from_records(&records).with_wall_s(wall_s),
        };
        write_summary(path, &contents)?;
    }
    if let Some(path) = &args.report {
        let gallery = Gallery {
            net: &net,
            method: args.method,
            blur: boxes.localize.blur_sigma,
            dataset: &dataset,
            decode: args.data.decode.options(),
        };
        let title = format!("feedbacknet eval: {} on {}", args.method, stem(&model));
        let page = gallery.report(&title, &config, &outcome.summary, &records, args.gallery)?;
        write_atomic(path, page.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

pub fn run_merge(args: MergeArgs) -> Result<()> {
    let records = merge(&args.inputs)?;
    let sweep = sweep(args.sweep)?;
    let summary = Summary::from_records(&records, &sweep)?;
    println!("{} records from {} files", records.len(), args.inputs.len());
    print_summary(&summary, sweep.is_empty());
    print_failures(&summary, |f| f.id.clone());
    if let Some(out) = &args.out {
        let mut lines = String::new();
        for record in &records {
            let line = serde_json::to_string(record).map_err(|e| CliError::Encode {
                path: out.clone(),
                reason: e.to_string(),
            })?;
            lines.push_str(&line);
            lines.push('\n');
        }
        create_parent(out)?;
        write_atomic(out, lines.as_bytes())?;
        println!("wrote {}", out.display());
    }
    if let Some(path) = &args.json {
        let model_sha256 = match &args.model {
            Some(model) => sha256_file(model)?,
            None => String::new(),
        };
        let inputs: Vec<String> = args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let contents = SummaryFile {
            summary,
            config: json!({ "merged": inputs, "sweep_step": args.sweep }),
            model_sha256,
            timings: Timings::from_records(&records),
        };
        write_summary(path, &contents)?;
    }
    Ok(())
}

/// The shard of `--shard`: `I/N`, or `auto` from the scheduler's environment (printed, and
/// returned with what the run's configuration records of it).
fn shard(args: &EvalArgs) -> Result<Option<(Shard, Option<AutoShard>)>> {
    match args.shard.as_deref().map(str::trim) {
        None => Ok(None),
        Some("auto") => {
            let auto = shard::from_env(|name| std::env::var(name).ok())?;
            eprintln!("--shard auto: {auto}");
            Ok(Some((auto.shard, Some(auto))))
        }
        Some(spec) => Ok(Some((Shard::parse(spec)?, None))),
    }
}

fn runner(args: &EvalArgs, measure: MeasureConfig, shard: Option<Shard>) -> Result<Runner> {
    let policy = if args.resume {
        ResumePolicy::Resume
    } else if args.overwrite {
        ResumePolicy::Overwrite
    } else {
        ResumePolicy::Fresh
    };
    let mut runner = Runner::new(&args.results)
        .measure(measure)
        .decode_threads(args.decode_threads)
        .workers(workers(args.workers))
        .batch(args.batch)
        .resume_policy(policy)
        .top_maps(args.top_k)
        .decode_options(args.data.decode.options());
    if let Some(shard) = shard {
        runner = runner.shard(shard);
    }
    if let Some(limit) = args.limit {
        runner = runner.limit(limit);
    }
    Ok(runner)
}

/// The number of workers: as given, or one per CPU core for 0.
fn workers(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn progress_bar(args: &EvalArgs) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} images [{elapsed} < {eta}, {per_sec}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(args.method.to_string());
    bar
}

/// The run's configuration, as recorded in the summary and the report.
fn run_config(
    args: &EvalArgs,
    data: &Path,
    model: &Path,
    net: &FeedbackNet,
    shard: Option<&(Shard, Option<AutoShard>)>,
) -> serde_json::Value {
    let mut config = json!({
        "model": model.display().to_string(),
        "model_info": net.model_info(),
        "data": data.display().to_string(),
        "method": args.method.name(),
        "sweep_step": args.measure.sweep,
        "pointing_tolerance_px": args.measure.pointing_tolerance,
        "refine": args.measure.refine,
        "box_settings": net.box_settings(args.method),
        "top_k": args.top_k,
        "workers": workers(args.workers),
        "batch": args.batch,
        "shard": shard.map(|(s, _)| s.to_string()),
        "shard_auto": shard.and_then(|(_, auto)| auto.as_ref().map(AutoShard::to_json)),
        "backend": format!("{:?}", args.model.backend),
        "accept_damaged_images": args.data.decode.accept_damaged_images,
    });
    if let (Some(config), serde_json::Value::Object(settings)) = (
        config.as_object_mut(),
        crate::net::settings_json(&args.settings),
    ) {
        config.extend(settings);
    }
    config
}

/// Prints the metrics as a small table.
fn print_summary(s: &Summary, no_sweep: bool) {
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    println!("images                 {}", s.images);
    println!(
        "top-1 / top-5 cls      {} / {}",
        pct(s.top1_cls),
        pct(s.top5_cls)
    );
    println!("top-1 loc              {}", pct(s.top1_loc));
    println!("top-5 loc error        {}", pct(s.top5_loc_error));
    println!("GT-known loc           {}", pct(s.gt_known_loc));
    if !no_sweep {
        let at: Vec<String> = s
            .maxbox
            .iter()
            .map(|m| format!("{:.0}: {}", 100.0 * m.iou_threshold, pct(m.accuracy)))
            .collect();
        println!(
            "MaxBoxAccV2            {} ({})",
            pct(s.maxbox_acc_v2),
            at.join(", ")
        );
    }
    println!("mean IoU               {:.3}", s.mean_iou);
    println!("pointing game          {}", pct(s.pointing_game));
}

/// Lists the failed images on stderr: the first ones the summary keeps, each named by `name`
/// with its error, then how many more there are.
fn print_failures(s: &Summary, name: impl Fn(&FailedImage) -> String) {
    if s.failed == 0 {
        return;
    }
    eprintln!(
        "{} of {} images failed (each counted as wrong):",
        s.failed, s.images
    );
    for f in &s.failures {
        eprintln!("  {}: {}", name(f), f.error);
    }
    let more = s.failed.saturating_sub(s.failures.len());
    if more > 0 {
        eprintln!("  ... and {more} more (the records with an \"error\" in the results)");
    }
}

/// The file of a failed image, or its id if the data set does not have its index.
fn image_path(dataset: &Dataset, failed: &FailedImage) -> String {
    dataset
        .samples
        .iter()
        .find(|s| s.index == failed.index)
        .map_or_else(|| failed.id.clone(), |s| s.path.display().to_string())
}

fn write_summary(path: &Path, contents: &SummaryFile) -> Result<()> {
    create_parent(path)?;
    summary_json(path, contents)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Renders the report's gallery: each image explained again, its map and boxes drawn.
struct Gallery<'a> {
    net: &'a FeedbackNet,
    method: Method,
    blur: f32,
    dataset: &'a Dataset,
    decode: DecodeOptions,
}

impl Gallery<'_> {
    /// The HTML report page: metrics, configuration, and the `n` best and worst images.
    fn report(
        &self,
        title: &str,
        config: &serde_json::Value,
        summary: &Summary,
        records: &[ImageRecord],
        n: usize,
    ) -> Result<String> {
        let (best, worst) = best_and_worst(records, n);
        let (best, worst) = (self.items(&best)?, self.items(&worst)?);
        let table = config_table(config);
        let report = Report {
            title,
            config: &table,
            summary,
            best: &best,
            worst: &worst,
        };
        Ok(report.to_html())
    }

    /// Gallery items of the records whose image is in the data set.
    fn items(&self, records: &[&ImageRecord]) -> Result<Vec<GalleryItem>> {
        records
            .iter()
            .filter_map(|r| Some((r, self.dataset.samples.get(r.index)?)))
            .map(|(r, sample)| self.item(r, sample))
            .collect()
    }

    fn item(&self, record: &ImageRecord, sample: &Sample) -> Result<GalleryItem> {
        let image = load_image_with(&sample.path, &self.decode)?.image;
        let result = self
            .net
            .with_method(self.method)
            .infer(&image, record.class)?;
        let photo = image
            .resize_exact(
                sample.size.0,
                sample.size.1,
                image::imageops::FilterType::Triangle,
            )
            .to_rgb8();
        let map = smoothed_at_image(&result.saliency, self.blur, self.net.input_spec())?
            .resize_bilinear(sample.size.0 as usize, sample.size.1 as usize)
            .map_err(feedbacknet::Error::from)?;
        let mut picture = overlay(&photo, &map, record.gt_known_box.as_slice(), 0.5);
        for gt in &sample.boxes {
            crate::render::draw_rect(&mut picture, gt, GT_BOX_COLOR, 2);
        }
        Ok(GalleryItem {
            id: record.id.clone(),
            class: record.class,
            label: self
                .net
                .labels()
                .get(record.class)
                .map(|l| l.name().to_string()),
            iou: record.gt_known_iou,
            png: encode_png(&picture)?,
        })
    }
}

/// Outline colour of the ground-truth boxes in the report's gallery: white.
const GT_BOX_COLOR: [u8; 3] = [255, 255, 255];
