//! Every saliency method through one API, on real nets and photos from ../shared.

use std::{path::PathBuf, sync::OnceLock};

use feedbacknet::{
    BoundingBox, CamLayer, Crops, DynamicImage, FeedbackNet, Method, SolverConfig, load_image,
    solver::grad_cam,
};

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")))
}

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

fn photo(path: &str) -> DynamicImage {
    load_image(shared().join(path)).expect("shared photo")
}

fn inside(b: &BoundingBox, image: &DynamicImage) -> bool {
    b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= image.width() as f32 && b.y1 <= image.height() as f32
}

#[test]
fn every_method_runs_through_the_same_call() {
    let image = photo("data/demo/darknet_dog.jpg");
    let net = squeezenet();
    let class = net.class_index("bicycle-built-for-two").unwrap();
    let mut maps = Vec::new();
    for method in Method::ALL {
        let r = net.infer_with(&image, class, method).unwrap();
        assert_eq!(r.method, method);
        assert_eq!((r.saliency.width(), r.saliency.height()), (768, 576), "{method}");
        assert!(r.saliency.max() > 0.0, "{method}: empty map");
        assert!(r.boxes.iter().all(|b| inside(b, &image)), "{method}");
        assert_eq!(r.gates.is_some(), method.is_feedback(), "{method}");
        maps.push(r.saliency);
    }
    // Six methods, six different maps.
    for i in 0..maps.len() {
        for j in i + 1..maps.len() {
            assert_ne!(maps[i].data(), maps[j].data(), "{:?} vs {:?}", Method::ALL[i], Method::ALL[j]);
        }
    }
}

#[test]
fn guided_backprop_keeps_only_part_of_the_gradient() {
    // Guided backprop drops negative gradients at every ReLU: its map is a different, sparser
    // picture than the plain gradient, and DeconvNet's differs from both.
    let image = photo("data/demo/gradcam_both.png");
    let net = squeezenet();
    let g = net.saliency(&image, "tiger cat", Method::Gradient).unwrap();
    let guided = net.saliency(&image, "tiger cat", Method::Guided).unwrap();
    let nonzero = |m: &feedbacknet::SaliencyMap| m.data().iter().filter(|&&v| v > 1e-3).count();
    assert!(nonzero(&guided) < nonzero(&g), "{} vs {}", nonzero(&guided), nonzero(&g));
}

#[test]
fn grad_cam_is_non_negative_at_feature_resolution_and_class_specific() {
    // A bulldog in the upper half, a tabby cat lying in the lower half.
    let image = photo("data/demo/gradcam_both.png");
    let net = squeezenet();
    let dog = net.class_index("bull mastiff").unwrap();
    let cat = net.class_index("tiger cat").unwrap();
    let input = feedbacknet::core::Tensor::<4>::from_data(
        feedbacknet::core::TensorData::new(
            net.input_spec()
                .normalization
                .planar_from_rgb(image.to_rgb8().as_raw(), 224, 224),
            [1, 3, 224, 224],
        ),
        &feedbacknet::Device::flex(),
    );
    let batch = input.repeat_dim(0, 2);
    let cams = grad_cam(net.network().as_ref(), &batch, &[dog, cat], None, &CamLayer::LastConv).unwrap();
    let sites = net.network().gate_sites([224, 224]).unwrap();
    let shape = &sites[cams.site].shape;
    for map in &cams.maps {
        assert_eq!((map.height(), map.width()), (shape[1], shape[2]));
        assert!(map.data().iter().all(|&v| v >= 0.0));
        assert!(map.max() > 0.0);
    }
    let upper_share = |m: &feedbacknet::SaliencyMap| {
        let half = BoundingBox::new(0.0, 0.0, m.width() as f32, m.height() as f32 / 2.0).unwrap();
        m.mass_fraction_in(&half)
    };
    let (d, c) = (upper_share(&cams.maps[0]), upper_share(&cams.maps[1]));
    assert!(d > 0.5, "dog: {d:.2} of the mass in the upper half");
    assert!(c < 0.5, "cat: {c:.2} of the mass in the upper half");
    // The peak of each map lies in its object's half.
    let peak_row = |m: &feedbacknet::SaliencyMap| {
        let i = m.data().iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        i / m.width()
    };
    assert!(peak_row(&cams.maps[0]) < shape[1] / 2);
    assert!(peak_row(&cams.maps[1]) >= shape[1] / 2);
}

#[test]
fn ten_crop_averaging_covers_the_image_and_differs_from_one_view() {
    let image = photo("data/imagenet-val-fullres/images/ILSVRC2012_val_00000011.JPEG");
    let net = squeezenet().with_method(Method::Gradient);
    let ten = net.with_crops(Crops::ten_for(net.input_spec()));
    let single = net.infer_top_k(&image, 1).unwrap().remove(0);
    let averaged = ten.infer_classes(&image, &[single.class.index]).unwrap().remove(0);
    let (w, h) = (image.width() as usize, image.height() as usize);
    assert_eq!((averaged.saliency.width(), averaged.saliency.height()), (w, h));
    assert!(averaged.boxes.iter().all(|b| inside(b, &image)));
    assert_ne!(averaged.saliency.data(), single.saliency.data());
    // Every pixel is seen by some crop (a centre crop alone would leave the corners at 0).
    let corner = BoundingBox::new(0.0, 0.0, w as f32 * 0.05, h as f32 * 0.05).unwrap();
    assert!(averaged.saliency.mass_fraction_in(&corner) > 0.0);
    // The same net explains any class; a bad 10-crop setting is a typed error.
    assert!(FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .crops(Crops::Ten { shorter_side: 0 })
        .build()
        .is_err());
}
