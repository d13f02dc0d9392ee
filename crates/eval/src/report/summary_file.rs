//! The machine-readable summary: metrics, configuration, model hash, timings.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result, io_error};
use crate::metrics::{ImageRecord, Summary};

/// Time statistics of a run, from the records' `time_ms` (explaining and
/// measuring, not decoding) of the successfully evaluated images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Images timed.
    pub images: usize,
    /// Sum of the per-image times, in ms.
    pub total_ms: f64,
    /// Mean per-image time, in ms (0 without images).
    pub mean_ms: f64,
    /// Median per-image time, in ms.
    pub median_ms: f64,
    /// 95th percentile (nearest rank) of the per-image time, in ms.
    pub p95_ms: f64,
    /// Slowest image, in ms.
    pub max_ms: f64,
    /// Wall-clock time of the whole run in seconds, if the caller measured it.
    pub wall_s: Option<f64>,
}

impl Timings {
    /// Statistics over the records that did not fail.
    pub fn from_records(records: &[ImageRecord]) -> Self {
        let mut times: Vec<f64> = records
            .iter()
            .filter(|r| !r.is_failed())
            .map(|r| r.time_ms)
            .collect();
        times.sort_by(f64::total_cmp);
        let total_ms: f64 = times.iter().sum();
        let rank = |q: f64| nearest_rank(&times, q);
        Self {
            images: times.len(),
            total_ms,
            mean_ms: if times.is_empty() {
                0.0
            } else {
                total_ms / times.len() as f64
            },
            median_ms: rank(0.5),
            p95_ms: rank(0.95),
            max_ms: times.last().copied().unwrap_or(0.0),
            wall_s: None,
        }
    }

    /// Sets [`Timings::wall_s`].
    pub fn with_wall_s(mut self, seconds: f64) -> Self {
        self.wall_s = Some(seconds);
        self
    }
}

/// The `q` quantile of sorted values by the nearest-rank method (0 if empty).
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(0.0)
}

/// Contents of the summary JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryFile {
    /// The metrics.
    pub summary: Summary,
    /// The run's configuration, as the caller describes it.
    pub config: serde_json::Value,
    /// SHA-256 of the model file, lowercase hex (see [`sha256_file`]).
    pub model_sha256: String,
    /// Time statistics.
    pub timings: Timings,
}

/// Writes `contents` as pretty-printed JSON to `path`: to `<path>.tmp` first, renamed over
/// `path` once complete, so that a run killed while writing leaves the previous summary (or
/// none), never half of one.
pub fn summary_json(path: &Path, contents: &SummaryFile) -> Result<()> {
    let json = serde_json::to_string_pretty(contents).map_err(|source| EvalError::Json {
        what: "the summary",
        source,
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, json + "\n").map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

/// SHA-256 of a file's bytes, as 64 lowercase hex digits.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
