//! The wgpu backend at run time: the same maps and boxes as flex (CPU) for gradient, Grad-CAM
//! and a short soft feedback on SqueezeNet 1.1. Built only with `--features wgpu`; CI runs it on
//! Mesa's software Vulkan driver (lavapipe), so no GPU is needed (`.ci/run`).
#![cfg(feature = "wgpu")]

mod common;

use common::{correlation, photo, shared};
use feedbacknet::{Backend, FeedbackNet, Inference, Method, Request, SolverConfig};

fn explain(backend: Backend) -> Vec<Inference> {
    let net = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .device(backend.device().expect("backend compiled in"))
        .solver(SolverConfig::default().with_iterations(3))
        .build()
        .expect("SqueezeNet loads");
    let image = photo("data/demo/darknet_dog.jpg");
    let methods = [Method::Gradient, Method::GradCam, Method::Feedback];
    let request = Request::class("mountain bike").methods(methods);
    let results = net.explain(&image, &request).expect("explained");
    (0..methods.len())
        .map(|m| results.method(m)[0].clone())
        .collect()
}

#[test]
fn wgpu_maps_and_boxes_equal_flex() {
    let cpu = explain(Backend::Flex);
    let gpu = explain(Backend::Wgpu);
    for (c, g) in cpu.iter().zip(&gpu) {
        assert_eq!(c.method, g.method);
        let r = correlation(c.saliency.data(), g.saliency.data());
        assert!(r >= 0.999, "{:?}: map correlation {r}", c.method);
        assert!(
            (c.logit_after - g.logit_after).abs() <= 1e-3 * c.logit_after.abs().max(1.0),
            "{:?}: logit {} on flex, {} on wgpu",
            c.method,
            c.logit_after,
            g.logit_after
        );
        let (cb, gb) = (c.best_box().expect("a box"), g.best_box().expect("a box"));
        println!("{:?}: map r {r:.6}, box IoU {:.4}", c.method, cb.iou(gb));
        assert!(
            cb.iou(gb) >= 0.98,
            "{:?}: box {cb:?} on flex, {gb:?} on wgpu",
            c.method
        );
    }
}
