//! What a tuning run finds for one method, and the record `feedbacknet tune --json` writes.

use feedbacknet_localize::SaliencyMap;
use serde::Serialize;

use crate::error::EvalError;
use crate::tune::candidates::Candidates;
use crate::tune::folds::{Fold, at_given, two_fold};
use crate::tune::grid::{Grid, GridPoint};
use crate::tune::stored::{StoredImage, check_stored};

/// Both folds, the grid and the given settings of one method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodTuning<V> {
    /// Median time per image of the prediction and the map, in ms.
    pub median_ms: f64,
    /// Every image at the given blur and threshold (what an evaluation at those settings
    /// reports).
    pub at_given_settings: Fold<V>,
    /// The scored grid of each half: `("even", points)`, `("odd", points)`.
    pub grid: Vec<(String, Vec<GridPoint<V>>)>,
    /// Tuned on the even half and reported on the odd one, then the reverse.
    pub folds: Vec<Fold<V>>,
    /// Mean over the two folds of the held-out GT-known accuracy.
    pub held_out_gt_known_loc: f64,
    /// Mean over the two folds of the held-out MaxBoxAccV2.
    pub held_out_maxbox_acc_v2: f64,
}

/// One method's tuning with what it ran on: one entry of `feedbacknet tune --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneResult<V> {
    /// The method's name.
    pub method: String,
    /// The model file.
    pub model: String,
    /// The data set.
    pub data: String,
    /// Images scored.
    pub images: usize,
    /// Ids of the images whose maps failed (left out).
    pub failed: Vec<String>,
    /// The method settings given (the grid overrides blur and threshold).
    pub settings: serde_json::Value,
    /// The numbers.
    #[serde(flatten)]
    pub tuning: MethodTuning<V>,
}

/// Tunes the `m`-th method of `stored` over `candidates` and `grid`: both folds and every
/// image at the given settings. `smooth` blurs a stored map at a grid blur before it is
/// thresholded (the same smoothing an evaluation applies).
///
/// Errors: stored images without `candidates.variants().len()` maps and a time for method
/// `m`, an empty grid, and whatever measuring or `smooth` fails with.
pub fn tune_method<V, E, S>(
    stored: &[StoredImage],
    m: usize,
    candidates: &Candidates<V>,
    grid: &Grid,
    smooth: S,
) -> Result<MethodTuning<V>, E>
where
    V: Clone,
    E: From<EvalError> + Send,
    S: Fn(&SaliencyMap, f32) -> Result<SaliencyMap, E> + Sync,
{
    grid.validate()?;
    check_stored(stored, m, candidates.variants().len())?;
    let (points, folds) = two_fold(stored, m, candidates, grid, &smooth)?;
    let at_given_settings = at_given(stored, m, candidates, grid, &smooth)?;
    let mean = |f: fn(&Fold<V>) -> f64| folds.iter().map(f).sum::<f64>() / folds.len() as f64;
    Ok(MethodTuning {
        median_ms: median(
            stored
                .iter()
                .filter_map(|s| s.times_ms.get(m).copied())
                .collect(),
        ),
        at_given_settings,
        held_out_gt_known_loc: mean(|f| f.reported.gt_known_loc),
        held_out_maxbox_acc_v2: mean(|f| f.reported.maxbox_acc_v2),
        grid: points,
        folds,
    })
}

/// The upper median (0 for none).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
