//! One network shared by several threads at once: every call finishes, with the result it has
//! alone.
//!
//! The inferences run on the CPU thread pool, where a worker that waits inside a parallel
//! kernel may pick up another thread's whole inference. A lock held across tensor work (the
//! gate-site probe, the prefix cache) can then deadlock: the picked-up inference waits for a
//! lock that its own thread holds. That interleaving is rare, so these tests run many such
//! calls under a deadline, and check that sharing a net changes no result.

mod common;

use std::{
    sync::{Arc, Barrier, mpsc},
    thread,
    time::Duration,
};

use common::{photo, shared};
use feedbacknet::{DynamicImage, FeedbackNet, Method, Request, SolverConfig};

/// A fresh net: no gate sites probed and no prefix cached yet.
fn squeezenet() -> FeedbackNet {
    FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(SolverConfig::default().with_iterations(3))
        .build()
        .expect("SqueezeNet loads")
}

/// The saliency maps of every (image, method) pair, in order.
type Maps = Vec<Vec<f32>>;

fn explain(net: &FeedbackNet, images: &[DynamicImage], class: usize) -> Maps {
    let mut maps = Vec::new();
    for image in images {
        for method in [Method::Feedback, Method::Gradient] {
            let r = net
                .with_method(method)
                .infer(image, class)
                .expect("inference");
            maps.push(r.saliency.data().to_vec());
        }
    }
    maps
}

#[test]
fn threads_sharing_one_net_all_finish_with_their_own_results() {
    let images = [
        photo("data/demo/darknet_dog.jpg"),
        photo("data/imagenet-val-fullres/images/ILSVRC2012_val_00000011.JPEG"),
    ];
    let net = Arc::new(squeezenet());
    let class = net.class_index("bicycle-built-for-two").unwrap();
    const THREADS: usize = 4;
    let start = Arc::new(Barrier::new(THREADS));
    let (done, results) = mpsc::channel();
    for t in 0..THREADS {
        let (net, start, done) = (net.clone(), start.clone(), done.clone());
        // Each thread takes the images in its own order, so that different inputs meet.
        let mut mine = images.to_vec();
        mine.rotate_left(t % images.len());
        thread::spawn(move || {
            start.wait();
            let maps = explain(&net, &mine, class);
            let _ = done.send((t, maps));
        });
    }
    drop(done);
    let mut concurrent = vec![None; THREADS];
    for _ in 0..THREADS {
        let (t, maps) = results
            .recv_timeout(Duration::from_secs(600))
            .expect("a thread panicked (see above) or was still running after 10 minutes");
        concurrent[t] = Some(maps);
    }
    // The same calls one after another, on a fresh net.
    let alone = explain(&squeezenet(), &images, class);
    for (t, maps) in concurrent.into_iter().enumerate() {
        let mut maps = maps.expect("every thread reported");
        let shift = t % images.len();
        // Back to the image order of `alone` (two maps per image).
        maps.rotate_right(2 * shift);
        assert_eq!(maps.len(), alone.len());
        for (i, (got, want)) in maps.iter().zip(&alone).enumerate() {
            assert_eq!(got, want, "thread {t}, map {i}");
        }
    }
}

/// Fresh nets, each first called by two threads a few milliseconds apart: the second call
/// arrives while the first probes the net's gate sites, with the pool's workers busy on it.
#[test]
fn a_call_arriving_during_another_calls_first_probe_finishes() {
    let image = Arc::new(photo("data/demo/darknet_dog.jpg"));
    let (done, results) = mpsc::channel();
    thread::spawn(move || {
        for trial in 0..24u64 {
            let net = Arc::new(squeezenet());
            let class = net.class_index("bicycle-built-for-two").unwrap();
            let callers: Vec<_> = (0..2u64)
                .map(|caller| {
                    let (net, image) = (net.clone(), image.clone());
                    thread::spawn(move || {
                        thread::sleep(Duration::from_micros(caller * 1250 * trial));
                        let request = Request::class(class).method(Method::GradCam);
                        net.explain(&image, &request)
                            .map(|r| r.method(0)[0].saliency.max())
                    })
                })
                .collect();
            for caller in callers {
                let max = caller.join().expect("no panic").expect("inference");
                assert!(max > 0.0, "trial {trial}: an empty map");
            }
        }
        let _ = done.send(());
    });
    results
        .recv_timeout(Duration::from_secs(600))
        .expect("a trial failed (see above) or the 24 were still running after 10 minutes");
}
