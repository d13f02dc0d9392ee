//! Tuning the box settings without tuning on the reported images (two-fold cross-validation).
//!
//! Each image's maps are computed once and stored unblurred at ground-truth size
//! ([`StoredImage`]); every point of a [`Grid`] (a map setting of [`Candidates`], a
//! [`Refinement`], a blur and a box threshold) is then scored on the stored maps, exactly as
//! an evaluation scores them: the caller's smoothing of the map, then the largest connected
//! component above the threshold. The halves are the images of even and of odd data set index
//! ([`Half`]); each half is tuned in turn and the other reported at the settings chosen there
//! ([`Fold`]), so no reported number is tuned on its own images.
//!
//! [`tune_method`] runs both folds and the given settings for one method; [`TuneResult`] is
//! what `feedbacknet tune --json` writes. Nothing here knows a network: the map settings are
//! an opaque, serializable `V` and the smoothing is a function the caller passes.
//!
//! The smoothing has the signature `Fn(&SaliencyMap, f32) -> Result<SaliencyMap, E>` (the map
//! and a blur of the grid), with any error type `E` that an [`crate::EvalError`] converts
//! into.

mod candidates;
mod folds;
mod grid;
mod result;
mod stored;

pub use candidates::Candidates;
pub use folds::{Fold, Half};
pub use grid::{Grid, GridPoint, Refinement, best_point};
pub use result::{MethodTuning, TuneResult, tune_method};
pub use stored::{PerturbedMaps, StoredImage};

#[cfg(test)]
mod tests;
