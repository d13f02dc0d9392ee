//! Compiles an `onnx-ir` graph into a flat program of [`Op`]s over value slots.

use std::collections::HashMap;

use burn::tensor::{
    Device, Tensor, TensorData,
    ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions, PadMode},
};
use feedbacknet_core::{BinaryOp, DynTensor};
use onnx_ir::{
    Argument, Node, OnnxGraph,
    node::{
        batch_norm::BatchNormConfig,
        clip::ClipInput,
        pad::{ConstantValueInput, PadInput, PadMode as OnnxPadMode},
        padding::{AutoPad, PaddingConfig2d},
        reshape::ReshapeInput,
    },
};

use crate::{
    OnnxError, Result,
    ops::{Activation, Op},
};

/// One step of a compiled program.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Node name (as renamed by onnx-ir).
    pub name: String,
    pub op: Op,
    /// Value slots read by the op, in order.
    pub inputs: Vec<usize>,
    /// Value slot written.
    pub output: usize,
    /// Gate site index, for gated activations.
    pub gate: Option<usize>,
    /// Slots no longer needed after this step.
    pub release: Vec<usize>,
}

/// A compiled ONNX graph.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    pub constants: Vec<(usize, DynTensor)>,
    pub slots: usize,
    pub input: usize,
    pub output: usize,
    /// Declared input shape (dimensions that are unknown are `None`).
    pub input_shape: Vec<Option<usize>>,
    pub gate_count: usize,
}

impl Program {
    /// The index of the step that writes `slot`, if a step does.
    pub fn writer(&self, slot: usize) -> Option<usize> {
        self.steps.iter().position(|s| s.output == slot)
    }

    /// The steps (in program order) whose outputs depend on the input and the constants only,
    /// through no gate: their values are the same for every gate setting.
    pub fn gate_free_prefix(&self) -> Vec<usize> {
        let mut free = vec![false; self.slots];
        free[self.input] = true;
        for (slot, _) in &self.constants {
            free[*slot] = true;
        }
        let mut prefix = Vec::new();
        for (index, step) in self.steps.iter().enumerate() {
            if step.gate.is_none() && step.inputs.iter().all(|&s| free[s]) {
                free[step.output] = true;
                prefix.push(index);
            }
        }
        prefix
    }
}

struct Compiler<'a> {
    device: &'a Device,
    slots: HashMap<String, usize>,
    next_slot: usize,
    constants: Vec<(usize, DynTensor)>,
    steps: Vec<Step>,
    gate_count: usize,
}

pub(crate) fn compile(graph: &OnnxGraph, device: &Device) -> Result<Program> {
    let input = graph
        .inputs
        .iter()
        .find(|a| a.value().is_none())
        .ok_or_else(|| OnnxError::InvalidGraph("the graph has no runtime input".into()))?;
    let output = graph
        .outputs
        .first()
        .ok_or_else(|| OnnxError::InvalidGraph("the graph has no output".into()))?;
    if graph.nodes.is_empty() {
        return Err(OnnxError::InvalidGraph("the graph has no nodes".into()));
    }
    let mut c = Compiler {
        device,
        slots: HashMap::new(),
        next_slot: 0,
        constants: Vec::new(),
        steps: Vec::new(),
        gate_count: 0,
    };
    let input_slot = c.define(&input.name);
    for node in &graph.nodes {
        c.node(node, &output.name)?;
    }
    let output_slot = *c.slots.get(&output.name).ok_or_else(|| {
        OnnxError::InvalidGraph(format!("no node produces the output `{}`", output.name))
    })?;
    let input_shape = input
        .ty
        .static_shape()
        .cloned()
        .unwrap_or_else(|| vec![None; input.ty.rank()]);
    let mut program = Program {
        steps: c.steps,
        constants: c.constants,
        slots: c.next_slot,
        input: input_slot,
        output: output_slot,
        input_shape,
        gate_count: c.gate_count,
    };
    crate::fold::fold_pads(&mut program);
    plan_releases(&mut program);
    Ok(program)
}

/// Marks, for each step, the slots whose last reader it is.
fn plan_releases(program: &mut Program) {
    let mut last_use = vec![None; program.slots];
    for (i, step) in program.steps.iter().enumerate() {
        for &slot in &step.inputs {
            last_use[slot] = Some(i);
        }
    }
    for (slot, last) in last_use.into_iter().enumerate() {
        if let Some(i) = last
            && slot != program.output
        {
            program.steps[i].release.push(slot);
        }
    }
}

fn unsupported(node: &str, op: &str, reason: impl Into<String>) -> OnnxError {
    OnnxError::UnsupportedConfig {
        op: op.into(),
        node: node.into(),
        reason: reason.into(),
    }
}

/// Reads a constant argument as finite `f32` values with its shape.
fn constant_values(arg: &Argument, node: &str) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
    let Some(data) = arg.value() else {
        return Ok(None);
    };
    let shape = data.shape().as_slice().to_vec();
    let values = data.try_into_vec_as::<f32>().map_err(|e| {
        OnnxError::InvalidGraph(format!("constant `{}` of node `{node}`: {e:?}", arg.name))
    })?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(OnnxError::NonFiniteWeights {
            node: node.into(),
            input: arg.name.clone(),
        });
    }
    Ok(Some((values, shape)))
}

impl Compiler<'_> {
    fn define(&mut self, name: &str) -> usize {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.slots.insert(name.to_string(), slot);
        slot
    }

    /// The slot of a runtime or constant input.
    fn input_slot(&mut self, arg: &Argument, node: &str) -> Result<usize> {
        if let Some((values, shape)) = constant_values(arg, node)? {
            let shape = if shape.is_empty() { vec![1] } else { shape };
            let tensor = DynTensor::from_vec(values, &shape, self.device)?;
            let slot = self.next_slot;
            self.next_slot += 1;
            self.constants.push((slot, tensor));
            return Ok(slot);
        }
        self.slots.get(&arg.name).copied().ok_or_else(|| {
            OnnxError::InvalidGraph(format!(
                "node `{node}` reads `{}`, which nothing produces",
                arg.name
            ))
        })
    }

    fn weight<const D: usize>(&self, node: &Node, index: usize) -> Result<Option<Tensor<D>>> {
        let Some(arg) = node.inputs().get(index).filter(|a| !a.is_optional()) else {
            return Ok(None);
        };
        let (values, shape) = constant_values(arg, node.name())?.ok_or_else(|| {
            unsupported(
                node.name(),
                &node.node_type().to_string(),
                format!("input {index} must be a constant (weights computed at run time)"),
            )
        })?;
        if shape.len() != D {
            return Err(unsupported(
                node.name(),
                &node.node_type().to_string(),
                format!("input {index} has rank {} (expected {D})", shape.len()),
            ));
        }
        Ok(Some(Tensor::from_data(
            TensorData::new(values, shape),
            self.device,
        )))
    }

    fn required_weight<const D: usize>(&self, node: &Node, index: usize) -> Result<Tensor<D>> {
        self.weight(node, index)?.ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` lacks input {index}", node.name()))
        })
    }

    fn push(&mut self, node: &Node, op: Op, inputs: Vec<usize>, gate: Option<usize>) -> Result<()> {
        let out = node.outputs().first().ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` has no output", node.name()))
        })?;
        let output = self.define(&out.name);
        self.steps.push(Step {
            name: node.name().to_string(),
            op,
            inputs,
            output,
            gate,
            release: Vec::new(),
        });
        Ok(())
    }

    /// Pushes a single-input op reading the node's first input.
    fn unary(&mut self, node: &Node, op: Op, gate: Option<usize>) -> Result<()> {
        let first = node.inputs().first().ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` has no input", node.name()))
        })?;
        let slot = self.input_slot(first, node.name())?;
        self.push(node, op, vec![slot], gate)
    }

    /// Pushes an op over all of the node's (non-optional) inputs.
    fn nary(&mut self, node: &Node, op: Op) -> Result<()> {
        let slots = node
            .inputs()
            .iter()
            .filter(|a| !a.is_optional())
            .map(|a| self.input_slot(a, node.name()))
            .collect::<Result<Vec<_>>>()?;
        self.push(node, op, slots, None)
    }

    fn gated(&mut self, node: &Node, activation: Activation) -> Result<()> {
        let gate = self.gate_count;
        self.gate_count += 1;
        self.unary(node, Op::Activation(activation), Some(gate))
    }

    fn node(&mut self, node: &Node, graph_output: &str) -> Result<()> {
        let name = node.name();
        match node {
            Node::Conv2d(n) => {
                let cfg = &n.config;
                if !matches!(cfg.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
                    return Err(unsupported(
                        name,
                        "Conv",
                        "auto_pad SAME_* (export with explicit pads)",
                    ));
                }
                check_positive(name, "Conv", &[cfg.stride, cfg.dilation, cfg.kernel_size])?;
                if cfg.groups == 0 {
                    return Err(unsupported(name, "Conv", "group = 0"));
                }
                let weight = self.required_weight::<4>(node, 1)?;
                let bias = self.weight::<1>(node, 2)?;
                let (t, l, b, r) = padding(&cfg.padding);
                let options = ConvOptions::new_with_padding(
                    cfg.stride,
                    [(t, b), (l, r)],
                    cfg.dilation,
                    cfg.groups,
                );
                let backward_weight = backward_weight(&weight, &options);
                let winograd =
                    crate::kernels::winograd_weights(&weight, backward_weight.as_deref(), &options);
                self.unary(
                    node,
                    Op::Conv2d {
                        weight,
                        bias,
                        options,
                        backward_weight,
                        winograd,
                    },
                    None,
                )
            }
            Node::Relu(_) => self.gated(node, Activation::Relu),
            Node::Clip(n) => {
                let bound = |b: &Option<ClipInput>, default: f64| match b {
                    None => Ok(default),
                    Some(ClipInput::Static(v)) => Ok(*v),
                    Some(ClipInput::Runtime(_)) => {
                        Err(unsupported(name, "Clip", "min/max computed at run time"))
                    }
                };
                let min = bound(&n.config.min, f64::NEG_INFINITY)? as f32;
                let max = bound(&n.config.max, f64::INFINITY)? as f32;
                let act = Activation::Clip { min, max };
                if min == 0.0 {
                    self.gated(node, act)
                } else {
                    self.unary(node, Op::Activation(act), None)
                }
            }
            Node::MaxPool2d(n) => {
                let cfg = &n.config;
                if !matches!(cfg.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
                    return Err(unsupported(name, "MaxPool", "auto_pad SAME_*"));
                }
                check_positive(
                    name,
                    "MaxPool",
                    &[cfg.strides, cfg.dilation, cfg.kernel_size],
                )?;
                let (t, l, b, r) = padding(&cfg.padding);
                let mut options = MaxPoolOptions::new(cfg.kernel_size)
                    .with_stride(cfg.strides)
                    .with_padding_pairs([(t, b), (l, r)])
                    .with_ceil_mode(cfg.ceil_mode);
                options.dilation = cfg.dilation;
                self.unary(node, Op::MaxPool2d(options), None)
            }
            Node::AveragePool2d(n) => {
                let cfg = &n.config;
                if !matches!(cfg.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
                    return Err(unsupported(name, "AveragePool", "auto_pad SAME_*"));
                }
                if cfg.dilation != [1, 1] {
                    return Err(unsupported(name, "AveragePool", "dilation other than 1"));
                }
                check_positive(name, "AveragePool", &[cfg.strides, cfg.kernel_size])?;
                let (t, l, b, r) = padding(&cfg.padding);
                let options = AvgPoolOptions::new(cfg.kernel_size)
                    .with_stride(cfg.strides)
                    .with_padding_pairs([(t, b), (l, r)])
                    .with_count_include_pad(cfg.count_include_pad)
                    .with_ceil_mode(cfg.ceil_mode);
                self.unary(node, Op::AvgPool2d { options }, None)
            }
            Node::GlobalAveragePool(_) => self.unary(node, Op::GlobalAveragePool, None),
            Node::Concat(n) => self.nary(
                node,
                Op::Concat {
                    axis: n.config.axis,
                },
            ),
            Node::Add(_) => self.nary(node, Op::Binary(BinaryOp::Add)),
            Node::Sub(_) => self.nary(node, Op::Binary(BinaryOp::Sub)),
            Node::Mul(_) => self.nary(node, Op::Binary(BinaryOp::Mul)),
            Node::Div(_) => self.nary(node, Op::Binary(BinaryOp::Div)),
            Node::Linear(n) => {
                let weight = self.required_weight::<2>(node, 1)?;
                let weight = if n.config.transpose_weight {
                    weight.transpose()
                } else {
                    weight
                };
                let bias = self.weight::<1>(node, 2)?;
                self.unary(node, Op::Linear { weight, bias }, None)
            }
            Node::Gemm(n) => {
                let cfg = &n.config;
                let op = Op::Gemm {
                    alpha: cfg.alpha,
                    beta: cfg.beta,
                    trans_a: cfg.trans_a != 0,
                    trans_b: cfg.trans_b != 0,
                };
                self.nary(node, op)
            }
            Node::MatMul(_) => self.nary(node, Op::MatMul),
            Node::Flatten(n) => self.unary(
                node,
                Op::Flatten {
                    axis: n.config.axis,
                },
                None,
            ),
            Node::Reshape(n) => match &n.config.shape {
                ReshapeInput::Static(shape) => self.unary(
                    node,
                    Op::Reshape {
                        shape: shape.clone(),
                    },
                    None,
                ),
                ReshapeInput::Runtime(_) => Err(unsupported(
                    name,
                    "Reshape",
                    "target shape computed at run time (simplify the model, e.g. with onnxsim)",
                )),
            },
            Node::Pad(n) => {
                let PadInput::Static(pads) = &n.config.pads else {
                    return Err(unsupported(name, "Pad", "pads computed at run time"));
                };
                let mode = match (&n.config.mode, &n.config.constant_value) {
                    (OnnxPadMode::Constant, ConstantValueInput::Static(v)) => PadMode::Constant(*v),
                    (OnnxPadMode::Constant, ConstantValueInput::Runtime(_)) => {
                        return Err(unsupported(name, "Pad", "pad value computed at run time"));
                    }
                    (OnnxPadMode::Reflect, _) => PadMode::Reflect,
                    (OnnxPadMode::Edge, _) => PadMode::Edge,
                };
                self.unary(
                    node,
                    Op::Pad {
                        pads: pads.clone(),
                        mode,
                    },
                    None,
                )
            }
            Node::BatchNormalization(n) => {
                let BatchNormConfig::Static(cfg) = &n.config else {
                    return Err(unsupported(
                        name,
                        "BatchNormalization",
                        "statistics computed at run time",
                    ));
                };
                let gamma = self.required_weight::<1>(node, 1)?;
                let beta = self.required_weight::<1>(node, 2)?;
                let mean = self.required_weight::<1>(node, 3)?;
                let var = self.required_weight::<1>(node, 4)?;
                let scale = gamma.div(var.add_scalar(cfg.epsilon).sqrt());
                let shift = beta.sub(mean.mul(scale.clone()));
                self.unary(node, Op::ChannelAffine { scale, shift }, None)
            }
            Node::Dropout(_) | Node::Identity(_) => self.unary(node, Op::Identity, None),
            Node::Softmax(n) => {
                let is_output = node
                    .outputs()
                    .first()
                    .is_some_and(|o| o.name == graph_output);
                // Saliency needs class scores before the softmax: a final Softmax is skipped.
                let op = if is_output {
                    Op::Identity
                } else {
                    Op::Softmax {
                        axis: n.config.axis,
                    }
                };
                self.unary(node, op, None)
            }
            Node::Lrn(n) => {
                let cfg = &n.config;
                if cfg.size < 1 {
                    return Err(unsupported(name, "LRN", "size < 1"));
                }
                let op = Op::Lrn {
                    size: cfg.size as usize,
                    alpha: cfg.alpha,
                    beta: cfg.beta,
                    bias: cfg.bias,
                };
                self.unary(node, op, None)
            }
            Node::Constant(_) => {
                let arg = node.inputs().first().ok_or_else(|| {
                    OnnxError::InvalidGraph(format!("constant `{name}` has no value"))
                })?;
                let slot = self.input_slot(arg, name)?;
                let out = node.outputs().first().ok_or_else(|| {
                    OnnxError::InvalidGraph(format!("constant `{name}` has no output"))
                })?;
                self.slots.insert(out.name.clone(), slot);
                Ok(())
            }
            other => Err(OnnxError::UnsupportedOperator {
                op: other.node_type().to_string(),
                node: name.to_string(),
            }),
        }
    }
}

fn padding(cfg: &PaddingConfig2d) -> (usize, usize, usize, usize) {
    cfg.as_tuple()
}

fn check_positive(node: &str, op: &str, values: &[[usize; 2]]) -> Result<()> {
    if values.iter().flatten().any(|&v| v == 0) {
        return Err(unsupported(
            node,
            op,
            "kernel, stride and dilation must be positive",
        ));
    }
    Ok(())
}

/// The channel-swapped, tap-reversed weight of a stride-1 convolution whose input gradient is
/// another stride-1 convolution (see `Op::Conv2d`).
pub(crate) fn backward_weight(
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
) -> Option<Box<Tensor<4>>> {
    let [_, _, kh, kw] = weight.dims();
    let [top, left] = crate::kernels::symmetric_stride_one(options)?;
    (top < kh && left < kw).then(|| {
        let swapped = weight.clone().swap_dims(0, 1).flip([2, 3]);
        Box::new(Tensor::from_data(swapped.into_data(), &weight.device()))
    })
}

#[cfg(all(test, feature = "flex"))] // the dense kernel runs on flex only
mod tests {
    use burn::tensor::{Device, Distribution, module::conv2d};

    use super::*;
    use crate::vjp::fast_vjp;

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn the_dense_and_winograd_kernels_equal_burn_forward_and_backward() {
        let device = Device::flex();
        let normal = Distribution::Normal(0.0, 1.0);
        for (batch, k, pad) in [(2, 3, 1), (1, 3, 0), (3, 5, 2), (2, 5, 1), (2, 1, 0)] {
            let case = format!("batch {batch} k {k} pad {pad}");
            let x = Tensor::<4>::random([batch, 8, 31, 29], normal, &device);
            let weight = Tensor::<4>::random([12, 8, k, k], normal, &device);
            let bias = Some(Tensor::<1>::random([12], normal, &device));
            let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
            let backward_weight = backward_weight(&weight, &options);
            let winograd =
                crate::kernels::winograd_weights(&weight, backward_weight.as_deref(), &options);
            assert_eq!(
                winograd.as_ref().map(|w| w.backward.is_some()),
                (k == 3).then_some(true),
                "{case}: the Winograd kernel takes exactly the 3×3 kernels, both ways"
            );
            let op = Op::Conv2d {
                weight: weight.clone(),
                bias: bias.clone(),
                options: options.clone(),
                backward_weight,
                winograd,
            };
            assert_eq!(
                crate::kernels::dense_conv(&x, &weight, bias.as_ref(), &options).is_some(),
                k > 1,
                "{case}: the dense kernel takes exactly the larger kernels"
            );
            let ours = op.run(vec![DynTensor::R4(x.clone())]).expect("conv");
            let leaf = x.clone().autodiff().detach().require_grad();
            let theirs = conv2d(
                leaf.clone(),
                weight.autodiff(),
                bias.map(|b| b.autodiff()),
                options,
            );
            let ours = ours.into4("conv").expect("rank 4");
            let diff = max_diff(ours, theirs.clone().without_autodiff());
            assert!(diff < 1e-4, "{case}: forward differs by {diff}");
            let dy = Tensor::<4>::random(theirs.dims(), normal, &device);
            let grads = theirs.mul(dy.clone().autodiff()).sum().backward();
            let expected = leaf.grad(&grads).expect("input gradient");
            let inputs = [DynTensor::R4(x)];
            let dx = fast_vjp(&op, &inputs, &DynTensor::R4(dy), &[true])
                .expect("covered")
                .expect("no error")
                .remove(0)
                .expect("dx")
                .into4("dx")
                .expect("rank 4");
            let diff = max_diff(dx, expected);
            assert!(diff < 1e-4, "{case}: input gradient differs by {diff}");
        }
        // Strided, grouped or asymmetrically padded convolutions keep Burn's convolution.
        let weight = Tensor::<4>::zeros([4, 4, 3, 3], &device);
        let x = Tensor::<4>::zeros([1, 4, 40, 40], &device);
        let plain = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        assert!(crate::kernels::dense_conv(&x, &weight, None, &plain).is_some());
        let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let asymmetric = ConvOptions::new_with_padding([1, 1], [(0, 1), (1, 1)], [1, 1], 1);
        for options in [strided, asymmetric] {
            assert!(crate::kernels::dense_conv(&x, &weight, None, &options).is_none());
        }
        let grouped = Tensor::<4>::zeros([4, 2, 3, 3], &device);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 2);
        assert!(crate::kernels::dense_conv(&x, &grouped, None, &options).is_none());
    }
}
