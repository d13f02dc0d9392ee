use thiserror::Error;

/// Errors of the core crate and of any [`GatedNetwork`](crate::GatedNetwork) at run time.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A tensor had a shape the operation cannot accept.
    #[error("shape mismatch in {context}: expected {expected}, got {got:?}")]
    Shape {
        /// Where the mismatch happened.
        context: String,
        /// What was expected, in words.
        expected: String,
        /// The shape that was found.
        got: Vec<usize>,
    },
    /// A tensor rank outside the supported range (1 to 6).
    #[error("unsupported tensor rank {rank} in {context} (supported: 1 to 6)")]
    Rank {
        /// Where it happened.
        context: String,
        /// The rank found.
        rank: usize,
    },
    /// A network node failed while running the forward pass.
    #[error("node `{node}` ({op}) failed: {reason}")]
    Forward {
        /// The node's name.
        node: String,
        /// The operator.
        op: String,
        /// What went wrong.
        reason: String,
    },
    /// The gate set does not match the network's gate sites.
    #[error("gate set does not fit the network: {0}")]
    GateMismatch(String),
    /// Input values were not finite (NaN or infinite).
    #[error("{what} contains non-finite values (NaN or infinity)")]
    NonFinite {
        /// Which tensor.
        what: String,
    },
    /// The network does not implement the requested operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A tensor could not be read back from its device.
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
}

/// Result alias of the core crate.
pub type Result<T> = std::result::Result<T, CoreError>;
