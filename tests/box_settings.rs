//! Each method boxes its map with the settings tuned for it on the net's dev images
//! (`BoxSettings::tuned`, at the builder's `BoxPriority`), unless the builder is given others.

mod common;

use common::{photo, shared};
use feedbacknet::{BoxPriority, BoxSettings, FeedbackNet, LocalizeConfig, Method, Request};

fn build(model: &str) -> feedbacknet::FeedbackNetBuilder {
    FeedbackNet::builder().model_path(shared().join("models").join(model))
}

#[test]
fn each_net_uses_its_own_tuned_settings_and_others_squeezenets() {
    for (file, net) in [
        ("squeezenet1.1.onnx", "squeezenet1.1"),
        ("mobilenet_v2_1.0_224.onnx", "mobilenet_v2_1.0_224"),
    ] {
        let loaded = build(file).build().unwrap();
        assert_eq!(loaded.model_info().boxes_tuned_on, net);
        assert!(loaded.model_info().to_string().contains(net));
        for method in Method::ALL {
            assert_eq!(
                loaded.box_settings(method),
                BoxSettings::tuned(Some(net), method),
                "{net} {method}"
            );
        }
    }
    // A net no preset knows (a torchvision export with random weights) gets SqueezeNet's.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/modern/shufflenet_v2_op13_sim.onnx"
    );
    let other = FeedbackNet::builder().model_path(fixture).build().unwrap();
    assert_eq!(other.model_info().boxes_tuned_on, "squeezenet1.1");
    assert_eq!(
        other.box_settings(Method::GradCam),
        BoxSettings::tuned(Some("squeezenet1.1"), Method::GradCam)
    );
}

#[test]
fn the_priority_picks_the_accurate_or_the_stable_settings() {
    let net = "mobilenet_v2_1.0_224";
    let accurate = build("mobilenet_v2_1.0_224.onnx").build().unwrap();
    let stable = build("mobilenet_v2_1.0_224.onnx")
        .box_priority(BoxPriority::Stable)
        .build()
        .unwrap();
    assert_eq!(accurate.model_info().box_priority, BoxPriority::Accurate);
    assert!(stable.model_info().to_string().contains("(stable)"));
    for method in Method::ALL {
        let [a, s] = BoxPriority::ALL.map(|p| BoxSettings::tuned_for(Some(net), method, p));
        assert_eq!(accurate.box_settings(method), a, "{method}");
        assert_eq!(stable.box_settings(method), s, "{method}");
    }
    // The default method's stable setting is another, without the colour refinement.
    let fc = Method::FeedbackCam;
    assert_ne!(stable.box_settings(fc), accurate.box_settings(fc));
    assert!(stable.box_settings(fc).refine.is_none());
    assert!(accurate.box_settings(fc).refine.is_some());
    // Settings given to the builder replace the priority's, whichever it is.
    let given = LocalizeConfig::default().with_threshold(0.33);
    let both = build("mobilenet_v2_1.0_224.onnx")
        .box_priority(BoxPriority::Stable)
        .localize(given)
        .build()
        .unwrap();
    assert_eq!(both.box_settings(fc).localize, given);
    assert_eq!(both.box_settings(fc).refine, None);
}

#[test]
fn methods_differ_and_given_settings_replace_the_tuned_ones() {
    let tuned = build("squeezenet1.1.onnx").build().unwrap();
    let settings: Vec<BoxSettings> = Method::ALL.iter().map(|&m| tuned.box_settings(m)).collect();
    assert!(
        settings.iter().any(|s| s.localize != settings[0].localize),
        "one setting for every method"
    );
    // localize(): every method.
    let given = LocalizeConfig::default()
        .with_threshold(0.33)
        .with_blur_sigma(3.0);
    let all = build("squeezenet1.1.onnx").localize(given).build().unwrap();
    assert!(
        Method::ALL
            .iter()
            .all(|&m| all.box_settings(m).localize == given)
    );
    // box_settings(): one method, the others keep theirs.
    let mut cam = BoxSettings::untuned();
    cam.localize = given;
    let one = build("squeezenet1.1.onnx")
        .box_settings(Method::GradCam, cam)
        .build()
        .unwrap();
    assert_eq!(one.box_settings(Method::GradCam), cam);
    assert_eq!(
        one.box_settings(Method::Gradient),
        tuned.box_settings(Method::Gradient)
    );
    // Out of range: a typed error, at build and on a copy.
    let mut bad = cam;
    bad.localize = bad.localize.with_threshold(1.5);
    assert!(
        build("squeezenet1.1.onnx")
            .box_settings(Method::GradCam, bad)
            .build()
            .is_err()
    );
    assert!(tuned.with_box_settings(Method::GradCam, bad).is_err());
}

#[test]
fn the_boxes_are_those_of_the_methods_own_settings() {
    let image = photo("data/demo/darknet_dog.jpg");
    let net = build("squeezenet1.1.onnx").build().unwrap();
    let request = Request::class("bull mastiff").methods([Method::GradCam, Method::Gradient]);
    let found: Vec<_> = net.explain(&image, &request).unwrap().into_iter().collect();
    for r in &found {
        // The same boxes from a net given exactly this method's settings for every method.
        let own = net.box_settings(r.method);
        let given = build("squeezenet1.1.onnx")
            .localize(own.localize)
            .refine(own.refine)
            .build()
            .unwrap();
        let alone = given
            .with_method(r.method)
            .infer(&image, "bull mastiff")
            .unwrap();
        assert_eq!(alone.boxes, r.boxes, "{}", r.method);
    }
    // The two methods' settings differ, so boxing Grad-CAM's map at the gradient's setting
    // changes its smoothed map.
    let cam = found.iter().find(|r| r.method == Method::GradCam).unwrap();
    let gradient_settings = net.box_settings(Method::Gradient);
    let at_other = build("squeezenet1.1.onnx")
        .localize(gradient_settings.localize)
        .build()
        .unwrap()
        .with_method(Method::GradCam)
        .infer(&image, "bull mastiff")
        .unwrap();
    assert_ne!(at_other.smoothed.data(), cam.smoothed.data());
}
