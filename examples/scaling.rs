//! How the cost of gradient and soft feedback grows with the input size (224, 320, 448) and
//! with the batch (1, 2, 4, 8 classes of one image solved in one batched pass), on a shared net
//! (default SqueezeNet 1.1, which is fully convolutional: any input size runs).
//!
//! `cargo run --release --example scaling -- [RUNS] [MODEL_FILE]`; prints a Markdown table.

mod common;

use common::{median_ms, shared};
use feedbacknet::{FeedbackNet, InputSpec, Method, Request, load_image};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    feedbacknet::retain_freed_memory();
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3);
    let model = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "squeezenet1.1.onnx".into());
    let path = shared().join("models").join(&model);
    let image = load_image(shared().join("data/demo/gradcam_both.png"))?;
    println!("{model}, median of {runs} runs (ms per call; per image = per call / batch)\n");
    println!("| input | batch | gradient ms | feedback ms | feedback ms per class |");
    println!("|---|---|---|---|---|");
    let base = FeedbackNet::from_onnx(&path)?;
    let normalization = base.input_spec().normalization;
    for size in [224usize, 320, 448] {
        let net = FeedbackNet::builder()
            .model_path(&path)
            .input_spec(InputSpec::rgb(size, size, normalization))
            .build()?;
        let ranked: Vec<usize> = net
            .predict(&image, 8)?
            .into_iter()
            .map(|p| p.class.index)
            .collect();
        let batches: &[usize] = if size == 224 { &[1, 2, 4, 8] } else { &[1] };
        for &batch in batches {
            let classes = &ranked[..batch];
            let gradient = median_ms(runs, || {
                let request = Request::classes(classes.iter().copied()).method(Method::Gradient);
                drop(net.explain(&image, &request).unwrap())
            });
            let feedback = median_ms(runs, || {
                let request = Request::classes(classes.iter().copied()).method(Method::Feedback);
                drop(net.explain(&image, &request).unwrap())
            });
            println!(
                "| {size}x{size} | {batch} | {gradient:.1} | {feedback:.1} | {:.1} |",
                feedback / batch as f64
            );
        }
    }
    Ok(())
}
