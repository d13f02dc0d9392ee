use feedbacknet_core::CoreError;
use thiserror::Error;

/// Errors of the solvers.
#[derive(Debug, Error)]
pub enum SolverError {
    /// A target class index is not a valid logit of the network.
    #[error("class {class} is out of range: the network has {classes} outputs")]
    ClassOutOfRange {
        /// The requested logit index.
        class: usize,
        /// Number of logits.
        classes: usize,
    },
    /// The number of targets does not match the batch.
    #[error("{targets} target classes for a batch of {batch}")]
    BatchMismatch {
        /// Number of targets.
        targets: usize,
        /// Batch size of the input.
        batch: usize,
    },
    /// The input holds NaN or infinite values.
    #[error("the input contains NaN or infinite values")]
    NonFiniteInput,
    /// The gradient became NaN or infinite while solving.
    #[error("the solver diverged (non-finite gradient) at iteration {iteration}")]
    Diverged {
        /// The iteration at which it happened.
        iteration: usize,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid solver setting {name} = {value}: {reason}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// No gate site fits the requested Grad-CAM layer.
    #[error(
        "no feature map for Grad-CAM matches {layer} among {sites} gate sites (it must be a [C, H, W] activation larger than 1x1)"
    )]
    NoCamLayer {
        /// The requested layer.
        layer: String,
        /// Number of gate sites of the network.
        sites: usize,
    },
    /// The network failed.
    #[error(transparent)]
    Network(#[from] CoreError),
    /// A saliency map could not be built.
    #[error(transparent)]
    Map(#[from] feedbacknet_localize::LocalizeError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SolverError>;
