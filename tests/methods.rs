//! Every saliency method through one API, on real nets and photos from ../shared.

mod common;

use std::sync::OnceLock;

use common::{inside, photo, shared};
use feedbacknet::{
    BackwardTarget, BoundingBox, CamLayer, CamThrough, Crops, FeedbackCamConfig, FeedbackMap,
    FeedbackNet, FusionRule, Inference, Method, MethodSpec, Objective, RefineConfig, Request,
    SolverConfig,
};
use feedbacknet_localize::{ColourImage, ColourModel, refined_boxes};
use feedbacknet_solver::grad_cam;

fn squeezenet() -> &'static FeedbackNet {
    static NET: OnceLock<FeedbackNet> = OnceLock::new();
    NET.get_or_init(|| {
        FeedbackNet::builder()
            .model_path(shared().join("models/squeezenet1.1.onnx"))
            .solver(SolverConfig::default().with_iterations(5))
            .build()
            .expect("SqueezeNet loads")
    })
}

#[test]
fn every_method_runs_through_the_same_call() {
    let image = photo("data/demo/darknet_dog.jpg");
    let net = squeezenet();
    let class = net.class_index("bicycle-built-for-two").unwrap();
    let mut maps = Vec::new();
    for method in Method::ALL {
        let r = net.with_method(method).infer(&image, class).unwrap();
        assert_eq!(r.method, method);
        assert_eq!(
            (r.saliency.width(), r.saliency.height()),
            (768, 576),
            "{method}"
        );
        assert!(r.saliency.max() > 0.0, "{method}: empty map");
        assert!(r.boxes.iter().all(|b| inside(b, &image)), "{method}");
        assert_eq!(r.gates.is_some(), method.is_feedback(), "{method}");
        maps.push(r.saliency);
    }
    // Six methods, six different maps.
    for i in 0..maps.len() {
        for j in i + 1..maps.len() {
            assert_ne!(
                maps[i].data(),
                maps[j].data(),
                "{:?} vs {:?}",
                Method::ALL[i],
                Method::ALL[j]
            );
        }
    }
}

#[test]
fn explain_with_several_methods_equals_one_call_per_method_and_shares_the_solve() {
    let image = photo("data/demo/darknet_dog.jpg");
    let net = squeezenet();
    let class = net.class_index("bicycle-built-for-two").unwrap();
    let methods = [
        Method::FeedbackCam,
        Method::Gradient,
        Method::Feedback,
        Method::FeedbackHard,
    ];
    let together = methods_of(net, &image, class, methods).unwrap();
    assert_eq!(together.len(), methods.len());
    for (method, joint) in methods.iter().zip(&together) {
        let alone = net.with_method(*method).infer(&image, class).unwrap();
        assert_eq!(joint.method, *method);
        assert_eq!(joint.saliency.data(), alone.saliency.data(), "{method}");
        assert_eq!(joint.boxes, alone.boxes, "{method}");
        assert_eq!(joint.gates, alone.gates, "{method}");
    }
    // Feedback and feedback-cam read one soft solve: the same gates, the same solve time.
    let (cam, fb) = (&together[0], &together[2]);
    assert_eq!(cam.trace, fb.trace);
    assert_eq!(cam.timings.solve_ms, fb.timings.solve_ms);
    assert!(fb.timings.solve_ms > 0.0);
    assert_eq!(together[1].timings.solve_ms, 0.0);
    assert!(
        methods_of(net, &image, class, Vec::<Method>::new())
            .unwrap()
            .is_empty()
    );
    assert!(methods_of(net, &image, 5000, methods).is_err());
    // The gated activation energy of a middle gate site, from the same solve.
    let energy = MethodSpec::new(Method::Feedback)
        .with_feedback_map(FeedbackMap::GatedEnergy(CamLayer::Site(12)));
    let both = net
        .explain(
            &image,
            &Request::class(class).methods([Method::Feedback.into(), energy]),
        )
        .map(Vec::from_iter)
        .unwrap();
    assert_eq!(both[0].saliency.data(), fb.saliency.data());
    assert_eq!(both[0].trace, both[1].trace);
    assert_eq!(
        (both[1].saliency.width(), both[1].saliency.height()),
        (768, 576)
    );
    assert_ne!(both[1].saliency.data(), fb.saliency.data());
    let nowhere = MethodSpec::new(Method::Feedback)
        .with_feedback_map(FeedbackMap::GatedEnergy(CamLayer::Site(999)));
    assert!(
        net.explain(&image, &Request::class(class).method(nowhere))
            .is_err()
    );
}

#[test]
fn guided_backprop_keeps_only_part_of_the_gradient() {
    // Guided backprop drops negative gradients at every ReLU: its map is a different, sparser
    // picture than the plain gradient, and DeconvNet's differs from both.
    let image = photo("data/demo/gradcam_both.png");
    let net = squeezenet();
    let g = net
        .with_method(Method::Gradient)
        .infer(&image, "tiger cat")
        .unwrap()
        .saliency;
    let guided = net
        .with_method(Method::Guided)
        .infer(&image, "tiger cat")
        .unwrap()
        .saliency;
    let nonzero = |m: &feedbacknet::SaliencyMap| m.data().iter().filter(|&&v| v > 1e-3).count();
    assert!(
        nonzero(&guided) < nonzero(&g),
        "{} vs {}",
        nonzero(&guided),
        nonzero(&g)
    );
}

/// Grad-CAM maps of the bulldog (upper half) and the tabby cat (lower half) of
/// `gradcam_both.png`, at the feature map's resolution.
fn both_cams(model: &str) -> (Vec<feedbacknet::SaliencyMap>, BackwardTarget) {
    let net = FeedbackNet::builder()
        .model_path(shared().join("models").join(model))
        .build()
        .unwrap();
    let image = photo("data/demo/gradcam_both.png");
    let spec = net.input_spec();
    let rgb = image
        .resize_exact(
            spec.width as u32,
            spec.height as u32,
            image::imageops::FilterType::Triangle,
        )
        .to_rgb8();
    let planar = spec
        .normalization
        .planar_from_rgb(rgb.as_raw(), spec.width, spec.height);
    let input = feedbacknet::Tensor::<4>::from_data(
        feedbacknet::TensorData::new(planar, [1, 3, spec.height, spec.width]),
        &feedbacknet::Device::flex(),
    );
    let targets =
        ["bull mastiff", "tiger cat"].map(|l| net.class_index(l).unwrap() + net.class_offset());
    let cams = grad_cam(
        net.network().as_ref(),
        &input.repeat_dim(0, 2),
        &targets,
        None,
        &CamLayer::LastConv,
    )
    .unwrap();
    (cams.maps, cams.target)
}

fn upper_share(m: &feedbacknet::SaliencyMap) -> f32 {
    let half = BoundingBox::new(0.0, 0.0, m.width() as f32, m.height() as f32 / 2.0).unwrap();
    m.mass_fraction_in(&half)
}

fn peak_row(m: &feedbacknet::SaliencyMap) -> usize {
    let i = m
        .data()
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    i / m.width()
}

#[test]
fn grad_cam_is_non_negative_at_feature_resolution_and_class_specific() {
    // (model, side of its last feature map, whether the cat map's peak is in the lower half:
    // SqueezeNet's "tiger cat" channel also fires on the bulldog's face, so only its mass,
    // not its peak, is in the lower half).
    for (model, side, cat_peak_below) in [
        ("squeezenet1.1.onnx", 13, false),
        ("mobilenet_v2_1.0_224.onnx", 7, true),
        ("efficientnet_lite0.onnx", 7, true),
    ] {
        let (maps, target) = both_cams(model);
        assert_eq!(target, BackwardTarget::FeatureMap, "{model}");
        for map in &maps {
            assert_eq!((map.height(), map.width()), (side, side), "{model}");
            assert!(map.data().iter().all(|&v| v >= 0.0), "{model}");
            assert!(map.max() > 0.0, "{model}");
        }
        let (dog, cat) = (upper_share(&maps[0]), upper_share(&maps[1]));
        assert!(
            dog > 0.6,
            "{model}: dog map has {dog:.2} of its mass in the upper half"
        );
        assert!(
            cat < 0.4,
            "{model}: cat map has {cat:.2} of its mass in the upper half"
        );
        assert!(peak_row(&maps[0]) < side / 2, "{model}: dog peak");
        if cat_peak_below {
            assert!(peak_row(&maps[1]) > side / 2, "{model}: cat peak");
        }
    }
}

#[test]
fn ten_crop_averaging_covers_the_image_and_differs_from_one_view() {
    let image = photo("data/imagenet-val-fullres/images/ILSVRC2012_val_00000011.JPEG");
    let net = squeezenet().with_method(Method::Gradient);
    let ten = net.with_crops(Crops::ten_for(net.input_spec()));
    let single = net.infer_top_k(&image, 1).unwrap().remove(0);
    let averaged = ten.infer(&image, single.class.index).unwrap();
    let (w, h) = (image.width() as usize, image.height() as usize);
    assert_eq!(
        (averaged.saliency.width(), averaged.saliency.height()),
        (w, h)
    );
    assert!(averaged.boxes.iter().all(|b| inside(b, &image)));
    assert_ne!(averaged.saliency.data(), single.saliency.data());
    // Every pixel is seen by some crop (a centre crop alone would leave the corners at 0).
    let corner = BoundingBox::new(0.0, 0.0, w as f32 * 0.05, h as f32 * 0.05).unwrap();
    assert!(averaged.saliency.mass_fraction_in(&corner) > 0.0);
    // The same net explains any class; a bad 10-crop setting is a typed error.
    assert!(
        FeedbackNet::builder()
            .model_path(shared().join("models/squeezenet1.1.onnx"))
            .crops(Crops::Ten { shorter_side: 0 })
            .build()
            .is_err()
    );
}

#[test]
fn colour_refinement_boxes_the_refined_mask_of_the_smoothed_map() {
    let image = photo("data/imagenet-val-fullres/images/ILSVRC2012_val_00000011.JPEG");
    // Unrefined, whatever Grad-CAM's tuned box settings say.
    let net = squeezenet().with_method(Method::GradCam).with_refine(None);
    let plain = net.infer_top_k(&image, 1).unwrap().remove(0);
    // Both colour models: two histograms, and GrabCut (Gaussian mixtures and a min cut).
    for model in [ColourModel::Histogram, ColourModel::GrabCut] {
        let refine = RefineConfig::default().with_model(model);
        let refined_net = net.with_refine(Some(refine));
        let refined = refined_net.infer(&image, plain.class.index).unwrap();
        // The same map; only the boxes change.
        assert_eq!(refined.saliency.data(), plain.saliency.data());
        assert_eq!(refined.smoothed.data(), plain.smoothed.data());
        // The boxes are those of the refined mask of the smoothed map at image size.
        let rgb = image.to_rgb8();
        let colour = ColourImage::new(
            image.width() as usize,
            image.height() as usize,
            rgb.into_raw(),
        )
        .unwrap();
        let config = net.box_settings(Method::GradCam).localize;
        let expected = refined_boxes(
            &refined.smoothed,
            &colour,
            config.threshold,
            &refine,
            config.min_area_fraction,
        )
        .unwrap();
        assert!(!expected.is_empty());
        assert_eq!(refined.boxes, expected);
        assert_ne!(
            refined.boxes, plain.boxes,
            "{model:?}: the refinement moved no box edge"
        );
        assert!(refined.boxes.iter().all(|b| inside(b, &image)));
    }
    // An invalid refinement is a typed error when the net is built.
    let bad = RefineConfig::default().with_sure_background(0.9);
    assert!(
        FeedbackNet::builder()
            .model_path(shared().join("models/squeezenet1.1.onnx"))
            .refine(Some(bad))
            .build()
            .is_err()
    );
}

#[test]
fn feedback_cam_is_class_specific_and_configurable() {
    // The bulldog is in the upper half of gradcam_both.png, the tabby cat in the lower half.
    let image = photo("data/demo/gradcam_both.png");
    // The log-softmax objective keeps the feedback maps of two classes in one photo apart.
    let net = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(
            SolverConfig::default()
                .with_iterations(5)
                .with_objective(Objective::LogSoftmax),
        )
        .build()
        .unwrap();
    let dog = net
        .with_method(Method::FeedbackCam)
        .infer(&image, "bull mastiff")
        .unwrap()
        .saliency;
    let cat = net
        .with_method(Method::FeedbackCam)
        .infer(&image, "tiger cat")
        .unwrap()
        .saliency;
    let (d, c) = (upper_share(&dog), upper_share(&cat));
    // (SqueezeNet's Grad-CAM for "tiger cat" also fires on the bulldog's face.)
    // Measured: 0.65 and 0.33.
    assert!(d > 0.55, "dog map: {d:.2} of its mass in the upper half");
    assert!(c < 0.45, "cat map: {c:.2} of its mass in the upper half");
    assert!(d - c > 0.2, "dog {d:.2} vs cat {c:.2}");
    // Every fusion setting is a configuration; a bad weight is a typed error.
    let through_gates = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(SolverConfig::default().with_iterations(5))
        .feedback_cam(
            FeedbackCamConfig::default()
                .with_cam_through(CamThrough::FeedbackGates)
                .with_rule(FusionRule::Arithmetic { cam_weight: 0.7 }),
        )
        .build()
        .unwrap();
    let other = through_gates
        .with_method(Method::FeedbackCam)
        .infer(&image, "bull mastiff")
        .unwrap()
        .saliency;
    assert_ne!(other.data(), dog.data());
    // Several fusion settings on one solve: each equals a net built with that setting.
    let plain = squeezenet();
    let alone = plain
        .with_method(Method::FeedbackCam)
        .infer(&image, "bull mastiff")
        .unwrap()
        .saliency;
    let gated = FeedbackCamConfig::default()
        .with_cam_through(CamThrough::FeedbackGates)
        .with_rule(FusionRule::Arithmetic { cam_weight: 0.7 });
    let request = Request::class("bull mastiff")
        .method(MethodSpec::new(Method::FeedbackCam).with_feedback_cam(gated))
        .method(Method::FeedbackCam);
    let variants = plain.explain(&image, &request).unwrap();
    let variants = variants
        .method(0)
        .iter()
        .chain(variants.method(1))
        .collect::<Vec<_>>();
    assert_eq!(variants[0].saliency.data(), other.data());
    assert_eq!(variants[1].saliency.data(), alone.data());
    let too_heavy =
        FeedbackCamConfig::default().with_rule(FusionRule::Geometric { cam_weight: 2.0 });
    let spec = MethodSpec::new(Method::FeedbackCam).with_feedback_cam(too_heavy);
    let request = Request::class("bull mastiff").method(spec);
    assert!(plain.explain(&image, &request).is_err());
    let bad = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .feedback_cam(
            FeedbackCamConfig::default().with_rule(FusionRule::Geometric { cam_weight: 1.5 }),
        )
        .build();
    assert!(
        matches!(bad, Err(feedbacknet::Error::Localize(_))),
        "{bad:?}"
    );
}

/// One class with several methods through [`FeedbackNet::explain`], one result per method.
fn methods_of<S: Into<MethodSpec>>(
    net: &FeedbackNet,
    image: &image::DynamicImage,
    class: usize,
    methods: impl IntoIterator<Item = S>,
) -> feedbacknet::Result<Vec<Inference>> {
    let request = Request::class(class).methods(methods);
    Ok(net.explain(image, &request)?.into_iter().collect())
}

/// A joint explainer's views give what each method's own explainer gives, while one call per
/// image serves every method (the second view reads what the first kept, and nothing is left).
#[test]
fn a_joint_explainer_gives_each_method_its_own_explanations() {
    use feedbacknet::{JointExplainer, MethodExplainer};
    use feedbacknet_eval::Explainer;
    let net = squeezenet();
    let small = |p: &str| {
        let image = photo(p);
        image.resize_exact(
            image.width() / 3,
            image.height() / 3,
            image::imageops::FilterType::Triangle,
        )
    };
    let (dog, fish) = (
        small("data/demo/darknet_dog.jpg"),
        small("data/demo/caffe_fish-bike.jpg"),
    );
    let items = [(&dog, 243), (&fish, 671)];
    let methods = [Method::Feedback, Method::FeedbackCam];
    let own = |method: Method| MethodExplainer {
        net,
        method,
        blur: 4.0,
        refine: false,
    };
    let joint = JointExplainer::new(methods.iter().map(|&m| own(m)).collect());
    for (index, &method) in methods.iter().enumerate() {
        let shared = joint.view(index).explain_batch(&items, 1);
        let alone = own(method).explain_batch(&items, 1);
        for (i, (a, b)) in shared.into_iter().zip(alone).enumerate() {
            let (a, b) = (a.expect("joint"), b.expect("alone"));
            assert_eq!(a.top5, b.top5, "{method:?} item {i}");
            let d = a
                .true_class_map
                .data()
                .iter()
                .zip(b.true_class_map.data())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(d < 1e-5, "{method:?} item {i}: maps differ by {d}");
            assert_eq!(a.top_maps.len(), b.top_maps.len(), "{method:?} item {i}");
        }
        let left = if index == 0 { items.len() } else { 0 };
        assert_eq!(joint.kept(), left, "after {method:?}");
    }
}
