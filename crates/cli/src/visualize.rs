//! `feedbacknet visualize`: class model visualization (Simonyan et al., 2014, §2).

use feedbacknet::VisualizeConfig;

use crate::{
    args::{MethodArgs, VisualizeArgs},
    error::{CliError, Result},
    infer::spinner,
    net::{build, settings_line},
    output::write_png,
};

pub fn run(args: VisualizeArgs) -> Result<()> {
    let bar = spinner();
    bar.set_message("loading the model");
    let settings = MethodArgs::defaults();
    let net = build(&args.model, &settings, feedbacknet::Method::Gradient)?;
    bar.suspend(|| eprintln!("{}", settings_line(&net)));
    let class = net.class_index(args.class.clone())?;
    let label = net
        .labels()
        .get(class)
        .map(|l| l.name().to_string())
        .unwrap_or_default();
    bar.set_message(format!(
        "{} steps of gradient ascent on {label}",
        args.steps
    ));
    let config = VisualizeConfig::default()
        .with_steps(args.steps)
        .with_learning_rate(args.learning_rate)
        .with_l2(args.l2)
        .with_jitter(args.jitter)
        .with_blur(args.blur_every, args.blur_sigma)
        .with_init_noise(args.init_noise)
        .with_seed(args.seed);
    let vis = net.visualize(class, &config)?;
    let (width, height, rgb) = vis.to_rgb8().map_err(feedbacknet::Error::from)?;
    let picture = image::RgbImage::from_raw(width as u32, height as u32, rgb).ok_or_else(|| {
        CliError::Encode {
            path: args.out.clone(),
            reason: "the visualization has the wrong size".into(),
        }
    })?;
    write_png(&args.out, &picture)?;
    bar.finish_and_clear();
    println!(
        "{class} {label}: logit {:.2} (mean image) -> {:.2} after {} steps",
        vis.logit_start, vis.logit_end, args.steps
    );
    println!("wrote {}", args.out.display());
    Ok(())
}
