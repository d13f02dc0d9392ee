//! GT-known localization accuracy on the shared ILSVRC 2012 dev images (403 images with boxes):
//! the box of the true class is correct when its IoU with a ground-truth box of that class is
//! at least 0.5 (images resized to the input without crop, as in wsolevaluation).
//!
//! ```text
//! cargo run --release --example dev_localization -- [--limit N] [--methods feedback,gradient]
//!     [--objective logit|log-softmax] [--iterations N] [--lambda L] [--blur SIGMA] [--threshold T]
//! ```

use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use feedbacknet::{
    BoundingBox, FeedbackNet, LocalizeConfig, Method, Objective, SolverConfig, load_image,
};

struct Args {
    limit: usize,
    methods: Vec<Method>,
    solver: SolverConfig,
    localize: LocalizeConfig,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        limit: usize::MAX,
        methods: vec![Method::Feedback, Method::Gradient],
        solver: SolverConfig::default(),
        localize: LocalizeConfig::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f32>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--limit" => args.limit = value.parse().map_err(|e| format!("{e}"))?,
            "--methods" => {
                args.methods = value.split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            "--objective" => args.solver.objective = value.parse::<Objective>()?,
            "--iterations" => args.solver.iterations = num(&value)? as usize,
            "--lambda" => args.solver.lambda = num(&value)?,
            "--blur" => args.localize = args.localize.with_blur_sigma(num(&value)?),
            "--threshold" => args.localize = args.localize.with_threshold(num(&value)?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn shared() -> PathBuf {
    std::env::var_os("FEEDBACKNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")))
}

/// image path -> (true class, ground-truth boxes in stored-image pixels)
fn read_boxes(path: &PathBuf) -> Result<BTreeMap<String, (usize, Vec<BoundingBox>)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out: BTreeMap<String, (usize, Vec<BoundingBox>)> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f[i].parse::<f32>().map_err(|e| format!("{line}: {e}"));
        let class = f[1].parse::<usize>().map_err(|e| e.to_string())?;
        let b = BoundingBox::new(num(5)?, num(6)?, num(7)?, num(8)?).map_err(|e| e.to_string())?;
        out.entry(f[0].to_string())
            .or_insert((class, Vec::new()))
            .1
            .push(b);
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let data = shared().join("data/imagenet-val");
    let images = read_boxes(&data.join("boxes.csv"))?;
    let base = FeedbackNet::builder()
        .model_path(shared().join("models/squeezenet1.1.onnx"))
        .solver(args.solver.clone())
        .localize(args.localize)
        .build()?;
    println!("solver {:?}\nlocalize {:?}", args.solver, args.localize);
    let mut correct = vec![0usize; args.methods.len()];
    let mut seconds = vec![0f64; args.methods.len()];
    let mut n = 0usize;
    for (file, (class, gt)) in images.iter().take(args.limit) {
        let image = load_image(data.join(file))?;
        for (m, method) in args.methods.iter().enumerate() {
            let started = Instant::now();
            let result = base.with_method(*method).infer(&image, *class)?;
            seconds[m] += started.elapsed().as_secs_f64();
            let hit = result
                .best_box()
                .is_some_and(|b| gt.iter().any(|g| g.iou(b) >= 0.5));
            correct[m] += usize::from(hit);
        }
        n += 1;
        if n.is_multiple_of(25) {
            let so_far: Vec<String> = args
                .methods
                .iter()
                .zip(&correct)
                .map(|(m, c)| format!("{m} {:.1}%", 100.0 * *c as f64 / n as f64))
                .collect();
            eprintln!("{n} images: {}", so_far.join(", "));
        }
    }
    println!("images: {n}");
    for (m, method) in args.methods.iter().enumerate() {
        println!(
            "{method}: GT-known loc {:.1}% ({}/{n}), {:.0} ms/image",
            100.0 * correct[m] as f64 / n as f64,
            correct[m],
            1e3 * seconds[m] / n as f64
        );
    }
    Ok(())
}
