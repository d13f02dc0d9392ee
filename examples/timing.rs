//! Median wall-clock time per image of each stage on SqueezeNet 1.1 (224x224), for a quick look;
//! the criterion benchmarks are the reference.
//!
//! `cargo run --release --example timing -- [RUNS]`

use std::{path::PathBuf, time::Instant};

use feedbacknet::{FeedbackNet, Method, load_image};

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")))
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let net = FeedbackNet::from_onnx(shared().join("models/squeezenet1.1.onnx"))?;
    let gradient = net.with_method(Method::Gradient);
    let image = load_image(shared().join("data/demo/gradcam_both.png"))?;
    let class = net.predict(&image, 1)?[0].class.index;
    let forward = median_ms(runs, || drop(net.predict(&image, 5).unwrap()));
    let grad = median_ms(runs, || drop(gradient.infer(&image, class).unwrap()));
    let feedback = median_ms(runs, || drop(net.infer(&image, class).unwrap()));
    let top5 = median_ms(runs.min(3), || drop(net.infer_top_k(&image, 5).unwrap()));
    println!("SqueezeNet 1.1, 224x224, median of {runs} runs:");
    println!("forward             {forward:8.1} ms");
    println!("gradient            {grad:8.1} ms");
    println!("feedback (30 it)    {feedback:8.1} ms");
    println!("feedback top-5      {top5:8.1} ms (one batch of 5)");
    Ok(())
}
