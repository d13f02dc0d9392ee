//! `feedbacknet stability`: how far each method's map and box move when the input is perturbed
//! far below what changes the class (`feedbacknet_eval::stability`).
//!
//! Grey-level noise goes through the whole pipeline (`FeedbackNet::explain` on the 8-bit image
//! with noise): maps at image size and the first box. Input noise (normalized units) is added
//! to the prepared network input, so it can be far below one grey level; the maps then come
//! straight from the solver at the network's input size (feedback, gradient and Grad-CAM).
//! With `--against BACKEND` each image is also explained, unperturbed, on that backend, through
//! the whole pipeline like grey-level noise: do the CPU and a GPU give the same maps and boxes?

use std::path::Path;

use feedbacknet::{
    Backend, BoundingBox, BoxSettings, CamLayer, ClassQuery, Device, DynamicImage, FeedbackNet,
    Method, Objective, Request, SaliencyMap, SolverConfig, Tensor, TensorData, localize_in_image,
};
use feedbacknet_eval::{
    Sample,
    stability::{
        NoiseSource, Perturbation, StabilityRecord, StabilityRow, add_grey_noise, add_input_noise,
        correlation, markdown_table, summarize,
    },
};
use feedbacknet_solver::{grad_cam, input_gradient, saliency_maps, soft_feedback};
use serde::Serialize;

use crate::{
    args::StabilityArgs,
    error::{CliError, Result},
    net::{build, model_path, solver_config, with_refine},
    output::write_json_file,
};

/// What `--json` writes.
#[derive(Debug, Serialize)]
struct StabilityReport {
    model: String,
    backend: Backend,
    /// The backend of the `other-backend` records (`--against`).
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<Backend>,
    images: usize,
    /// Each method's box settings (of the boxes compared where no `--boxes` is given).
    box_settings: Vec<MethodBoxSettings>,
    rows: Vec<StabilityRow>,
    records: Vec<StabilityRecord>,
    separation: Vec<Separation>,
}

/// The box settings a method's boxes were drawn with.
#[derive(Debug, Serialize)]
struct MethodBoxSettings {
    /// The method's name on the command line.
    method: String,
    settings: BoxSettings,
}

/// Class separation on one photo: the correlation of two classes' maps.
#[derive(Debug, Serialize)]
struct Separation {
    image: String,
    method: String,
    classes: Vec<String>,
    correlation: f64,
}

pub fn run(mut args: StabilityArgs) -> Result<()> {
    if args.methods.is_empty() {
        return Err(CliError::Usage("--method needs at least one method".into()));
    }
    let (_, dataset) = args.data.open()?;
    let samples = spread(&dataset.samples, args.count);
    let objectives = match args.objectives.is_empty() {
        true => vec![args.settings.objective.unwrap_or_default()],
        false => args.objectives.clone(),
    };
    let boxes = args.boxes.clone();
    let mut records = Vec::new();
    let mut separation = Vec::new();
    let mut box_settings = Vec::new();
    for (k, &objective) in objectives.iter().enumerate() {
        args.settings.objective = Some(objective);
        let net = with_refine(
            build(&args.model, &args.settings, Method::Feedback)?,
            args.refine,
        );
        let other = other_net(&mut args, Method::Feedback)?;
        let solver = solver_config(&args.settings);
        if k == 0 {
            box_settings = (args.methods.iter())
                .map(|&method| MethodBoxSettings {
                    method: method.to_string(),
                    settings: net.box_settings(method),
                })
                .collect();
        }
        let device = args.model.backend.device()?;
        // Methods without the solver are measured once, with the first objective.
        let methods: Vec<Method> = args
            .methods
            .iter()
            .copied()
            .filter(|&m| k == 0 || uses_solver(m))
            .collect();
        if let Some(path) = &args.pair_image {
            separation.extend(separate(&net, path, &args.pair_class, &methods, objective)?);
        }
        for (i, sample) in samples.iter().enumerate() {
            eprintln!("[{}/{}] {} ({objective})", i + 1, samples.len(), sample.id);
            let image = feedbacknet::load_image(&sample.path)?;
            for &method in &methods {
                let name = method_name(method, objective);
                let context = Context {
                    net: &net,
                    other: other.as_ref(),
                    device: &device,
                    solver: &solver,
                    sample,
                    image: &image,
                    method,
                    name: &name,
                };
                records.extend(context.pipeline(&args.grey, &boxes, args.seed)?);
                records.extend(context.input(&args.input_noise, args.seed)?);
            }
        }
    }
    let rows = summarize(&records);
    if !rows.is_empty() {
        println!("{}", markdown_table(&rows));
    }
    if !separation.is_empty() {
        println!("| image | method | classes | correlation of the two maps |\n|---|---|---|---|");
        for s in &separation {
            let classes = s.classes.join(" / ");
            println!(
                "| {} | {} | {classes} | {:.3} |",
                s.image, s.method, s.correlation
            );
        }
    }
    match &args.json {
        Some(path) => write_report(
            path,
            &StabilityReport {
                model: model_path(&args.model).display().to_string(),
                backend: args.model.backend,
                against: args.against,
                images: samples.len(),
                box_settings,
                rows,
                records,
                separation,
            },
        ),
        None => Ok(()),
    }
}

/// The net of `--against`: the same model and settings on that backend.
fn other_net(args: &mut StabilityArgs, method: Method) -> Result<Option<FeedbackNet>> {
    let Some(other) = args.against else {
        return Ok(None);
    };
    let own = std::mem::replace(&mut args.model.backend, other);
    let net = build(&args.model, &args.settings, method);
    args.model.backend = own;
    Ok(Some(with_refine(net?, args.refine)))
}

/// Per method, the correlation of the maps of the two `classes` on the photo at `path`.
fn separate(
    net: &FeedbackNet,
    path: &Path,
    classes: &[ClassQuery],
    methods: &[Method],
    objective: Objective,
) -> Result<Vec<Separation>> {
    if classes.len() != 2 {
        return Err(CliError::Usage("--pair-class must be given twice".into()));
    }
    let image = feedbacknet::load_image(path)?;
    let request = Request::classes(classes.iter().cloned()).methods(methods.iter().copied());
    let results = net.explain(&image, &request)?;
    let mut out = Vec::new();
    for (m, &method) in methods.iter().enumerate() {
        let maps = results.method(m);
        if let [a, b] = maps {
            out.push(Separation {
                image: path.display().to_string(),
                method: method_name(method, objective),
                classes: vec![a.class.label.clone(), b.class.label.clone()],
                correlation: correlation(a.saliency.data(), b.saliency.data()).unwrap_or(1.0),
            });
        }
    }
    Ok(out)
}

/// `n` samples spread evenly over the data set (every sample when `n` is at least its size).
fn spread(samples: &[Sample], n: usize) -> Vec<&Sample> {
    let step = (samples.len() / n.max(1)).max(1);
    samples.iter().step_by(step).take(n).collect()
}

fn uses_solver(method: Method) -> bool {
    matches!(method, Method::Feedback | Method::FeedbackCam)
}

fn method_name(method: Method, objective: Objective) -> String {
    match uses_solver(method) {
        true => format!("{method} ({objective})"),
        false => method.to_string(),
    }
}

/// A map the pipeline made, and the box it drew on it.
struct Explained {
    map: SaliencyMap,
    best: Option<BoundingBox>,
}

/// One image and method of the run.
struct Context<'a> {
    net: &'a FeedbackNet,
    /// The same net on the `--against` backend.
    other: Option<&'a FeedbackNet>,
    device: &'a Device,
    solver: &'a SolverConfig,
    sample: &'a Sample,
    image: &'a DynamicImage,
    method: Method,
    name: &'a str,
}

impl Context<'_> {
    fn record(&self, perturbation: Perturbation, a: &[f32], b: &[f32]) -> StabilityRecord {
        StabilityRecord {
            image: self.sample.id.clone(),
            method: self.name.to_string(),
            perturbation,
            // A constant map (all zero) on both sides has not moved.
            correlation: correlation(a, b).unwrap_or(if a == b { 1.0 } else { 0.0 }),
            box_iou: None,
        }
    }

    /// Records of the whole pipeline (maps at image size and their boxes) against the
    /// clean image's on `--backend`: per grey-level amplitude and box setting (blur,
    /// threshold; none given: the boxes the pipeline drew), the noisy image's; with `--against`, the
    /// other backend's on the clean image (with several box settings the method's name says
    /// the setting).
    fn pipeline(
        &self,
        levels: &[u8],
        given: &[(f32, f32)],
        seed: u64,
    ) -> Result<Vec<StabilityRecord>> {
        if levels.is_empty() && self.other.is_none() {
            return Ok(Vec::new());
        }
        let clean = self.explain(self.net, self.image)?;
        let mut out = Vec::new();
        for &level in levels {
            let mut rgb = self.image.to_rgb8();
            let mut noise = NoiseSource::for_image(seed, self.sample.index);
            add_grey_noise(&mut rgb, level, &mut noise);
            let noisy = self.explain(self.net, &DynamicImage::ImageRgb8(rgb))?;
            let perturbation = Perturbation::Grey { levels: level };
            out.extend(self.compare(perturbation, &clean, &noisy, given)?);
        }
        if let Some(other) = self.other {
            let theirs = self.explain(other, self.image)?;
            out.extend(self.compare(Perturbation::OtherBackend, &clean, &theirs, given)?);
        }
        Ok(out)
    }

    /// The pipeline's map of the sample's class by `net`, at image size, and the box it
    /// drew at the method's own settings (its refinement included).
    fn explain(&self, net: &FeedbackNet, image: &DynamicImage) -> Result<Explained> {
        let request = Request::class(self.sample.class).method(self.method);
        let results = net.explain(image, &request)?;
        results
            .iter()
            .next()
            .map(|r| Explained {
                map: r.saliency.clone(),
                best: r.best_box().copied(),
            })
            .ok_or_else(|| CliError::Usage("the pipeline returned no result".into()))
    }

    /// One record of `a` against `b`: their maps' correlation and the IoU of their boxes:
    /// with no box setting given, the boxes the pipeline drew at the method's own settings;
    /// else one record per given (blur, threshold), the first box of each map at it without
    /// refinement (the method's name then says the setting).
    fn compare(
        &self,
        perturbation: Perturbation,
        a: &Explained,
        b: &Explained,
        given: &[(f32, f32)],
    ) -> Result<Vec<StabilityRecord>> {
        let iou = |a: Option<BoundingBox>, b: Option<BoundingBox>| match (a, b) {
            (Some(a), Some(b)) => Some(f64::from(a.iou(&b))),
            _ => None,
        };
        // The maps' correlation does not depend on the box setting: computed once.
        let record = self.record(perturbation, a.map.data(), b.map.data());
        if given.is_empty() {
            let box_iou = iou(a.best, b.best);
            return Ok(vec![StabilityRecord { box_iou, ..record }]);
        }
        let mut out = Vec::with_capacity(given.len());
        for &setting in given {
            let mut record = record.clone();
            if given.len() > 1 {
                record.method = format!("{} @ {}:{}", self.name, setting.0, setting.1);
            }
            let (box_a, box_b) = (
                self.first_box(&a.map, setting)?,
                self.first_box(&b.map, setting)?,
            );
            record.box_iou = iou(box_a, box_b);
            out.push(record);
        }
        Ok(out)
    }

    /// The first box of `map` at a blur and threshold (no refinement).
    fn first_box(
        &self,
        map: &SaliencyMap,
        (blur, threshold): (f32, f32),
    ) -> Result<Option<BoundingBox>> {
        let spec = self.net.input_spec();
        let own = self.net.box_settings(self.method).localize;
        let config = own.with_blur_sigma(blur).with_threshold(threshold);
        let found = localize_in_image(map, (spec.width, spec.height), &config, None)
            .map_err(|e| CliError::Feedbacknet(e.into()))?;
        Ok(found.best)
    }

    /// One record per input-noise amplitude: the solver's map at the network input, clean and
    /// noisy (feedback, gradient and Grad-CAM only).
    fn input(&self, amplitudes: &[f32], seed: u64) -> Result<Vec<StabilityRecord>> {
        if amplitudes.is_empty() || !has_input_map(self.method) {
            return Ok(Vec::new());
        }
        let (values, dims) = network_input(self.net, self.image)?;
        let clean = self.input_map(values.clone(), dims)?;
        let mut out = Vec::with_capacity(amplitudes.len());
        for &amplitude in amplitudes {
            let mut noisy = values.clone();
            let mut noise = NoiseSource::new(seed ^ (self.sample.index as u64).rotate_left(29));
            add_input_noise(&mut noisy, amplitude, &mut noise);
            let map = self.input_map(noisy, dims)?;
            out.push(self.record(Perturbation::Input { amplitude }, &clean, &map));
        }
        Ok(out)
    }

    fn input_map(&self, values: Vec<f32>, dims: [usize; 4]) -> Result<Vec<f32>> {
        let input = Tensor::<4>::from_data(TensorData::new(values, dims), self.device);
        let net = self.net.network().as_ref();
        let targets = [self.sample.class + self.net.class_offset()];
        let solver = |e| CliError::Feedbacknet(feedbacknet::Error::from(e));
        let maps = match self.method {
            Method::Feedback => {
                let solution = soft_feedback(net, &input, &targets, self.solver).map_err(solver)?;
                let grad =
                    input_gradient(net, &input, &targets, Some(&solution.gates)).map_err(solver)?;
                saliency_maps(&grad.gradient).map_err(solver)?
            }
            Method::GradCam => {
                grad_cam(net, &input, &targets, None, &CamLayer::default())
                    .map_err(solver)?
                    .maps
            }
            _ => {
                let grad = input_gradient(net, &input, &targets, None).map_err(solver)?;
                saliency_maps(&grad.gradient).map_err(solver)?
            }
        };
        maps.first()
            .map(|m| m.data().to_vec())
            .ok_or_else(|| CliError::Usage("the solver returned no map".into()))
    }
}

fn has_input_map(method: Method) -> bool {
    matches!(
        method,
        Method::Feedback | Method::Gradient | Method::GradCam
    )
}

/// The net's own input for `image` (its resize and normalization), as values and their
/// `[1, C, H, W]` shape.
fn network_input(net: &FeedbackNet, image: &DynamicImage) -> Result<(Vec<f32>, [usize; 4])> {
    let input = net.network_input(image)?;
    let dims = input.dims();
    let values = input.into_data().try_into_vec_as::<f32>().map_err(|e| {
        let readback = feedbacknet::CoreError::Readback(format!("{e:?}"));
        CliError::Feedbacknet(readback.into())
    })?;
    Ok((values, dims))
}

fn write_report(path: &Path, report: &StabilityReport) -> Result<()> {
    write_json_file(path, report)?;
    println!("wrote {}", path.display());
    Ok(())
}
