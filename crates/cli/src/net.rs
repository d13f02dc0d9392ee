//! From command-line settings to a loaded [`FeedbackNet`].

use std::path::PathBuf;

use feedbacknet::{
    Binning, BoxSettings, CamLayer, CamThrough, ColourModel, Crops, FeedbackCamConfig, FeedbackNet,
    FeedbackNetBuilder, FusionRule, GateGranularity, GatePlacement, HardConfig, MapScale, Method,
    ModelPreset, Objective, Resize, Schedule, SolverConfig,
};

use feedbacknet_eval::MeasureConfig;

use crate::{
    args::{
        CamThroughArg, CropsArg, FusionArg, GateSitesArg, GatesArg, MethodArgs, ModelArgs,
        PreprocessArgs, RefineArg, ResizeArg, ScheduleArg,
    },
    error::Result,
    paths::resolve_dir,
};

/// The model file: an existing path, a preset name in the models folder, or the default.
pub fn model_path(args: &ModelArgs) -> PathBuf {
    let dir = resolve_dir(&args.models.models_dir);
    match &args.model {
        None => dir.join(ModelPreset::default_model().file),
        Some(m) if PathBuf::from(m).is_file() => PathBuf::from(m),
        Some(m) => match ModelPreset::find(m) {
            Some(preset) => dir.join(preset.file),
            None => PathBuf::from(m),
        },
    }
}

/// Loads the model with the method settings of the command line.
pub fn build(model: &ModelArgs, settings: &MethodArgs, method: Method) -> Result<FeedbackNet> {
    let solver = solver_config(settings);
    let hard = HardConfig::default()
        .with_ratio(settings.hard_ratio)
        .with_max_sweeps(settings.sweeps)
        .with_granularity(granularity(settings.gates));
    let cam_layer = settings
        .cam_layer
        .clone()
        .map(CamLayer::Named)
        .unwrap_or_default();
    let builder = FeedbackNet::builder()
        .feedback_map(settings.feedback_map.0.clone())
        .model_path(model_path(model))
        .gate_placement(gate_placement(model.gate_sites))
        .device(model.backend.device()?)
        .method(method)
        .solver(solver)
        .hard_solver(hard)
        .cam_layer(cam_layer)
        .box_priority(settings.box_priority)
        .max_batch(settings.max_batch);
    let net = box_flags(preprocess(builder, &model.preprocess).build()?, settings)?;
    Ok(match settings.crops {
        CropsArg::Single => net,
        CropsArg::Ten => net.with_crops(Crops::ten_for(net.input_spec())),
    })
}

/// The net with the box flags given (`--blur`, `--threshold`, `--map-scale`, the fusion's) in
/// place of those
/// of each method's tuned settings ([`FeedbackNet::box_settings`]).
fn box_flags(mut net: FeedbackNet, settings: &MethodArgs) -> Result<FeedbackNet> {
    for method in Method::ALL {
        let mut boxes = net.box_settings(method);
        if let Some(threshold) = settings.threshold {
            boxes.localize = boxes.localize.with_threshold(threshold);
        }
        if let Some(blur) = settings.blur {
            boxes.localize = boxes.localize.with_blur_sigma(blur);
        }
        if let Some(scale) = settings.map_scale {
            boxes.localize = boxes.localize.with_scale(scale);
        }
        let fusion = boxes.feedback_cam.fusion;
        boxes.feedback_cam = feedback_cam_with(
            settings,
            settings.cam_weight.unwrap_or(fusion.rule.cam_weight()),
            settings.feedback_blur.unwrap_or(fusion.fine_blur_sigma),
        );
        net = net.with_box_settings(method, boxes)?;
    }
    Ok(net)
}

/// The net with `--refine` in place of every method's tuned refinement, where it was given.
pub fn with_refine(net: FeedbackNet, refine: Option<RefineArg>) -> FeedbackNet {
    match refine {
        Some(refine) => net.with_refine(refine.config()),
        None => net,
    }
}

/// The measuring settings of a method's boxes: its threshold, map scale and refinement, no
/// further blur (the explainer's maps come blurred).
pub fn box_measure(boxes: &BoxSettings) -> MeasureConfig {
    MeasureConfig::default()
        .with_threshold(boxes.localize.threshold)
        .with_scale(boxes.localize.scale)
        .with_blur_sigma(0.0)
        .with_refine(boxes.refine)
}

/// What a method's boxes are made with, for the lines the commands print.
pub fn box_line(net: &FeedbackNet, method: Method) -> String {
    describe_boxes(method, &net.box_settings(method))
}

/// `feedback-cam: blur 4, threshold 0.35, cam weight 0.5, feedback blur 10, colour refinement`.
pub fn describe_boxes(method: Method, b: &BoxSettings) -> String {
    let refine = match b.refine.map(|r| (r.model, r.binning)) {
        Some((ColourModel::Histogram, Binning::Nearest)) => ", colour refinement",
        Some((ColourModel::Histogram, Binning::Trilinear)) => {
            ", colour refinement (trilinear histograms)"
        }
        Some((ColourModel::GrabCut, _)) => ", grabcut refinement",
        None => "",
    };
    let fusion = match method {
        Method::FeedbackCam => format!(
            ", cam weight {}, feedback blur {}",
            b.feedback_cam.fusion.rule.cam_weight(),
            b.feedback_cam.fusion.fine_blur_sigma
        ),
        _ => String::new(),
    };
    let scale = match b.localize.scale {
        MapScale::Maximum => String::new(),
        scale => format!(" of the {scale} scale"),
    };
    format!(
        "{method}: blur {}, threshold {}{scale}{fusion}{refine}",
        b.localize.blur_sigma, b.localize.threshold
    )
}

/// The soft solver's settings of the command line: the library's defaults, or the paper's
/// formulation for `--objective logit` (its λ 0.01 unless `--lambda` is given).
pub fn solver_config(settings: &MethodArgs) -> SolverConfig {
    let objective = settings.objective.unwrap_or_default();
    let base = match objective {
        Objective::Logit => SolverConfig::paper(),
        _ => SolverConfig::default(),
    };
    let lambda = settings.lambda.unwrap_or(base.lambda);
    let learning_rate = settings.learning_rate.unwrap_or(base.learning_rate);
    let momentum = settings.momentum.unwrap_or(base.momentum);
    let kinks = settings.kinks.unwrap_or(base.kinks);
    base.with_iterations(settings.iterations)
        .with_kinks(kinks)
        .with_lambda(lambda)
        .with_learning_rate(learning_rate)
        .with_momentum(momentum)
        .with_objective(objective)
        .with_granularity(granularity(settings.gates))
        .with_schedule(match settings.schedule {
            ScheduleArg::AllAtOnce => Schedule::AllAtOnce,
            ScheduleArg::TopFirst => Schedule::TopFirst {
                sites: settings.top_sites,
                iterations: settings.top_iterations,
            },
        })
}

/// Every method and box setting of the command line, as recorded in `eval` and `tune` JSON.
pub fn settings_json(settings: &MethodArgs) -> serde_json::Value {
    let solver = solver_config(settings);
    serde_json::json!({
        "box_priority": settings.box_priority,
        "threshold": settings.threshold,
        "blur_sigma_input_px": settings.blur,
        "map_scale": settings.map_scale,
        "iterations": settings.iterations,
        "lambda": solver.lambda,
        "learning_rate": solver.learning_rate,
        "momentum": solver.momentum,
        "kinks": solver.kinks.to_string(),
        "objective": format!("{:?}", settings.objective.unwrap_or_default()),
        "gates": format!("{:?}", settings.gates),
        "schedule": format!("{:?}", settings.schedule),
        "top_sites": settings.top_sites,
        "top_iterations": settings.top_iterations,
        "hard_ratio": settings.hard_ratio,
        "sweeps": settings.sweeps,
        "crops": format!("{:?}", settings.crops),
        "cam_layer": settings.cam_layer,
        "max_batch": settings.max_batch,
        "fusion": format!("{:?}", settings.fusion),
        "cam_weight": settings.cam_weight,
        "feedback_blur": settings.feedback_blur,
        "cam_through": format!("{:?}", settings.cam_through),
        "feedback_map": settings.feedback_map.to_string(),
    })
}

/// Several classes of one image are explained with the most class-discriminative setting
/// ([`SolverConfig::discriminative`]: log-softmax, λ 0.01) unless `--objective` or `--lambda`
/// was given: sets it and returns the note that says so.
pub fn objective_for_classes(settings: &mut MethodArgs, classes: usize) -> Option<String> {
    if settings.objective.is_some() || settings.lambda.is_some() || classes < 2 {
        return None;
    }
    let discriminative = SolverConfig::discriminative();
    settings.objective = Some(discriminative.objective);
    settings.lambda = Some(discriminative.lambda);
    Some(format!(
        "note: {classes} classes of one image: soft feedback uses the log-softmax with lambda {} \
         (the most class-specific maps measured; --lambda 0.001 for the single-class default)",
        discriminative.lambda
    ))
}

/// The preprocessing flags given, on the builder (the others stay the metadata's, the preset's
/// or the defaults).
fn preprocess(mut builder: FeedbackNetBuilder, args: &PreprocessArgs) -> FeedbackNetBuilder {
    if let Some(size) = args.input_size {
        builder = builder.input_size(size);
    }
    if let Some(normalization) = args.normalize {
        builder = builder.normalization(normalization);
    }
    if let Some(resize) = args.resize {
        builder = builder.resize(match resize {
            ResizeArg::Stretch => Resize::Stretch,
            ResizeArg::Crop => Resize::Crop,
        });
    }
    if let Some(offset) = args.class_offset {
        builder = builder.class_offset(offset);
    }
    if let Some(labels) = &args.labels {
        builder = builder.labels_file(labels);
    }
    builder
}

/// The line every command prints once the model is loaded: what preprocessing and class layout
/// it uses, and where each came from.
pub fn settings_line(net: &FeedbackNet) -> String {
    net.model_info().to_string()
}

fn gate_placement(sites: GateSitesArg) -> GatePlacement {
    match sites {
        GateSitesArg::Activations => GatePlacement::Activations,
        GateSitesArg::AttentionHeads => GatePlacement::AttentionHeads,
    }
}

fn granularity(gates: GatesArg) -> GateGranularity {
    match gates {
        GatesArg::Neuron => GateGranularity::Neuron,
        GatesArg::Channel => GateGranularity::Channel,
    }
}

/// The command line's feedback-cam settings with another Grad-CAM weight and feedback blur.
pub fn feedback_cam_with(
    settings: &MethodArgs,
    cam_weight: f32,
    feedback_blur: f32,
) -> FeedbackCamConfig {
    let rule = match settings.fusion {
        FusionArg::Geometric => FusionRule::Geometric { cam_weight },
        FusionArg::Arithmetic => FusionRule::Arithmetic { cam_weight },
    };
    let through = match settings.cam_through {
        CamThroughArg::Plain => CamThrough::PlainNet,
        CamThroughArg::Gates => CamThrough::FeedbackGates,
    };
    FeedbackCamConfig::default()
        .with_rule(rule)
        .with_feedback_blur(feedback_blur)
        .with_cam_through(through)
}
