//! `feedbacknet models`: the presets and where their files are.

use std::path::Path;

use feedbacknet::{BoxPriority, BoxSettings, Method, ModelPreset};

use crate::{error::Result, net::describe_boxes, paths::resolve_dir};

/// Lists the presets, whether their files are in `models_dir`, and each method's box settings
/// (tuned on the net's dev images; a net without a preset gets SqueezeNet 1.1's): the most
/// accurate one, then the stable one where it has one.
pub fn run(models_dir: &Path) -> Result<()> {
    let dir = resolve_dir(models_dir);
    println!("models folder: {}", dir.display());
    for preset in ModelPreset::all() {
        let path = dir.join(preset.file);
        let status = if path.is_file() { "found" } else { "missing" };
        println!(
            "{:<24} {:<8} {:>3}x{:<3} offset {}  {}",
            preset.name,
            status,
            preset.input_size,
            preset.input_size,
            preset.class_offset,
            preset.description
        );
        for method in Method::ALL {
            let tuned = |priority| BoxSettings::tuned_for(Some(preset.name), method, priority);
            let (accurate, stable) = (tuned(BoxPriority::Accurate), tuned(BoxPriority::Stable));
            println!("    {}", describe_boxes(method, &accurate));
            if stable != accurate {
                println!(
                    "    {} (--box-priority stable)",
                    describe_boxes(method, &stable)
                );
            }
        }
    }
    Ok(())
}
