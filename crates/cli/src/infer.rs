//! `feedbacknet infer`.

use std::time::Instant;

use feedbacknet::{LoadedImage, Request, load_image_with};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    args::InferArgs,
    error::Result,
    net::{box_line, build, model_path, objective_for_classes, settings_line, with_refine},
    output::{Report, write_overlays, write_report},
};

pub fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub fn run(mut args: InferArgs) -> Result<()> {
    let started = Instant::now();
    let bar = spinner();
    let asked = match args.class.len() {
        0 => args.top_k.unwrap_or(1),
        n => n,
    };
    if let Some(note) = objective_for_classes(&mut args.settings, asked) {
        bar.suspend(|| eprintln!("{note}"));
    }
    let model = model_path(&args.model);
    bar.set_message(format!("loading {}", model.display()));
    let net = with_refine(
        build(&args.model, &args.settings, args.method)?,
        args.refine,
    );
    bar.suspend(|| {
        eprintln!("{}", settings_line(&net));
        eprintln!("boxes: {}", box_line(&net, args.method));
    });
    // Refused before any work: more classes than the net has would all be batched.
    let top_k = net.check_top_k(args.top_k.unwrap_or(1))?;
    bar.set_message(format!("reading {}", args.image.display()));
    let LoadedImage { image, warnings } = load_image_with(&args.image, &args.decode.options())?;
    bar.suspend(|| print_warnings(&args.image, &warnings));
    let predictions = net.predict(&image, 5)?;
    let classes: Vec<usize> = if args.class.is_empty() {
        net.predict(&image, top_k)?
            .iter()
            .map(|p| p.class.index)
            .collect()
    } else {
        args.class
            .iter()
            .map(|c| net.class_index(c.clone()))
            .collect::<feedbacknet::Result<_>>()?
    };
    bar.set_message(format!(
        "{} for {} class{}",
        args.method,
        classes.len(),
        if classes.len() == 1 { "" } else { "es" }
    ));
    // Classes go in batches of at most --max-batch: each batch's maps are drawn and dropped
    // before the next, so memory stays bounded for any number of classes.
    let rgb = image.to_rgb8();
    let mut entries = Vec::with_capacity(classes.len());
    let mut written = Vec::with_capacity(classes.len() + 1);
    for chunk in classes.chunks(args.settings.max_batch.max(1)) {
        let request = Request::classes(chunk.iter().copied());
        let results: Vec<_> = net.explain(&image, &request)?.into_iter().collect();
        let (found, paths) = write_overlays(&args.out, &args.image, &rgb, &results)?;
        entries.extend(found);
        written.extend(paths);
        for r in &results {
            let best = r
                .best_box()
                .map(|b| format!("[{:.0}, {:.0}, {:.0}, {:.0}]", b.x0, b.y0, b.x1, b.y1))
                .unwrap_or_else(|| "none".into());
            bar.suspend(|| {
                println!(
                    "{:>4} {:<28} logit {:>8.3} -> {:>10.3}  box {best}",
                    r.class.index, r.class.label, r.logit_before, r.logit_after
                )
            });
        }
    }
    bar.set_message("writing results");
    let report = Report::new(&args, &model, &net, &image, predictions, entries, started)
        .with_warnings(warnings);
    written.push(write_report(&args.out, &args.image, &report)?);
    bar.finish_and_clear();
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Prints the warnings of an image accepted damaged, on stderr.
pub fn print_warnings(image: &std::path::Path, warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {}: {warning}", image.display());
    }
}
