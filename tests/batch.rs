//! `FeedbackNet::explain_batch`: several images of different sizes, each with its own classes,
//! in shared batches, give what one `explain` per image gives (gradient, Grad-CAM and a
//! 3-iteration soft feedback on SqueezeNet 1.1); a bad item is a typed error naming it.

mod common;

use common::{correlation, photo, shared};

use feedbacknet::{DynamicImage, Error, FeedbackNet, Inferences, Method, Request, SolverConfig};

fn net(max_batch: usize) -> FeedbackNet {
    FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(
            SolverConfig::default()
                .with_iterations(3)
                .with_tolerance(0.0),
        )
        .max_batch(max_batch)
        .build()
        .expect("SqueezeNet loads")
}

/// A shared photo at a third of its size (the maps and boxes are computed at the image's
/// size: smaller images keep the test quick, and the three still differ in size).
fn small(path: &str) -> DynamicImage {
    let image = photo(path);
    image.resize_exact(
        image.width() / 3,
        image.height() / 3,
        image::imageops::FilterType::Triangle,
    )
}

fn same(alone: &Inferences, batched: &Inferences, item: usize) {
    assert_eq!(alone.classes(), batched.classes(), "item {item}");
    assert_eq!(alone.len(), batched.len(), "item {item}");
    for (a, b) in alone.iter().zip(batched.iter()) {
        let what = format!("item {item}, {} {}", a.method, a.class.label);
        assert_eq!((a.method, &a.class), (b.method, &b.class), "{what}");
        assert_eq!(
            (a.saliency.width(), a.saliency.height()),
            (b.saliency.width(), b.saliency.height()),
            "{what}"
        );
        let r = correlation(a.saliency.data(), b.saliency.data());
        assert!(r >= 0.9999, "{what}: map correlation {r}");
        assert_eq!(a.boxes, b.boxes, "{what}");
        let tolerance = 1e-3 * a.logit_after.abs().max(1.0);
        assert!(
            (a.logit_after - b.logit_after).abs() <= tolerance,
            "{what}: logit {} alone, {} batched",
            a.logit_after,
            b.logit_after
        );
        assert_eq!(a.trace.len(), b.trace.len(), "{what}");
    }
}

#[test]
fn a_batch_of_images_equals_one_explain_per_image() {
    // Three sizes (256x192, 160x107, 166x166) and 2, 1 and 2 classes: 5 samples, cut into
    // batches of 4 across images.
    let images: Vec<DynamicImage> = [
        "data/demo/darknet_dog.jpg",
        "data/demo/caffe_fish-bike.jpg",
        "data/demo/darknet_giraffe.jpg",
    ]
    .iter()
    .map(|p| small(p))
    .collect();
    let methods = [Method::Gradient, Method::GradCam, Method::Feedback];
    let requests = [
        Request::classes(["bull mastiff", "mountain bike"]).methods(methods),
        Request::class("mountain bike").methods(methods),
        Request::top_k(2).methods(methods),
    ];
    let net = net(4);
    let items: Vec<(&DynamicImage, &Request)> = images.iter().zip(&requests).collect();
    let batched = net.explain_batch(&items).expect("batch explained");
    assert_eq!(batched.len(), 3);
    for (i, ((image, request), batched)) in items.iter().zip(&batched).enumerate() {
        let alone = net.explain(image, request).expect("explained alone");
        same(&alone, batched, i);
    }
    assert_eq!(batched[2].classes().len(), 2);
}

#[test]
fn items_with_other_methods_run_apart_and_come_back_in_order() {
    let dog = small("data/demo/darknet_dog.jpg");
    let fish = small("data/demo/caffe_fish-bike.jpg");
    let cam = Request::class("bull mastiff").method(Method::GradCam);
    let gradient = Request::class("mountain bike").method(Method::Gradient);
    let net = net(16);
    let batched = net
        .explain_batch(&[(&dog, &cam), (&fish, &gradient), (&fish, &cam)])
        .expect("batch explained");
    same(&net.explain(&dog, &cam).unwrap(), &batched[0], 0);
    same(&net.explain(&fish, &gradient).unwrap(), &batched[1], 1);
    same(&net.explain(&fish, &cam).unwrap(), &batched[2], 2);
    assert!(net.explain_batch(&[]).unwrap().is_empty());
}

#[test]
fn a_bad_item_fails_the_batch_with_its_index() {
    let dog = small("data/demo/darknet_dog.jpg");
    let good = Request::class("bull mastiff").method(Method::Gradient);
    let bad = Request::class(1000).method(Method::Gradient);
    let net = net(16);
    let refused = net.explain_batch(&[(&dog, &good), (&dog, &bad)]);
    match refused {
        Err(Error::BatchItem { index: 1, source }) => assert!(
            matches!(
                *source,
                Error::ClassOutOfRange {
                    class: 1000,
                    classes: 1000
                }
            ),
            "{source:?}"
        ),
        other => panic!("expected BatchItem 1, got {other:?}"),
    }
    let top_k = Request::top_k(0);
    let refused = net.explain_batch(&[(&dog, &top_k), (&dog, &good)]);
    assert!(
        matches!(refused, Err(Error::BatchItem { index: 0, .. })),
        "{refused:?}"
    );
    // One image alone keeps its own error, unwrapped.
    assert!(matches!(
        net.explain(&dog, &bad),
        Err(Error::ClassOutOfRange { .. })
    ));
}

#[test]
fn a_net_that_bakes_batch_1_into_its_graph_is_sent_one_sample_at_a_time() {
    // onnxsim's ViT has batch 1 in its reshapes and class token: a batch of two fails inside
    // the graph, so its classes go one per call and give what each class gives alone.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/modern/vit_op17_sim.onnx"
    );
    let vit = FeedbackNet::builder()
        .model_path(fixture)
        .solver(
            SolverConfig::default()
                .with_iterations(3)
                .with_tolerance(0.0),
        )
        .build()
        .expect("the ViT fixture loads");
    let dog = small("data/demo/darknet_dog.jpg");
    let methods = [Method::GradCam, Method::FeedbackCam];
    let both = vit
        .explain(&dog, &Request::classes([3, 7]).methods(methods))
        .expect("two classes of a batch-1 net");
    let three = Request::classes([3]).methods(methods);
    let seven = Request::classes([7]).methods(methods);
    let alone = [vit.explain(&dog, &three), vit.explain(&dog, &seven)];
    for (i, alone) in alone.into_iter().enumerate() {
        let alone = alone.expect("one class");
        let class = alone.classes()[0];
        let batched: Vec<_> = both.iter().filter(|inf| inf.class.index == class).collect();
        assert_eq!(batched.len(), alone.len(), "class {i}");
        for (a, b) in alone.iter().zip(batched) {
            assert_eq!(a.method, b.method);
            let r = correlation(a.saliency.data(), b.saliency.data());
            assert!(r >= 0.9999, "class {i} {:?}: map correlation {r}", a.method);
            assert_eq!(a.boxes, b.boxes, "class {i} {:?}", a.method);
        }
    }
    // A net whose graph takes any batch keeps its batches (SqueezeNet declares batch 1 too).
    let squeezenet = shared().join("models/squeezenet1.1.onnx");
    let onnx = feedbacknet_onnx::OnnxNetwork::load(&squeezenet, &burn::tensor::Device::flex())
        .expect("SqueezeNet loads");
    assert_eq!(feedbacknet_core::GatedNetwork::max_batch(&onnx), None);
    let vit = feedbacknet_onnx::OnnxNetwork::load(fixture, &burn::tensor::Device::flex())
        .expect("the ViT loads");
    assert_eq!(feedbacknet_core::GatedNetwork::max_batch(&vit), Some(1));
}
