//! The network zoo: loads **any** ONNX CNN at run time and runs it with Burn tensor operations,
//! with a gate after every activation that makes a net's units.
//!
//! # Which activations carry gates
//!
//! Gated (one gate site each, per neuron or per channel): `Relu`, `Clip(0, max)` (ReLU6),
//! `HardSwish`, `Gelu` (exact and tanh forms), `LeakyRelu`, `Elu`, `Mish`, `PRelu` (a constant
//! slope, one for all channels or one per channel), `Swish` with alpha 1, and the patterns
//! exporters write for SiLU (`Sigmoid` + `Mul`), HardSwish (`HardSigmoid` + `Mul`) and exact
//! GELU (`Div`/`Erf`/`Add`/`Mul`/`Mul`), each fused into one gated activation first
//! (`compile/fuse.rs`). In a transformer the MLP's activation (GELU) is gated, and with
//! [`GatePlacement::AttentionHeads`] ([`OnnxNetwork::load_with`]) each attention's output too,
//! one gate per head (`head_gates`). Ungated: `Sigmoid`, `HardSigmoid`, `Tanh`, `Softplus`
//! (squeeze-and-excitation scales and the like), `Clip` with another lower bound, `Softmax`.
//! The backward rules at gated activations (guided backprop, DeconvNet) generalise from ReLU's
//! mask to the local derivative: see [`ActivationRule`](feedbacknet_core::ActivationRule).
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
//! # Operators
//!
//! - **Convolutional nets**: `Conv`, `MaxPool`, `AveragePool`, `GlobalAveragePool`,
//!   `BatchNormalization`, `LRN`, `Relu`, `Clip`, `Softmax`, `Gemm`/`MatMul` (batched, with
//!   broadcasting), `Add`/`Sub`/`Mul`/`Div` (broadcasting), `Concat`, `Flatten`, `Reshape`,
//!   `Pad`, `Identity`, `Dropout`, `Constant`.
//! - **Transformers and modern CNNs** (ViT, ConvNeXt, ShuffleNet v2): `Transpose`,
//!   `ReduceMean`/`ReduceSum`/`ReduceMax`/`ReduceL2`, `Erf`, `Sqrt`, `Reciprocal`, `Exp`,
//!   `Neg`, `Abs`, `Pow`, `LayerNormalization`, `Attention` (onnx-ir's fused form, an additive
//!   float mask, no caches), `Slice`, `Gather` (constant indices), `Squeeze`, `Unsqueeze`,
//!   `Split`, `Einsum` (two operands, no ellipsis or diagonal: MaxViT).
//! - **Masks and index arithmetic** (Swin's shifted windows): `Equal`, `Not`, `Where`, `Mod`,
//!   `Range`, `ScatterND` (no reduction). Booleans are floats 0 and 1; no gradient flows
//!   through a condition, indices or a range.
//! - **Shapes computed at run time** (dynamic-batch exports): `Shape`, `Reshape` to a computed
//!   shape, `Expand`, `ConstantOfShape`, `Cast`, integer `Div`, `Pad` by computed amounts. A shape is a rank-1 float
//!   tensor of its dimensions (exact below 2^24); these steps carry no gradient.
//!
//! A graph with operators outside these lists is refused with one error naming every one of
//! them and the nodes using each ([`OnnxError::UnsupportedOperators`]). Integer arithmetic on
//! constants (how PyTorch's exported attention bounds the `Slice`s of its reshape targets) is
//! folded into constants before parsing (`constant_fold`), so unsimplified ViT exports load. A
//! graph that onnx-ir still cannot type (a `Reshape` whose target's length depends on run-time
//! values) is refused with the advice to simplify it with onnxsim first.
//!
//! # Layout
//!
//! Loading runs top-down: `network` (the [`OnnxNetwork`] type and its [`GatedNetwork`] impl)
//! reads the file (`skeleton`, `weights`; `constant_fold` folds its integer arithmetic on
//! constants), compiles the graph (`compile/`, one file per op family, `mod.rs` the
//! dispatcher, then `fold`'s rewrites and `head_gates`' optional gates) into a `program` of
//! steps, and probes it (`shapes`). `execute` runs the program forward (`ops`,
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
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod channel_gates;
mod channels_last;
mod compile;
mod constant_fold;
mod conv_weights;
mod error;
mod execute;
mod feature_map;
mod fold;
mod head;
mod head_gates;
mod kernels;
mod layout;
mod metadata;
mod network;
mod ops;
mod pool;
mod prefix;
mod preset;
mod program;
mod reverse;
mod shapes;
mod skeleton;
mod vjp;
mod weights;

pub use error::{OnnxError, Result};
pub use head_gates::GatePlacement;
pub use metadata::{MetadataError, read_metadata_props};
pub use network::OnnxNetwork;
pub use preset::ModelPreset;
