//! `FeedbackNet` end to end on real nets and photos from ../shared.

mod common;

use std::sync::OnceLock;

use common::{inside, photo, shared};
use feedbacknet::{
    BoundingBox, DynamicImage, Error, FeedbackNet, Method, Objective, Request, ResizeMode,
    SolverConfig, load_image,
};

fn squeezenet() -> &'static FeedbackNet {
    static NET: OnceLock<FeedbackNet> = OnceLock::new();
    NET.get_or_init(|| {
        FeedbackNet::builder()
            .model_path(shared().join("models/squeezenet1.1.onnx"))
            .solver(SolverConfig::default().with_iterations(10))
            .build()
            .expect("SqueezeNet loads")
    })
}

#[test]
fn feedback_raises_the_logit_and_maps_and_boxes_fit_the_image() {
    let image = photo("data/demo/darknet_dog.jpg"); // 768x576: not the input's shape
    let result = squeezenet().infer(&image, "all-terrain bike").unwrap();
    assert_eq!(result.class.label, "mountain bike");
    assert!(result.logit_after > result.logit_before, "{result:?}");
    assert_eq!(result.trace.first(), Some(&result.logit_before));
    let gates = result.gates.as_ref().unwrap();
    assert!(gates.mean > 0.0 && gates.mean < 1.0, "{gates:?}");
    assert_eq!(
        (result.saliency.width(), result.saliency.height()),
        (768, 576)
    );
    assert_eq!(result.smoothed.width(), 768);
    assert!(!result.boxes.is_empty());
    assert!(
        result.boxes.iter().all(|b| inside(b, &image)),
        "{:?}",
        result.boxes
    );
}

#[test]
fn top_k_solves_the_most_likely_classes_in_one_batch() {
    let image = photo("data/demo/darknet_dog.jpg");
    let net = squeezenet();
    let predicted = net.predict(&image, 3).unwrap();
    let results = net.infer_top_k(&image, 3).unwrap();
    assert_eq!(results.len(), 3);
    for (p, r) in predicted.iter().zip(&results) {
        assert_eq!(p.class, r.class);
        assert!(
            (p.logit - r.logit_before).abs() < 1e-3,
            "{} vs {}",
            p.logit,
            r.logit_before
        );
    }
    // Batched solving gives each class its own map.
    assert_ne!(results[0].saliency.data(), results[1].saliency.data());
}

#[test]
fn feedback_maps_are_class_specific() {
    // A bulldog in the upper half, a tabby cat lying in the lower half. The log-softmax
    // objective keeps the two maps apart (with the raw logit, the default, the dog map has only
    // 45 % of its mass in the upper half: both maps follow the same positive paths).
    let image = photo("data/demo/gradcam_both.png");
    let net = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(SolverConfig::default().with_objective(Objective::LogSoftmax))
        .build()
        .unwrap();
    let upper = BoundingBox::new(0.0, 0.0, 224.0, 112.0).unwrap();
    let classes = [
        net.class_index("bull mastiff").unwrap(),
        net.class_index("tiger cat").unwrap(),
    ];
    let results = net.explain(&image, &Request::classes(classes)).unwrap();
    let results = results.method(0);
    let dog = results[0].smoothed.mass_fraction_in(&upper);
    let cat = results[1].smoothed.mass_fraction_in(&upper);
    assert!(dog > 0.5, "dog map: {dog:.2} of its mass in the upper half");
    assert!(cat < 0.5, "cat map: {cat:.2} of its mass in the upper half");
}

#[test]
fn gradient_method_and_resize_crop_geometry() {
    let image = photo("data/imagenet-val-fullres/images/ILSVRC2012_val_00000011.JPEG");
    let net = FeedbackNet::builder()
        .model_path(shared().join("models/mobilenet_v1_0.25_128.onnx"))
        .method(Method::Gradient)
        .resize(ResizeMode::ResizeCrop { shorter_side: 146 })
        .build()
        .unwrap();
    let result = net.infer_top_k(&image, 1).unwrap().remove(0);
    assert_eq!(result.logit_before, result.logit_after);
    assert!(result.trace.is_empty() && result.gates.is_none());
    assert_eq!(
        (result.saliency.width(), result.saliency.height()),
        (image.width() as usize, image.height() as usize)
    );
    assert!(result.boxes.iter().all(|b| inside(b, &image)));
    // Outside the centre crop nothing is salient.
    assert_eq!(result.saliency.get(0, 0), 0.0);
}

#[test]
fn bad_input_gives_typed_errors() {
    let net = squeezenet();
    let image = photo("data/demo/gradcam_both.png");
    assert!(matches!(
        net.infer(&image, 1000usize),
        Err(Error::ClassOutOfRange {
            class: 1000,
            classes: 1000
        })
    ));
    assert!(matches!(
        net.infer(&image, "no such animal"),
        Err(Error::UnknownLabel { .. })
    ));
    assert!(matches!(
        net.infer(&DynamicImage::new_rgb8(0, 0), 1usize),
        Err(Error::EmptyImage { .. })
    ));
    assert!(matches!(
        load_image("/nonexistent/photo.jpg"),
        Err(Error::Image { .. })
    ));
    let tmp = tempfile::tempdir().unwrap();
    let not_an_image = tmp.path().join("notimage.jpg");
    std::fs::write(&not_an_image, b"definitely not a JPEG").unwrap();
    assert!(matches!(
        load_image(&not_an_image),
        Err(Error::Image { .. })
    ));
    let unsupported = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(SolverConfig::default().with_iterations(0))
        .build();
    assert!(matches!(unsupported, Err(Error::Solver(_))));
}

#[test]
fn grayscale_rgba_and_16_bit_images_are_accepted() {
    let gradient = squeezenet().with_method(Method::Gradient);
    let rgb = photo("data/demo/gradcam_both.png");
    let reference = gradient.infer(&rgb, "tiger cat").unwrap();
    let rgba16 = DynamicImage::ImageRgba16(rgb.to_rgba16());
    let same = gradient.infer(&rgba16, "tiger cat").unwrap();
    assert!((same.logit_before - reference.logit_before).abs() < 1e-4);
    let gray = DynamicImage::ImageLuma8(rgb.to_luma8());
    let result = gradient.infer(&gray, "tiger cat").unwrap();
    assert_eq!(result.saliency.width(), 224);
    assert!(result.logit_before != reference.logit_before);
}

/// A top-k above the class count (or of 0) is refused before any work, with the counts.
#[test]
fn top_k_above_the_class_count_is_refused_at_once() {
    let net = squeezenet();
    let classes = net.labels().len();
    assert_eq!(classes, 1000);
    let image = photo("data/demo/darknet_dog.jpg");
    let started = std::time::Instant::now();
    let err = net.infer_top_k(&image, classes + 1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TopK {
                k: 1001,
                classes: 1000
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "top-k 1001 is more than the net's 1000 classes"
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    let zero = net.explain(&image, &Request::top_k(0)).unwrap_err();
    assert!(matches!(zero, Error::TopK { k: 0, .. }), "{zero:?}");
    assert_eq!(net.check_top_k(classes).unwrap(), classes);
    // An explicit class index out of range was already refused.
    assert!(matches!(
        net.infer(&image, classes),
        Err(Error::ClassOutOfRange {
            class: 1000,
            classes: 1000
        })
    ));
}

#[test]
fn classes_beyond_the_batch_limit_run_batch_after_batch_with_the_same_results() {
    let image = photo("data/demo/darknet_dog.jpg");
    let build = |max_batch: usize| {
        FeedbackNet::builder()
            .model_path(shared().join("models/squeezenet1.1.onnx"))
            .method(Method::Gradient)
            .max_batch(max_batch)
            .build()
            .expect("SqueezeNet loads")
    };
    let whole = build(16).infer_top_k(&image, 5).unwrap();
    let split = build(2).infer_top_k(&image, 5).unwrap();
    assert_eq!(split.len(), 5);
    for (a, b) in whole.iter().zip(&split) {
        assert_eq!(a.class, b.class);
        assert_eq!(a.boxes, b.boxes, "class {}", a.class.label);
        let peak = a.saliency.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .saliency
            .data()
            .iter()
            .zip(b.saliency.data())
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff <= 1e-5 * peak,
            "class {}: {diff} of {peak}",
            a.class.label
        );
    }
    let refused = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .max_batch(0)
        .build();
    assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
}
