//! The operations of a compiled ONNX program and how each one runs on Burn tensors.
//!
//! The operators of the CNNs run here; those added for transformers and run-time shapes run in
//! the submodules (`math`, `indexing`, `shape`, `attention`).

mod attention;
pub(crate) mod einsum;
pub(crate) mod indexing;
mod logic;
mod math;
mod matmul;
mod shape;
#[cfg(test)]
mod tests;

use burn::tensor::{
    Int, Tensor, activation,
    module::{avg_pool2d, conv2d},
    ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions, PadMode},
};
use feedbacknet_core::{BinaryOp, CoreError, DynTensor, Result, dyn_map};

/// An activation that may carry a gate (the kernels' type, which the program's ops name).
pub(crate) use feedbacknet_kernels::Activation;
/// What a gated step's gate multiplies, and a PReLU's slope per channel (the kernels' types).
pub(crate) use feedbacknet_kernels::{GatedActivation, PReluSlopes};

use crate::kernels::WinogradWeights;

/// An element-wise function of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Erf,
    Sqrt,
    Reciprocal,
    Exp,
    Neg,
    Abs,
}

/// What a reduction computes over its axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReduceKind {
    Mean,
    Sum,
    Max,
    /// The Euclidean norm (Swin v2's cosine attention).
    L2,
}

/// The element type a `Cast` converts to (values stay floats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CastTo {
    Float,
    Int,
    Bool,
}

/// A list of integers (axes, indices, a shape): a constant, or read at run time from the step
/// input at that position (a float tensor of integer values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ints {
    Static(Vec<i64>),
    Input(usize),
}

impl Ints {
    /// The integers, reading the step's `inputs` if they come from one.
    pub(crate) fn resolve(&self, inputs: &[DynTensor]) -> Result<Vec<i64>> {
        match self {
            Ints::Static(v) => Ok(v.clone()),
            Ints::Input(i) => {
                let t = inputs
                    .get(*i)
                    .ok_or_else(|| shape_err(&format!("an input {i} of integers"), vec![]))?;
                let values = t.to_vec()?;
                if values.iter().any(|v| !v.is_finite()) {
                    return Err(shape_err("finite integers", t.dims()));
                }
                Ok(values.iter().map(|&v| v.round() as i64).collect())
            }
        }
    }
}

/// One compiled operation. Weights are stored as plain (non-autodiff) tensors.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Conv2d {
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
        options: ConvOptions<2>,
        /// The input gradient's weights, made by the first reverse pass (for stride-1,
        /// undilated, ungrouped convolutions with symmetric padding below the kernel size, the
        /// weight with its two channel axes swapped and its taps reversed: the input gradient is
        /// then another such convolution of the output gradient; see `conv_weights`).
        backward: crate::conv_weights::BackwardWeights,
        /// The weight transformed for the Winograd kernel, for the 3×3 convolutions it takes
        /// (`forward` only: the backward one is in `backward`).
        winograd: Option<Box<WinogradWeights>>,
    },
    Activation(Activation),
    /// PReLU whose constant slope differs per channel (always gated).
    PRelu(PReluSlopes),
    MaxPool2d(MaxPoolOptions<2>),
    AvgPool2d {
        options: AvgPoolOptions<2>,
    },
    GlobalAveragePool,
    Concat {
        axis: usize,
    },
    Binary(BinaryOp),
    /// `x · weight + bias` with `weight` as `[in, out]`.
    Linear {
        weight: Tensor<2>,
        bias: Option<Tensor<1>>,
    },
    /// General matrix multiply `alpha · A' · B' + beta · C` (A' = A or Aᵀ).
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    Flatten {
        axis: usize,
    },
    Reshape {
        shape: Vec<i64>,
    },
    Pad {
        pads: Vec<(usize, usize)>,
        mode: PadMode,
    },
    /// A padding by the amounts held by the second input (ONNX order: all befores, then all
    /// afters; none negative).
    PadTo(PadMode),
    /// Inference-mode batch normalization folded into `x · scale + shift` per channel.
    ChannelAffine {
        scale: Tensor<1>,
        shift: Tensor<1>,
    },
    Identity,
    Softmax {
        axis: usize,
    },
    Lrn {
        size: usize,
        alpha: f32,
        beta: f32,
        bias: f32,
    },
    /// Output axis `i` is input axis `perm[i]`.
    Transpose {
        perm: Vec<usize>,
    },
    /// Mean, sum, maximum or L2 norm over `axes` (all when empty).
    Reduce {
        kind: ReduceKind,
        axes: Vec<i64>,
        keepdims: bool,
    },
    Unary(UnaryOp),
    /// `x` to a constant power.
    PowScalar(f32),
    /// `x` to the power of a second (broadcast) input.
    Pow,
    /// Normalization over the axes from `axis` on, then `· scale + bias`.
    LayerNorm {
        axis: i64,
        epsilon: f32,
        scale: Option<DynTensor>,
        bias: Option<DynTensor>,
    },
    Slice {
        starts: Ints,
        ends: Ints,
        axes: Option<Vec<i64>>,
        steps: Option<Vec<i64>>,
    },
    /// Constant `indices` along `axis`; a scalar index removes the axis.
    Gather {
        axis: i64,
        indices: Vec<i64>,
        scalar: bool,
    },
    Squeeze {
        axes: Option<Vec<i64>>,
    },
    Unsqueeze {
        axes: Vec<i64>,
        /// The input is an ONNX scalar (stored as `[1]`).
        scalar_input: bool,
    },
    /// The dimensions `start..end` of the input, as a rank-1 tensor.
    Shape {
        start: usize,
        end: usize,
    },
    /// A reshape to the shape held by the second input.
    ReshapeTo,
    Expand(Ints),
    /// A tensor of the shape held by the input, filled with `value`.
    ConstantOfShape {
        value: f32,
    },
    Cast(CastTo),
    /// Division of integer values, truncated.
    IntDiv,
    /// Scaled dot-product attention over the inputs Q, K, V (and a mask, input 3).
    Attention {
        scale: Option<f32>,
        q_heads: Option<usize>,
        kv_heads: Option<usize>,
        /// The mask is boolean (0/1 floats, 1 where a key takes part), not additive.
        boolean_mask: bool,
    },
    /// A two-operand Einstein summation run as a batched matrix product.
    Einsum(einsum::EinsumPlan),
    /// 1 where the two (broadcast) inputs are equal, 0 elsewhere (booleans are 0/1 floats).
    Equal,
    /// 1 where the input is 0, 0 elsewhere.
    Not,
    /// The second input where the first is non-zero, the third elsewhere.
    Where,
    /// The remainder of a division: the divisor's sign, or the dividend's with `fmod`.
    Mod {
        fmod: bool,
    },
    /// The integers from `start` below `limit` by `delta` (each a constant or a step input).
    Range(Box<[Ints; 3]>),
    /// Data (input 0) with the slices at the indices (input 1) replaced by the updates (input 2).
    ScatterNd,
}

impl Op {
    /// The convolution `weight`/`bias`/`options` as an [`Op::Conv2d`], with its forward
    /// Winograd weight derived (its backward weights come on first use: `conv_weights`).
    pub(crate) fn conv2d(
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
        options: ConvOptions<2>,
    ) -> Op {
        let winograd = crate::kernels::winograd_weights(&weight, None, &options);
        Op::Conv2d {
            weight,
            bias,
            options,
            backward: crate::conv_weights::BackwardWeights::default(),
            winograd,
        }
    }

    /// Short operator name for error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "Conv",
            Op::Activation(act) => act.op_name(),
            Op::PRelu(_) => "PRelu",
            Op::MaxPool2d(_) => "MaxPool",
            Op::AvgPool2d { .. } => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::Concat { .. } => "Concat",
            Op::Binary(BinaryOp::Add) => "Add",
            Op::Binary(BinaryOp::Sub) => "Sub",
            Op::Binary(BinaryOp::Mul) => "Mul",
            Op::Binary(BinaryOp::Div) => "Div",
            Op::Linear { .. } => "Gemm",
            Op::Gemm { .. } => "Gemm",
            Op::MatMul => "MatMul",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Pad { .. } | Op::PadTo(_) => "Pad",
            Op::ChannelAffine { .. } => "BatchNormalization",
            Op::Identity => "Identity",
            Op::Softmax { .. } => "Softmax",
            Op::Lrn { .. } => "LRN",
            Op::Transpose { .. } => "Transpose",
            Op::Reduce {
                kind: ReduceKind::Mean,
                ..
            } => "ReduceMean",
            Op::Reduce {
                kind: ReduceKind::Sum,
                ..
            } => "ReduceSum",
            Op::Reduce {
                kind: ReduceKind::Max,
                ..
            } => "ReduceMax",
            Op::Reduce {
                kind: ReduceKind::L2,
                ..
            } => "ReduceL2",
            Op::Unary(UnaryOp::Erf) => "Erf",
            Op::Unary(UnaryOp::Sqrt) => "Sqrt",
            Op::Unary(UnaryOp::Reciprocal) => "Reciprocal",
            Op::Unary(UnaryOp::Exp) => "Exp",
            Op::Unary(UnaryOp::Neg) => "Neg",
            Op::Unary(UnaryOp::Abs) => "Abs",
            Op::PowScalar(_) | Op::Pow => "Pow",
            Op::LayerNorm { .. } => "LayerNormalization",
            Op::Slice { .. } => "Slice",
            Op::Gather { .. } => "Gather",
            Op::Squeeze { .. } => "Squeeze",
            Op::Unsqueeze { .. } => "Unsqueeze",
            Op::Shape { .. } => "Shape",
            Op::ReshapeTo => "Reshape",
            Op::Expand(_) => "Expand",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Cast(_) => "Cast",
            Op::IntDiv => "Div",
            Op::Attention { .. } => "Attention",
            Op::Einsum(_) => "Einsum",
            Op::Equal => "Equal",
            Op::Not => "Not",
            Op::Where => "Where",
            Op::Mod { .. } => "Mod",
            Op::Range(_) => "Range",
            Op::ScatterNd => "ScatterND",
        }
    }

    /// The activation a gate multiplies, for the ops a gate site may sit on.
    pub(crate) fn gated_activation(&self) -> Option<GatedActivation<'_>> {
        match self {
            Op::Activation(act) => Some(GatedActivation::Scalar(*act)),
            Op::PRelu(slopes) => Some(GatedActivation::PReluPerChannel(slopes)),
            _ => None,
        }
    }

    /// Whether the step's input `index` can carry a gradient. Inputs read back as integers
    /// (slice bounds, target shapes) do not, nor does any input of a step whose value depends on
    /// shapes alone (`Shape`, integer arithmetic): the reverse pass gives them none.
    pub(crate) fn differentiable_input(&self, index: usize) -> bool {
        match self {
            Op::Shape { .. }
            | Op::ConstantOfShape { .. }
            | Op::IntDiv
            | Op::Cast(CastTo::Int | CastTo::Bool)
            | Op::Equal
            | Op::Not
            | Op::Mod { .. }
            | Op::Range(_) => false,
            Op::Slice { .. } | Op::ReshapeTo | Op::Expand(_) | Op::PadTo(_) => index == 0,
            Op::Where => index != 0,
            Op::ScatterNd => index != 1,
            Op::Attention {
                boolean_mask: true, ..
            } => index < 3,
            _ => true,
        }
    }

    /// Runs the operation and, for max pooling, also returns the argmax indices that its
    /// backward pass needs (a forward pass recorded for a reverse pass uses this).
    pub(crate) fn run_recorded(
        &self,
        inputs: Vec<DynTensor>,
    ) -> Result<(DynTensor, Option<Tensor<4, Int>>)> {
        match self {
            Op::MaxPool2d(options) => {
                let x = inputs
                    .into_iter()
                    .next()
                    .ok_or_else(|| shape_err("an input", vec![]))?
                    .into4("MaxPool")?;
                check_pool_window(&x, options)?;
                let (y, indices) = crate::kernels::max_pool_with_indices(x, options);
                Ok((DynTensor::R4(y), Some(indices)))
            }
            _ => Ok((self.run(inputs)?, None)),
        }
    }

    /// Runs a convolution for its output channels `rows` alone (ascending, distinct, in
    /// range), the other channels 0; `None` for any other operation.
    pub(crate) fn run_rows(
        &self,
        inputs: Vec<DynTensor>,
        rows: &[usize],
    ) -> Option<Result<DynTensor>> {
        let Op::Conv2d {
            weight,
            bias,
            options,
            ..
        } = self
        else {
            return None;
        };
        let x = inputs.into_iter().next()?;
        Some(conv_rows(x, weight, bias.as_ref(), options, rows))
    }

    /// Runs the operation on its (runtime and constant) inputs.
    pub(crate) fn run(&self, mut inputs: Vec<DynTensor>) -> Result<DynTensor> {
        let first = || -> Result<DynTensor> {
            inputs
                .first()
                .cloned()
                .ok_or_else(|| shape_err("an input", vec![]))
        };
        match self {
            Op::Conv2d {
                weight,
                bias,
                options,
                winograd,
                ..
            } => {
                let transformed = winograd.as_ref().map(|w| &w.forward);
                run_conv(first()?, weight, transformed, bias, options)
            }
            Op::Activation(act) => Ok(crate::kernels::activation(first()?, *act)),
            Op::PRelu(slopes) => slopes.apply(first()?),
            Op::MaxPool2d(options) => {
                let x = first()?.into4("MaxPool")?;
                check_pool_window(&x, options)?;
                Ok(DynTensor::R4(crate::kernels::max_pool(x, options)))
            }
            Op::AvgPool2d { options } => {
                let x = first()?.into4("AveragePool")?;
                check_window(&x.dims(), options.kernel_size, options.padding, [1, 1])?;
                Ok(DynTensor::R4(avg_pool2d(x, options.clone())))
            }
            Op::GlobalAveragePool => global_average_pool(first()?),
            Op::Concat { axis } => DynTensor::concat(inputs, *axis),
            Op::Binary(op) => {
                let b = inputs
                    .pop()
                    .ok_or_else(|| shape_err("two inputs", vec![]))?;
                let a = inputs
                    .pop()
                    .ok_or_else(|| shape_err("two inputs", vec![]))?;
                a.binary(b, *op)
            }
            Op::Linear { weight, bias } => run_linear(first()?, weight, bias.as_ref()),
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => run_gemm(inputs, *alpha, *beta, *trans_a, *trans_b),
            Op::MatMul => run_matmul(inputs),
            Op::Flatten { axis } => {
                let x = first()?;
                let dims = x.dims();
                let (outer, inner) = dims.split_at((*axis).min(dims.len()));
                x.reshape(&[outer.iter().product(), inner.iter().product()])
            }
            Op::Reshape { shape } => run_reshape(first()?, shape, true),
            Op::Pad { pads, mode } => run_pad(first()?, pads, *mode),
            Op::PadTo(mode) => {
                let x = first()?;
                let amounts = Ints::Input(1).resolve(&inputs)?;
                let rank = x.rank();
                if amounts.len() != 2 * rank || amounts.iter().any(|&p| p < 0) {
                    return Err(shape_err(
                        &format!("{} non-negative pads", 2 * rank),
                        vec![amounts.len()],
                    ));
                }
                let (begins, ends) = amounts.split_at(rank);
                let pads: Vec<(usize, usize)> = begins
                    .iter()
                    .zip(ends)
                    .map(|(&begin, &end)| (begin as usize, end as usize))
                    .collect();
                run_pad(x, &pads, *mode)
            }
            Op::ChannelAffine { scale, shift } => channel_affine(first()?, scale, shift),
            Op::Identity => first(),
            Op::Softmax { axis } => {
                let x = first()?;
                if *axis >= x.rank() {
                    return Err(shape_err(&format!("softmax axis {axis} < rank"), x.dims()));
                }
                Ok(dyn_map!(x, t => activation::softmax(t, *axis)))
            }
            Op::Lrn {
                size,
                alpha,
                beta,
                bias,
            } => run_lrn(first()?.into4("LRN")?, *size, *alpha, *beta, *bias),
            Op::Transpose { perm } => indexing::transpose(first()?, perm),
            Op::Reduce {
                kind,
                axes,
                keepdims,
            } => math::reduce(first()?, *kind, axes, *keepdims),
            Op::Unary(op) => Ok(math::unary(first()?, *op)),
            Op::PowScalar(p) => Ok(math::pow_scalar(first()?, *p)),
            Op::Pow => {
                let [x, p] = two(inputs)?;
                math::pow(x, p)
            }
            Op::LayerNorm {
                axis,
                epsilon,
                scale,
                bias,
            } => math::layer_norm(first()?, *axis, *epsilon, scale.as_ref(), bias.as_ref()),
            Op::Slice {
                starts,
                ends,
                axes,
                steps,
            } => indexing::slice(&inputs, starts, ends, axes.as_deref(), steps.as_deref()),
            Op::Gather {
                axis,
                indices,
                scalar,
            } => indexing::gather(first()?, *axis, indices, *scalar),
            Op::Squeeze { axes } => indexing::squeeze(first()?, axes.as_deref()),
            Op::Unsqueeze { axes, scalar_input } => {
                indexing::unsqueeze(first()?, axes, *scalar_input)
            }
            Op::Shape { start, end } => shape::shape_of(&first()?, *start, *end),
            Op::ReshapeTo => shape::reshape_to(&inputs),
            Op::Expand(target) => shape::expand(&inputs, target),
            Op::ConstantOfShape { value } => shape::constant_of_shape(&inputs, *value),
            Op::Cast(to) => Ok(shape::cast(first()?, *to)),
            Op::IntDiv => {
                let [a, b] = two(inputs)?;
                shape::int_div(a, b)
            }
            Op::Attention {
                scale,
                q_heads,
                kv_heads,
                boolean_mask,
            } => attention::attention(&inputs, *scale, *q_heads, *kv_heads, *boolean_mask),
            Op::Einsum(plan) => {
                let [a, b] = two(inputs)?;
                einsum::einsum(plan, a, b)
            }
            Op::Equal => {
                let [a, b] = two(inputs)?;
                logic::equal(a, b)
            }
            Op::Not => Ok(logic::not(first()?)),
            Op::Where => {
                let count = inputs.len();
                let [c, x, y] = <[DynTensor; 3]>::try_from(inputs)
                    .map_err(|_| shape_err("three inputs", vec![count]))?;
                logic::where_(c, x, y)
            }
            Op::Mod { fmod } => {
                let [a, b] = two(inputs)?;
                logic::modulo(a, b, *fmod)
            }
            Op::Range(bounds) => logic::range(&inputs, bounds),
            Op::ScatterNd => {
                let count = inputs.len();
                let [data, indices, updates] = <[DynTensor; 3]>::try_from(inputs)
                    .map_err(|_| shape_err("three inputs", vec![count]))?;
                logic::scatter_nd(data, &indices, updates)
            }
        }
    }
}

fn check_pool_window(x: &Tensor<4>, options: &MaxPoolOptions<2>) -> Result<()> {
    check_window(
        &x.dims(),
        options.kernel_size,
        options.padding,
        options.dilation,
    )
}

/// The two inputs of a binary step.
fn two(inputs: Vec<DynTensor>) -> Result<[DynTensor; 2]> {
    let count = inputs.len();
    <[DynTensor; 2]>::try_from(inputs).map_err(|_| shape_err("two inputs", vec![count]))
}

/// `axis` (negative counts from the end) as an index below `rank`.
pub(crate) fn axis_index(axis: i64, rank: usize, what: &str) -> Result<usize> {
    wrap_axis(axis, rank)
        .filter(|&a| a < rank)
        .ok_or_else(|| axis_err(axis, rank, what))
}

/// The axis `axis` of `dims` (negative counts from the end) and its size.
pub(crate) fn axis_size(axis: i64, dims: &[usize], what: &str) -> Result<(usize, usize)> {
    wrap_axis(axis, dims.len())
        .and_then(|a| dims.get(a).map(|&size| (a, size)))
        .ok_or_else(|| axis_err(axis, dims.len(), what))
}

/// `axis` counted from the end when negative; `None` if still negative.
fn wrap_axis(axis: i64, rank: usize) -> Option<usize> {
    let wrapped = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(wrapped).ok()
}

fn axis_err(axis: i64, rank: usize, what: &str) -> CoreError {
    CoreError::Shape {
        context: what.into(),
        expected: format!("an axis in -{rank}..{rank}, not {axis}"),
        got: vec![rank],
    }
}

/// The axes a reduction over `axes` reads in a tensor of `rank` (every axis when empty).
pub(crate) fn reduce_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    axes.iter()
        .map(|&a| axis_index(a, rank, "reduce axis"))
        .collect()
}

fn shape_err(expected: &str, got: Vec<usize>) -> CoreError {
    CoreError::Shape {
        context: "operator input".into(),
        expected: expected.into(),
        got,
    }
}

/// The convolution's output channels `rows` (ascending, distinct, in range); the others 0.
fn conv_rows(
    x: DynTensor,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
    rows: &[usize],
) -> Result<DynTensor> {
    let channels = weight.dims()[0];
    if options.groups != 1
        || rows.is_empty()
        || !rows.is_sorted_by(|a, b| a < b)
        || rows.last() >= Some(&channels)
    {
        return Err(shape_err(
            "ascending output channels of an ungrouped convolution",
            rows.to_vec(),
        ));
    }
    let pick_rows =
        |t: &Tensor<4>| Tensor::cat(rows.iter().map(|&r| t.clone().narrow(0, r, 1)).collect(), 0);
    let picked_bias =
        bias.map(|b| Tensor::cat(rows.iter().map(|&r| b.clone().narrow(0, r, 1)).collect(), 0));
    let part = run_conv(x, &pick_rows(weight), None, &picked_bias, options)?.into4("Conv")?;
    let [batch, _, height, width] = part.dims();
    let zeros = |n: usize| Tensor::<4>::zeros([batch, n, height, width], &part.device());
    let mut pieces = Vec::with_capacity(2 * rows.len() + 1);
    let mut next = 0;
    for (i, &row) in rows.iter().enumerate() {
        if row > next {
            pieces.push(zeros(row - next));
        }
        pieces.push(part.clone().narrow(1, i, 1));
        next = row + 1;
    }
    if next < channels {
        pieces.push(zeros(channels - next));
    }
    Ok(DynTensor::R4(Tensor::cat(pieces, 1)))
}

/// A convolution by the fastest kernel that takes it (`winograd`: the transformed weight, where
/// the Winograd kernel takes the convolution).
fn run_conv(
    x: DynTensor,
    weight: &Tensor<4>,
    winograd: Option<&Tensor<3>>,
    bias: &Option<Tensor<1>>,
    options: &ConvOptions<2>,
) -> Result<DynTensor> {
    let x = x.into4("Conv")?;
    let [_, c_in, _, _] = x.dims();
    let [_, c_per_group, kh, kw] = weight.dims();
    if c_in != c_per_group * options.groups {
        return Err(shape_err(
            &format!(
                "{} input channels ({} groups of {c_per_group})",
                c_per_group * options.groups,
                options.groups
            ),
            x.dims().to_vec(),
        ));
    }
    check_window(&x.dims(), [kh, kw], options.padding, options.dilation)?;
    if let Some(y) = crate::kernels::depthwise_conv(&x, weight, bias.as_ref(), options) {
        return Ok(DynTensor::R4(y));
    }
    if let Some(y) = crate::kernels::pointwise_conv(&x, weight, bias.as_ref(), options) {
        return Ok(DynTensor::R4(y));
    }
    let winograd =
        winograd.and_then(|u| crate::kernels::winograd_conv(&x, u, bias.as_ref(), options));
    if let Some(y) = winograd {
        return Ok(DynTensor::R4(y));
    }
    if let Some(y) = crate::kernels::dense_conv(&x, weight, bias.as_ref(), options) {
        return Ok(DynTensor::R4(y));
    }
    if let Some(y) = crate::kernels::few_channel_conv(&x, weight, bias.as_ref(), options) {
        return Ok(DynTensor::R4(y));
    }
    Ok(DynTensor::R4(conv2d(
        x,
        weight.clone(),
        bias.clone(),
        options.clone(),
    )))
}

/// Checks that a sliding window fits the padded input (Burn would panic otherwise).
fn check_window(
    dims: &[usize; 4],
    kernel: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
) -> Result<()> {
    let [_, _, height, width] = *dims;
    for (((size, (before, after)), k), d) in [height, width]
        .into_iter()
        .zip(padding)
        .zip(kernel)
        .zip(dilation)
    {
        let extent = size + before + after;
        let span = d * k.saturating_sub(1) + 1;
        if extent < span {
            return Err(shape_err(
                &format!("spatial size of at least {span} for a {kernel:?} window"),
                dims.to_vec(),
            ));
        }
    }
    Ok(())
}

fn global_average_pool(x: DynTensor) -> Result<DynTensor> {
    match x {
        DynTensor::R3(t) => Ok(DynTensor::R3(t.mean_dim(2))),
        DynTensor::R4(t) => Ok(DynTensor::R4(t.mean_dim(3).mean_dim(2))),
        DynTensor::R5(t) => Ok(DynTensor::R5(t.mean_dim(4).mean_dim(3).mean_dim(2))),
        other => Err(shape_err("rank 3 to 5", other.dims())),
    }
}

fn run_linear(x: DynTensor, weight: &Tensor<2>, bias: Option<&Tensor<1>>) -> Result<DynTensor> {
    let dims = x.dims();
    let [k, n] = weight.dims();
    let Some((&last, lead)) = dims.split_last().filter(|(last, _)| **last == k) else {
        return Err(shape_err(&format!("last dimension {k}"), dims));
    };
    let rows = x.numel().checked_div(last).unwrap_or(0);
    let x2 = x.reshape(&[rows, last])?.into2("Gemm")?;
    let mut y = x2.matmul(weight.clone());
    if let Some(b) = bias {
        y = y.add(b.clone().reshape([1, n]));
    }
    let out_dims: Vec<usize> = lead.iter().copied().chain([n]).collect();
    DynTensor::R2(y).reshape(&out_dims)
}

fn run_gemm(
    mut inputs: Vec<DynTensor>,
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
) -> Result<DynTensor> {
    let count = inputs.len();
    let c = (count > 2).then(|| inputs.pop()).flatten();
    let (Some(b), Some(a)) = (inputs.pop(), inputs.pop()) else {
        return Err(shape_err("two or three inputs", vec![count]));
    };
    let b = b.into2("Gemm B")?;
    let a = a.into2("Gemm A")?;
    let a = if trans_a { a.transpose() } else { a };
    let b = if trans_b { b.transpose() } else { b };
    if a.dims()[1] != b.dims()[0] {
        return Err(shape_err(
            &format!("inner dimensions to agree with B {:?}", b.dims()),
            a.dims().to_vec(),
        ));
    }
    let mut y = DynTensor::R2(a.matmul(b).mul_scalar(alpha));
    if let Some(c) = c {
        let c = dyn_map!(c, t => t.mul_scalar(beta));
        y = y.binary(c, BinaryOp::Add)?;
    }
    Ok(y)
}

fn run_matmul(mut inputs: Vec<DynTensor>) -> Result<DynTensor> {
    let b = inputs
        .pop()
        .ok_or_else(|| shape_err("two inputs", vec![]))?;
    let a = inputs
        .pop()
        .ok_or_else(|| shape_err("two inputs", vec![]))?;
    match b {
        DynTensor::R2(w) => run_linear(a, &w, None),
        other => {
            let (a, other) = matmul::broadcast_batch(a, other)?;
            match (a, other) {
                (DynTensor::R3(x), DynTensor::R3(y)) => Ok(DynTensor::R3(x.matmul(y))),
                (DynTensor::R4(x), DynTensor::R4(y)) => Ok(DynTensor::R4(x.matmul(y))),
                (DynTensor::R5(x), DynTensor::R5(y)) => Ok(DynTensor::R5(x.matmul(y))),
                (DynTensor::R6(x), DynTensor::R6(y)) => Ok(DynTensor::R6(x.matmul(y))),
                (x, _) => Err(shape_err("rank 2 to 6", x.dims())),
            }
        }
    }
}

/// ONNX Reshape: `0` copies the input dimension, `-1` is inferred. With `keep_batch` (a
/// constant target), a leading `1` is read as "keep the batch" when the input's batch differs
/// and the target as written does not fit (it infers a dimension or holds another number of
/// elements): exporters bake batch 1 into the target.
fn run_reshape(x: DynTensor, target: &[i64], keep_batch: bool) -> Result<DynTensor> {
    let resolved = reshaped(&x.dims(), target, keep_batch)?;
    x.reshape(&resolved)
}

/// The shape [`run_reshape`] gives a value of shape `dims`.
pub(crate) fn reshaped(dims: &[usize], target: &[i64], keep_batch: bool) -> Result<Vec<usize>> {
    let numel = dims.iter().try_fold(1i64, |p, &d| p.checked_mul(d as i64));
    let numel = numel.ok_or_else(|| shape_err("a shape whose size fits i64", dims.to_vec()))?;
    let mut shape: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            0 => dims.get(i).map(|&v| v as i64).unwrap_or(0),
            d => d,
        })
        .collect();
    // Products are checked: a damaged file's target may overflow i64 (found by fuzzing).
    fn product<'a>(mut ds: impl Iterator<Item = &'a i64>) -> Option<i64> {
        ds.try_fold(1i64, |p, &d| p.checked_mul(d))
    }
    let literal_fits = !shape.iter().any(|&d| d < 0) && product(shape.iter()) == Some(numel);
    if let (Some(first), Some(&batch)) = (shape.first_mut(), dims.first())
        && keep_batch
        && !literal_fits
        && *first == 1
        && batch != 1
    {
        *first = batch as i64;
    }
    let known = product(shape.iter().filter(|&&d| d > 0)).unwrap_or(0);
    let unknown = shape.iter().filter(|&&d| d < 0).count();
    if unknown > 1 || known == 0 || (unknown == 1 && numel % known != 0) {
        return Err(shape_err(
            &format!("a shape compatible with {target:?}"),
            dims.to_vec(),
        ));
    }
    Ok(shape
        .iter()
        .map(|&d| {
            if d < 0 {
                (numel / known) as usize
            } else {
                d as usize
            }
        })
        .collect())
}

fn run_pad(x: DynTensor, pads: &[(usize, usize)], mode: PadMode) -> Result<DynTensor> {
    let dims = x.dims();
    if pads.len() != dims.len() {
        return Err(shape_err(&format!("rank {}", pads.len()), dims));
    }
    if !matches!(mode, PadMode::Constant(_))
        && pads
            .iter()
            .zip(&dims)
            .any(|(p, &d)| p.0.max(p.1) >= d.max(1))
    {
        return Err(shape_err("padding smaller than the dimension", dims));
    }
    if let (DynTensor::R4(t), PadMode::Constant(value), [(0, 0), (0, 0), rows, cols]) =
        (&x, mode, pads)
        && let Some(y) = crate::kernels::pad_planes(t, [*rows, *cols], value)
    {
        return Ok(DynTensor::R4(y));
    }
    let pads = pads.to_vec();
    Ok(dyn_map!(x, t => t.pad(pads.clone(), mode)))
}

fn channel_affine(x: DynTensor, scale: &Tensor<1>, shift: &Tensor<1>) -> Result<DynTensor> {
    let dims = x.dims();
    let channels = scale.dims()[0];
    if dims.get(1) != Some(&channels) {
        return Err(shape_err(&format!("{channels} channels on axis 1"), dims));
    }
    let shape: Vec<usize> = (0..dims.len())
        .map(|axis| if axis == 1 { channels } else { 1 })
        .collect();
    let scale = DynTensor::R1(scale.clone()).reshape(&shape)?;
    let shift = DynTensor::R1(shift.clone()).reshape(&shape)?;
    x.binary(scale, BinaryOp::Mul)?.binary(shift, BinaryOp::Add)
}

/// ONNX LRN across channels: `x / (bias + alpha / size · Σ x²)^beta` over a window of `size`
/// channels (`floor((size-1)/2)` before, `ceil((size-1)/2)` after).
fn run_lrn(x: Tensor<4>, size: usize, alpha: f32, beta: f32, bias: f32) -> Result<DynTensor> {
    let [n, c, h, w] = x.dims();
    let before = (size - 1) / 2;
    let after = size - 1 - before;
    let squares = x.clone().mul(x.clone()).reshape([n, 1, c, h * w]);
    let padded = squares.pad([(before, after), (0, 0)], PadMode::Constant(0.0));
    let window_mean = avg_pool2d(padded, AvgPoolOptions::new([size, 1]).with_stride([1, 1]));
    let sums = window_mean.mul_scalar(size as f32).reshape([n, c, h, w]);
    let denom = sums
        .mul_scalar(alpha / size as f32)
        .add_scalar(bias)
        .powf_scalar(beta);
    Ok(DynTensor::R4(x.div(denom)))
}
