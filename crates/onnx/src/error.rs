use std::path::PathBuf;

use thiserror::Error;

/// Errors while loading an ONNX model.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("cannot read ONNX file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty (0 bytes); `onnx-ir` would accept it as a model with no nodes.
    #[error("ONNX file {path} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The ONNX parser rejected the file.
    #[error("cannot parse ONNX model {path}: {reason}")]
    Parse {
        /// The file (or `<bytes>`).
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The graph uses an operator this interpreter does not implement.
    #[error("unsupported ONNX operator `{op}` at node `{node}`")]
    UnsupportedOperator {
        /// The operator.
        op: String,
        /// The node's name.
        node: String,
    },
    /// Several nodes the interpreter does not run: every unsupported operator with the nodes
    /// that use it (in graph order), and every refused configuration of a supported one.
    #[error("{}", describe_refusals(ops, configs))]
    UnsupportedOperators {
        /// Per unsupported operator, the names of the nodes that use it.
        ops: Vec<(String, Vec<String>)>,
        /// The messages of the nodes refused for their configuration (see
        /// [`OnnxError::UnsupportedConfig`]).
        configs: Vec<String>,
    },
    /// A supported operator with an attribute value or input form that is not supported.
    #[error("node `{node}` ({op}): unsupported configuration: {reason}")]
    UnsupportedConfig {
        /// The operator.
        op: String,
        /// The node's name.
        node: String,
        /// What is not supported.
        reason: String,
    },
    /// A weight tensor holds NaN or infinite values.
    #[error("weights of node `{node}` ({input}) contain NaN or infinite values")]
    NonFiniteWeights {
        /// The node.
        node: String,
        /// Which input of the node.
        input: String,
    },
    /// The graph is structurally unusable (no input, no output, a missing value...).
    #[error("invalid ONNX graph: {0}")]
    InvalidGraph(String),
    /// Running the graph once (to learn its shapes) failed.
    #[error("running the model failed: {0}")]
    Run(#[from] feedbacknet_core::CoreError),
}

/// "unsupported ONNX operators: Foo (nodes a, b), Bar (node c); unsupported configurations: …".
fn describe_refusals(ops: &[(String, Vec<String>)], configs: &[String]) -> String {
    let mut parts = Vec::new();
    if !ops.is_empty() {
        let listed: Vec<String> = ops
            .iter()
            .map(|(op, nodes)| {
                let noun = if nodes.len() == 1 { "node" } else { "nodes" };
                format!("{op} ({noun} {})", nodes.join(", "))
            })
            .collect();
        parts.push(format!("unsupported ONNX operators: {}", listed.join(", ")));
    }
    if !configs.is_empty() {
        parts.push(format!(
            "unsupported configurations: {}",
            configs.join("; ")
        ));
    }
    parts.join("; ")
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, OnnxError>;
