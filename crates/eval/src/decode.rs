//! Image decoding on worker threads, delivered in order through bounded channels.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use image::{DynamicImage, ImageReader};

use crate::dataset::Sample;

/// A decoded image, or why it could not be decoded.
pub(crate) type Decoded = Result<DynamicImage, String>;

/// Reads and decodes an image, guessing its format from its content.
pub(crate) fn decode(path: &Path) -> Decoded {
    let fail = |e: &dyn std::fmt::Display| format!("cannot decode {}: {e}", path.display());
    let reader = ImageReader::open(path).map_err(|e| fail(&e))?;
    let reader = reader.with_guessed_format().map_err(|e| fail(&e))?;
    reader.decode().map_err(|e| fail(&e))
}

/// Starts `threads` workers; worker `w` decodes `todo[w]`, `todo[w + threads]`,
/// ... into its own channel, so receiving from channel `i % threads` for
/// `i = 0, 1, ...` yields the images in order. `prefetch` images in all
/// are decoded ahead. A worker stops when its receiver is dropped.
pub(crate) fn spawn_decoders<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    todo: &'env [&'env Sample],
    threads: usize,
    prefetch: usize,
) -> Vec<Receiver<Decoded>> {
    let capacity = (prefetch / threads).max(1);
    (0..threads)
        .map(|w| {
            let (tx, rx) = sync_channel(capacity);
            scope.spawn(move || worker(todo, w, threads, tx));
            rx
        })
        .collect()
}

fn worker(todo: &[&Sample], first: usize, step: usize, tx: SyncSender<Decoded>) {
    for sample in todo.iter().skip(first).step_by(step) {
        if tx.send(decode(&sample.path)).is_err() {
            return;
        }
    }
}
