//! The hand-written CPU kernels of feedbacknet, each beside its reference in plain Burn tensor
//! ops, and the plumbing of the CPU thread pool.
//!
//! What is here, by family (one module each):
//!
//! - gated activations (ReLU and Clip, SiLU, HardSwish, GELU, LeakyReLU, ELU, Mish, PReLU; and
//!   the ungated Sigmoid, HardSigmoid, Tanh, Softplus: see [`Activation`]; PReLU with a slope
//!   per channel, whose slopes are a tensor: [`PReluSlopes`], on Burn's ops only, both taken as a
//!   [`GatedActivation`]): `act(x)`, `act(x) · g` and its backward pass under an
//!   [`ActivationRule`](feedbacknet_core::ActivationRule) ([`gated_activation`],
//!   [`gated_activation_backward`]), and that backward pass with the soft solver's step fused in
//!   ([`gated_backward_step`]);
//! - the soft solver's momentum step on whole gate tensors ([`momentum_step`]);
//! - max pooling with its argmax indices ([`max_pool_with_indices`]);
//! - convolutions: depthwise ones and RGB stems over stride phases, pointwise ones as matrix
//!   products, dense stride-1 ones as a few matrix products, the 3×3 ones by Winograd's
//!   F(2×2, 3×3) ([`depthwise_conv`], [`pointwise_conv`], [`dense_conv`], [`winograd_conv`],
//!   and the input gradients);
//! - padded planes and spread channel gradients ([`pad_planes`], [`spread_channels`]);
//! - [`on_worker`]: a whole computation on a worker of the thread pool.
//!
//! # The dispatch rule
//!
//! The backend is chosen once, for a whole module: the fast paths on the flex CPU backend's
//! buffers live in one private module (`flex`, compiled with the `flex` feature), behind one
//! internal trait whose default bodies say "no fast path". Every public function asks the fast
//! path first; where it does not apply (a build without `flex`, another backend, an autodiff
//! tensor, a dtype other than `f32`, a shape it does not take) the function runs its reference
//! (the private `reference` module: plain Burn tensor ops, any backend). The convolution, pad
//! and spread kernels answer `None` instead, and their caller runs Burn's op, which is their
//! reference.
//!
//! # Tests
//!
//! Each kernel is tested against its reference (Burn's ops), forward and backward, on shapes
//! that exercise its edge cases.
//!
//! # Panics and `unsafe`
//!
//! Like the other library crates, this one denies `unwrap`, `expect`, `panic!`,
//! `unreachable!`, `todo!` and `unimplemented!` outside tests. Unlike them it allows plain
//! indexing (`clippy::indexing_slicing`): the kernels are loops over flat buffers whose lengths
//! each kernel derives from the shapes it checked on entry (a shape it does not take goes to the
//! reference instead), and a checked `get` per element in those loops would turn one provable
//! bound into thousands of error paths that cannot be taken. An index that were out of bounds
//! would still panic (safe Rust checks it), never read out of bounds. The `unsafe` blocks (writes
//! into uninitialised buffers, shared row slices on worker threads) each state their invariant in
//! a `// SAFETY:` comment and check it with a `debug_assert!` where it can be checked; the unit
//! tests run under valgrind's memcheck with `scripts/memcheck.sh` (see `docs/reliability.md`).
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod activation;
mod backend;
mod conv;
mod fast;
#[cfg(feature = "flex")]
mod flex;
mod gated;
mod layout;
mod pool;
mod prelu;
mod reference;
mod step;
#[cfg(test)]
mod testing;
mod unit;
mod worker;

pub use activation::{Activation, Wanted};
pub use conv::{
    WinogradWeights, dense_conv, depthwise_conv, depthwise_input_grad, few_channel_conv,
    few_channel_input_grad, pointwise_conv, sparse_pointwise_input_grad, symmetric_stride_one,
    winograd_conv, winograd_weights,
};
pub use gated::{activation, gated_activation, gated_activation_backward, gated_backward_step};
pub use layout::{pad_planes, spread_channels};
pub use pool::{max_pool, max_pool_with_indices};
pub use prelu::PReluSlopes;
pub use step::{momentum_step, nan_max};
pub use unit::GatedActivation;
pub use worker::on_worker;
