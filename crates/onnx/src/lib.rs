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
//!
//! # Layout
//!
//! Loading runs top-down: `network` (the [`OnnxNetwork`] type and its [`GatedNetwork`] impl)
//! compiles the graph (`compile/`, one file per op family, `mod.rs` the dispatcher, then
//! `fold`'s rewrites) into a `program` of steps. `execute` runs the program forward (`ops`,
//! with `kernels` for the flex fast paths, `prefix` caching the gate-free steps); `reverse`
//! runs it backward (`vjp`, `pool`), the solver's gate steps fused in.
//!
//! # Adding an operator
//!
//! One file per concern:
//! 1. **Compile**: a function in the family file of `compile/` (or a new family file), reading
//!    the `onnx-ir` node's config into an `Op` with the `Compiler`'s helpers (`unary`, `nary`,
//!    `weight`, …) and refusing what it does not run with `unsupported`; one match arm in
//!    `compile/mod.rs`'s `dispatch` calls it.
//! 2. **Evaluate**: the `Op` variant, its `name` and its arm of `Op::run` in `ops.rs` (a flex
//!    fast path goes to `kernels`, beside this reference made of Burn tensor ops).
//! 3. **Reverse** (optional): a hand-written rule in `vjp.rs`'s `fast_vjp`. Without one the
//!    reverse pass (`reverse.rs`) differentiates the step by autodiff, so every op runs
//!    backward; a rule is for speed (gated activations are handled in `reverse.rs`).
//! 4. **Test**: a model using the operator in `tests/` (built in code like `tests/reverse.rs`'s
//!    `tiny_net`, or a shared net), its logits against a reference and its reverse pass
//!    against autodiff; a fast path or rule also gets a unit test beside it against the
//!    plain version (as `conv_weights.rs` and `pool.rs` have).
//!
//! [`GatedNetwork`]: feedbacknet_core::GatedNetwork
#![warn(missing_docs)]

mod compile;
mod conv_weights;
mod error;
mod execute;
mod feature_map;
mod fold;
mod head;
mod kernels;
mod metadata;
mod network;
mod ops;
mod pool;
mod prefix;
mod preset;
mod program;
mod reverse;
mod vjp;

pub use error::{OnnxError, Result};
pub use metadata::{MetadataError, read_metadata_props};
pub use network::OnnxNetwork;
pub use preset::ModelPreset;
