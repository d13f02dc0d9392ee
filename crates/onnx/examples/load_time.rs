//! Times loading ONNX files and reports the peak resident memory: the loader's half of
//! `scripts/load_speed.sh`, which runs onnxruntime on the same files beside it.
//!
//! ```sh
//! cargo run --release -p feedbacknet-onnx --example load_time -- vgg16.onnx [more.onnx ...]
//! ```
//!
//! Each file is loaded three times; the fastest load is printed with the file's size, the
//! process's peak resident memory (`VmHWM`, Linux only) after the loads, and how far that peak
//! is above the memory the process held before its first load (the program and its libraries).

use std::time::Instant;

use burn::tensor::Device;
use feedbacknet_onnx::OnnxNetwork;

/// A `/proc/self/status` memory line (`VmHWM`, `VmRSS`) in MiB.
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let before = status_mib("VmRSS:");
    for path in std::env::args().skip(1) {
        let size = std::fs::metadata(&path)?.len() as f64 / (1024.0 * 1024.0);
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let start = Instant::now();
            let net = OnnxNetwork::load(&path, &device)?;
            best = best.min(start.elapsed().as_secs_f64());
            drop(net);
        }
        let peak = match (status_mib("VmHWM:"), before) {
            (Some(peak), Some(before)) => {
                let above = peak - before;
                let ratio = above / size;
                format!(
                    "{peak:.0} MiB ({above:.0} MiB above the process before loading, {ratio:.2}x the file)"
                )
            }
            _ => "?".into(),
        };
        println!("{path}: {size:.0} MiB file, load min {best:.2} s, peak RSS {peak}");
    }
    Ok(())
}
