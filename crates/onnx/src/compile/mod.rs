//! Compiles an `onnx-ir` graph into a [`Program`] of [`Op`](crate::ops::Op)s over value slots.
//!
//! One file per op family turns a node's configuration into its step ([`builder`] holds the
//! slots and steps they push to); this file dispatches on the node type, then hands the
//! finished program to the rewrites of `fold` and plans when each value can be released.
//! Before dispatching, `fuse` rewrites the exported patterns of SiLU, HardSwish and GELU into
//! one activation node each (which then gets a gate).

mod activation;
mod attention;
mod builder;
mod constant;
mod conv;
mod elementwise;
mod fuse;
mod indexing;
mod linear;
mod logic;
mod math;
mod normalization;
mod pool;
mod reduce;
mod refusals;
mod shape;
mod window;

use burn::tensor::Device;
use feedbacknet_core::BinaryOp;
use onnx_ir::{Node, OnnxGraph};

use self::{builder::Compiler, refusals::Refusals};
use crate::{
    error::{OnnxError, Result},
    head_gates::GatePlacement,
    ops::{Activation, ReduceKind, UnaryOp},
    program::Program,
    weights::Weights,
};

/// The program of `graph`, its weights on `device`, its gates where `placement` says.
pub(crate) fn compile(
    graph: &OnnxGraph,
    weights: &Weights,
    device: &Device,
    placement: GatePlacement,
) -> Result<Program> {
    let graph = &*fuse::activations(graph);
    let input = graph
        .inputs
        .iter()
        .find(|a| a.value().is_none() && !weights.contains(&a.name))
        .ok_or_else(|| OnnxError::InvalidGraph("the graph has no runtime input".into()))?;
    let output = graph
        .outputs
        .first()
        .ok_or_else(|| OnnxError::InvalidGraph("the graph has no output".into()))?;
    if graph.nodes.is_empty() {
        return Err(OnnxError::InvalidGraph("the graph has no nodes".into()));
    }
    let mut c = Compiler::new(device, weights, &output.name);
    let input_slot = c.define(&input.name);
    let mut refusals = Refusals::default();
    for node in &graph.nodes {
        let tainted = refusals.reads_refused(node);
        match dispatch(&mut c, node) {
            Ok(()) if !tainted => {}
            Ok(()) => refusals.taint(node),
            Err(e) => refusals.refuse(&mut c, node, e, tainted)?,
        }
    }
    refusals.into_result()?;
    let input_shape = input
        .ty
        .static_shape()
        .cloned()
        .unwrap_or_else(|| vec![None; input.ty.rank()]);
    let mut program = c.finish(input_slot, input_shape)?;
    crate::fold::fold_pads(&mut program);
    if placement == GatePlacement::AttentionHeads {
        crate::head_gates::add(&mut program);
    }
    program.channels_last = crate::channels_last::channels_last(&program);
    program.plan_releases();
    Ok(program)
}

/// Compiles one node with its op family's file.
fn dispatch(c: &mut Compiler, node: &Node) -> Result<()> {
    match node {
        Node::Conv2d(n) => conv::conv2d(c, node, &n.config),
        Node::Relu(_) => activation::relu(c, node),
        Node::Clip(n) => activation::clip(c, node, &n.config),
        Node::Softmax(n) => activation::softmax(c, node, &n.config),
        Node::Gelu(n) => activation::gelu(c, node, &n.config),
        Node::Swish(n) => activation::swish(c, node, &n.config),
        Node::HardSwish(_) => activation::hard_swish(c, node),
        Node::LeakyRelu(n) => activation::leaky_relu(c, node, &n.config),
        Node::Elu(n) => activation::elu(c, node, &n.config),
        Node::Mish(_) => activation::mish(c, node),
        Node::PRelu(_) => activation::prelu(c, node),
        Node::Sigmoid(_) => activation::ungated(c, node, Activation::Sigmoid),
        Node::HardSigmoid(n) => activation::hard_sigmoid(c, node, &n.config),
        Node::Tanh(_) => activation::ungated(c, node, Activation::Tanh),
        Node::Softplus(_) => activation::ungated(c, node, Activation::Softplus),
        Node::MaxPool2d(n) => pool::max_pool2d(c, node, &n.config),
        Node::AveragePool2d(n) => pool::average_pool2d(c, node, &n.config),
        Node::GlobalAveragePool(_) => pool::global_average_pool(c, node),
        Node::Add(_) => elementwise::binary(c, node, BinaryOp::Add),
        Node::Sub(_) => elementwise::binary(c, node, BinaryOp::Sub),
        Node::Mul(_) => elementwise::binary(c, node, BinaryOp::Mul),
        Node::Div(_) => elementwise::divide(c, node),
        Node::Dropout(_) | Node::Identity(_) => elementwise::identity(c, node),
        Node::Linear(n) => linear::linear(c, node, &n.config),
        Node::Gemm(n) => linear::gemm(c, node, &n.config),
        Node::MatMul(_) => linear::matmul(c, node),
        Node::Concat(n) => shape::concat(c, node, &n.config),
        Node::Flatten(n) => shape::flatten(c, node, &n.config),
        Node::Reshape(n) => shape::reshape(c, node, &n.config),
        Node::Pad(n) => shape::pad(c, node, &n.config),
        Node::BatchNormalization(n) => normalization::batch_norm(c, node, &n.config),
        Node::Lrn(n) => normalization::lrn(c, node, &n.config),
        Node::Constant(_) => constant::constant(c, node),
        Node::Transpose(n) => indexing::transpose(c, node, &n.config),
        Node::Slice(n) => indexing::slice(c, node, &n.config),
        Node::Gather(n) => indexing::gather(c, node, &n.config),
        Node::Squeeze(n) => indexing::squeeze(c, node, &n.config),
        Node::Unsqueeze(n) => indexing::unsqueeze(c, node, &n.config),
        Node::Split(n) => indexing::split(c, node, &n.config),
        Node::ReduceMean(n) => reduce::reduce(c, node, &n.config, ReduceKind::Mean),
        Node::ReduceSum(n) => reduce::reduce(c, node, &n.config, ReduceKind::Sum),
        Node::ReduceMax(n) => reduce::reduce(c, node, &n.config, ReduceKind::Max),
        Node::ReduceL2(n) => reduce::reduce(c, node, &n.config, ReduceKind::L2),
        Node::Erf(_) => math::unary(c, node, UnaryOp::Erf),
        Node::Sqrt(_) => math::unary(c, node, UnaryOp::Sqrt),
        Node::Reciprocal(_) => math::unary(c, node, UnaryOp::Reciprocal),
        Node::Exp(_) => math::unary(c, node, UnaryOp::Exp),
        Node::Neg(_) => math::unary(c, node, UnaryOp::Neg),
        Node::Abs(_) => math::unary(c, node, UnaryOp::Abs),
        Node::Pow(_) => math::pow(c, node),
        Node::LayerNormalization(n) => normalization::layer_norm(c, node, &n.config),
        Node::Shape(n) => shape::shape_of(c, node, &n.config),
        Node::Cast(n) => shape::cast(c, node, &n.config),
        Node::Expand(n) => shape::expand(c, node, &n.config),
        Node::ConstantOfShape(n) => shape::constant_of_shape(c, node, &n.config),
        Node::Attention(n) => attention::attention(c, node, &n.config),
        Node::Einsum(n) => logic::einsum(c, node, &n.config),
        Node::Equal(_) => logic::equal(c, node),
        Node::Not(_) => logic::not(c, node),
        Node::Where(_) => logic::where_(c, node),
        Node::Mod(n) => logic::modulo(c, node, &n.config),
        Node::Range(n) => logic::range(c, node, &n.config),
        Node::ScatterND(n) => logic::scatter_nd(c, node, &n.config),
        other => Err(OnnxError::UnsupportedOperator {
            op: other.node_type().to_string(),
            node: node.name().to_string(),
        }),
    }
}
