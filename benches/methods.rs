//! Criterion benchmarks: the forward pass, every method for one class, soft feedback for the
//! top-5 classes in one batch, and the box extraction on a 224x224 map.
//!
//! `cargo bench --bench methods` (all shared nets listed in `FEEDBACKNET_BENCH_NETS`,
//! default `squeezenet1.1.onnx,mobilenet_v2_1.0_224.onnx`); `cargo bench --bench methods --
//! gradient` runs the matching benchmarks only. `FEEDBACKNET_BENCH_BACKEND` picks the backend
//! (`flex` by default; `wgpu` needs `--features wgpu`). Results: `docs/performance.md`.

#[path = "../examples/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::shared;
use criterion::{Criterion, criterion_group, criterion_main};
use feedbacknet::{Backend, FeedbackNet, LocalizeConfig, Method, SaliencyMap, load_image};

fn nets() -> Vec<String> {
    std::env::var("FEEDBACKNET_BENCH_NETS")
        .unwrap_or_else(|_| "squeezenet1.1.onnx,mobilenet_v2_1.0_224.onnx".into())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// The backend of `FEEDBACKNET_BENCH_BACKEND` (default flex).
fn backend() -> Backend {
    std::env::var("FEEDBACKNET_BENCH_BACKEND")
        .map(|name| name.parse().expect("a backend name"))
        .unwrap_or_default()
}

fn methods(c: &mut Criterion) {
    feedbacknet::retain_freed_memory();
    let device = backend().device().expect("the backend is compiled in");
    let image = load_image(shared().join("data/demo/gradcam_both.png")).expect("demo image");
    for model in nets() {
        let net = FeedbackNet::builder()
            .model_path(shared().join("models").join(&model))
            .device(device.clone())
            .build()
            .expect("model");
        let class = net.predict(&image, 1).expect("predict")[0].class.index;
        let name = model.trim_end_matches(".onnx");
        let mut group = match backend() {
            Backend::Flex => c.benchmark_group(name),
            other => c.benchmark_group(format!("{name} ({other:?})")),
        };
        group.sample_size(10).warm_up_time(Duration::from_secs(1));
        group.bench_function("forward", |b| b.iter(|| net.predict(&image, 5).unwrap()));
        for method in Method::ALL {
            let net = net.with_method(method);
            group.bench_function(method.name(), |b| {
                b.iter(|| net.infer(&image, class).unwrap())
            });
        }
        group.bench_function("feedback top-5 batch", |b| {
            b.iter(|| net.infer_top_k(&image, 5).unwrap())
        });
        group.finish();
    }
}

fn boxes(c: &mut Criterion) {
    let map = SaliencyMap::from_fn(224, 224, |x, y| {
        let (dx, dy) = (x as f32 - 100.0, y as f32 - 120.0);
        (-(dx * dx + dy * dy) / 2000.0).exp() + 0.1 * ((x * 7 + y * 13) % 17) as f32 / 17.0
    })
    .expect("map");
    let config = LocalizeConfig::default();
    c.bench_function("localize 224x224 (blur 10, threshold 0.2)", |b| {
        b.iter(|| feedbacknet_localize::localize(&map, &config).unwrap())
    });
}

criterion_group!(benches, boxes, methods);
criterion_main!(benches);
