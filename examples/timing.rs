//! Median wall-clock time per image of the forward pass and of every method (one class), and of
//! soft feedback for the top-5 classes in one batch, on a shared net (default SqueezeNet 1.1).
//!
//! `cargo run --release --example timing -- [RUNS] [MODEL_FILE] [MAPS_DIR]`
//!
//! With `MAPS_DIR`, each method's saliency map (image size, row-major little-endian `f32`) is
//! written there as `METHOD.f32`, with `class.txt` (the explained class as a logit index):
//! `scripts/compare_pytorch.py` compares them with PyTorch's maps, and so is the network input
//! (`input.f32`, `[1, 3, H, W]` after the resize and normalization), which the script gives
//! PyTorch so that both sides solve on the same values. The environment variable
//! `FEEDBACKNET_OBJECTIVE` (e.g. `logit`: the paper's formulation, `SolverConfig::paper()`)
//! sets the soft solver's objective (default: the library's), `FEEDBACKNET_KINKS` (`exact` or a
//! sharpness β) its derivative at the kinks. Each method boxes at its own (tuned) settings; the
//! time of its boxes, colour refinement included, is printed beside.

mod common;

use std::path::PathBuf;

use common::{median_ms, shared};
use feedbacknet::{FeedbackNet, KinkDerivative, Method, Objective, SolverConfig, load_image};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    feedbacknet::retain_freed_memory();
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let model = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "squeezenet1.1.onnx".into());
    let objective: Objective = match std::env::var("FEEDBACKNET_OBJECTIVE") {
        Ok(name) => name.parse()?,
        Err(_) => Objective::default(),
    };
    let solver = match objective {
        Objective::Logit => SolverConfig::paper(),
        other => SolverConfig::default().with_objective(other),
    };
    let solver = match std::env::var("FEEDBACKNET_KINKS") {
        Ok(kinks) => solver.with_kinks(kinks.parse::<KinkDerivative>()?),
        Err(_) => solver,
    };
    let net = FeedbackNet::builder()
        .model_path(shared().join("models").join(&model))
        .solver(solver)
        .build()?;
    let image = load_image(shared().join("data/demo/gradcam_both.png"))?;
    let class = net.predict(&image, 1)?[0].class.index;
    let spec = net.input_spec();
    println!(
        "{model}, {}x{}, median of {runs} runs:",
        spec.width, spec.height
    );
    let forward = median_ms(runs, || drop(net.predict(&image, 5).unwrap()));
    println!("forward              {forward:8.1} ms");
    let maps = std::env::args().nth(3).map(PathBuf::from);
    if let Some(dir) = &maps {
        std::fs::create_dir_all(dir)?;
        // The logit index (label index + the net's class offset, e.g. 1 for a background logit).
        let logit = class + net.class_offset();
        std::fs::write(dir.join("class.txt"), format!("{logit}\n"))?;
        let input = net
            .network_input(&image)?
            .into_data()
            .try_into_vec_as::<f32>();
        let input = input.map_err(|e| format!("reading the network input back: {e:?}"))?;
        let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("input.f32"), bytes)?;
    }
    for method in Method::ALL {
        let net = net.with_method(method);
        let t = median_ms(runs, || drop(net.infer(&image, class).unwrap()));
        // The boxes at the method's own settings (blur, threshold, refinement), within `t`.
        let boxes = net.infer(&image, class)?.timings.localize_ms;
        println!(
            "{:<20} {t:8.1} ms (boxes {boxes:.1} ms: {})",
            method.name(),
            refinement(&net, method)
        );
        if let Some(dir) = &maps {
            let map = net.infer(&image, class)?.saliency;
            let bytes: Vec<u8> = map.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{}.f32", method.name())), bytes)?;
        }
    }
    let top5 = median_ms(runs.min(3), || drop(net.infer_top_k(&image, 5).unwrap()));
    println!("feedback top-5       {top5:8.1} ms (one batch of 5)");
    Ok(())
}

/// Whether `method`'s boxes are colour-refined.
fn refinement(net: &FeedbackNet, method: Method) -> &'static str {
    match net.box_settings(method).refine {
        Some(_) => "refined",
        None => "not refined",
    }
}
