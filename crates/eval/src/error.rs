//! The crate's error type.

use std::path::PathBuf;

use feedbacknet_localize::LocalizeError;
use thiserror::Error;

/// Everything that can go wrong while loading data sets, measuring maps,
/// reading or writing results and writing reports.
///
/// Errors about a file name the file (and, where it applies, the 1-based
/// line). The library never panics on bad input and never prints.
#[derive(Debug, Error)]
pub enum EvalError {
    /// Reading, writing or listing a file or folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A line or element of a data set or results file could not be parsed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// [`crate::Dataset::open`] found no layout it knows at the path.
    #[error("{path}: unknown data set layout: {reason}")]
    UnknownLayout {
        /// The path given.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
    /// [`crate::Dataset::open`] read a data set without a single image.
    #[error("{}: the data set has no images (only a header, or no annotation lines)", path.display())]
    EmptyDataset {
        /// The path given.
        path: PathBuf,
    },
    /// A shard specification that is not `I/N` with `1 <= I <= N`.
    #[error("invalid shard {spec:?}: {reason}")]
    InvalidShard {
        /// The text given.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A parameter outside its documented range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Two records for the same image disagree (see [`crate::merge`]).
    #[error("conflicting records for image {index} ({id}) in {first} and {second}")]
    ConflictingRecords {
        /// The image's index in data set order.
        index: usize,
        /// The image's id.
        id: String,
        /// File holding the first record.
        first: PathBuf,
        /// File holding the second record.
        second: PathBuf,
    },
    /// A results file holds a record whose id is not the data set's image
    /// at that index: the file belongs to another data set.
    #[error("{path}: record {index} is {found:?} but the data set's image {index} is {expected:?}")]
    DatasetMismatch {
        /// The results file.
        path: PathBuf,
        /// Index of the record.
        index: usize,
        /// Id in the data set.
        expected: String,
        /// Id in the results file.
        found: String,
    },
    /// A record's MaxBox sweep has another length than the configured sweep.
    #[error("record {index} has {got} MaxBox IoUs, the sweep has {expected} thresholds")]
    SweepMismatch {
        /// Index of the record.
        index: usize,
        /// Number of thresholds of the sweep.
        expected: usize,
        /// Number of values in the record.
        got: usize,
    },
    /// [`crate::ResumePolicy::Fresh`] was asked for, but the results file
    /// already holds data.
    #[error("{path} already holds results: resume, or choose another file or the overwrite policy")]
    ResultsExist {
        /// The results file.
        path: PathBuf,
    },
    /// A decoding worker stopped before delivering an image.
    #[error("the image decoding worker stopped before delivering {id}")]
    DecoderStopped {
        /// The image that was not delivered.
        id: String,
    },
    /// A saliency-map operation failed (empty map, invalid parameter, ...).
    #[error(transparent)]
    Localize(#[from] LocalizeError),
    /// Serializing to JSON failed.
    #[error("JSON encoding of {what}: {source}")]
    Json {
        /// What was being encoded.
        what: &'static str,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// A grid manifest names an image that is not the data set's image of that index: the
    /// manifest was made from another data set.
    #[error("the grid manifest's image {index} is {expected:?} but the data set's is {found:?}")]
    ManifestMismatch {
        /// The image's index.
        index: usize,
        /// Its id in the manifest.
        expected: String,
        /// Its id in the data set (`None`: no image of that index).
        found: Option<String>,
    },
    /// An image file could not be read or decoded.
    #[error(transparent)]
    Image(#[from] crate::image_file::ImageFileError),
    /// Encoding a PNG failed.
    #[error("PNG encoding: {0}")]
    Png(#[from] image::ImageError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, EvalError>;

/// Builds an [`EvalError::Io`] naming `path`.
pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EvalError {
    let path = path.into();
    move |source| EvalError::Io { path, source }
}

/// Builds an [`EvalError::Parse`].
pub(crate) fn parse_error(
    path: impl Into<PathBuf>,
    line: usize,
    message: impl Into<String>,
) -> EvalError {
    EvalError::Parse {
        path: path.into(),
        line,
        message: message.into(),
    }
}

/// Builds an [`EvalError::InvalidParameter`].
pub(crate) fn invalid(
    name: &'static str,
    value: impl std::fmt::Debug,
    reason: impl Into<String>,
) -> EvalError {
    EvalError::InvalidParameter {
        name,
        value: format!("{value:?}"),
        reason: reason.into(),
    }
}
