//! Image decoding on worker threads, delivered in order through bounded channels.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use crate::dataset::Sample;
use crate::image_file::{DecodeOptions, ImageFileError, LoadedImage, decode_image_file};

/// A decoded image, or why it could not be decoded (under the run's [`DecodeOptions`]).
pub(crate) type Decoded = Result<LoadedImage, ImageFileError>;

/// Starts `threads` workers; worker `w` decodes `todo[w]`, `todo[w + threads]`,
/// ... into its own channel, so receiving from channel `i % threads` for
/// `i = 0, 1, ...` yields the images in order. `prefetch` images in all
/// are decoded ahead. A worker stops when its receiver is dropped.
pub(crate) fn spawn_decoders<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    todo: &'env [&'env Sample],
    threads: usize,
    prefetch: usize,
    options: DecodeOptions,
) -> Vec<Receiver<Decoded>> {
    let capacity = (prefetch / threads).max(1);
    (0..threads)
        .map(|w| {
            let (tx, rx) = sync_channel(capacity);
            scope.spawn(move || worker(todo, w, threads, &options, tx));
            rx
        })
        .collect()
}

fn worker(
    todo: &[&Sample],
    first: usize,
    step: usize,
    options: &DecodeOptions,
    tx: SyncSender<Decoded>,
) {
    for sample in todo.iter().skip(first).step_by(step) {
        if tx.send(decode_image_file(&sample.path, options)).is_err() {
            return;
        }
    }
}
