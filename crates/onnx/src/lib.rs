//! The network zoo: loads **any** ONNX CNN at run time and runs it with Burn tensor operations,
//! with a gate after every `Relu` and every `Clip(0, max)` (ReLU6).
//!
//! The file is parsed by `onnx-ir` (Burn's ONNX parser); its nodes are compiled into a small
//! program of [`feedbacknet_core::DynTensor`] operations whose shapes are computed from the real
//! tensors at run time (the parser's inferred shapes are not trusted). Weights are plain
//! tensors on the chosen device, so gradients only ever flow to gates and inputs.
//!
//! ```no_run
//! use feedbacknet_core::{Device, GatedNetwork};
//! use feedbacknet_onnx::OnnxNetwork;
//!
//! let net = OnnxNetwork::load("../shared/models/squeezenet1.1.onnx", &Device::flex())?;
//! assert_eq!(net.num_outputs(), 1000);
//! # Ok::<(), feedbacknet_onnx::OnnxError>(())
//! ```
#![warn(missing_docs)]

mod compile;
mod conv_weights;
mod error;
mod execute;
mod feature_map;
mod fold;
mod head;
mod kernels;
mod network;
mod ops;
mod pool;
mod prefix;
mod preset;
mod program;
mod reverse;
mod vjp;

pub use error::{OnnxError, Result};
pub use network::OnnxNetwork;
pub use preset::ModelPreset;
