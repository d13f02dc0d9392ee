//! The [`Compiler`]: the value slots, constants and steps of the program being built, and the
//! helpers through which every op family file reads a node's inputs and pushes its step.

use std::collections::HashMap;

use burn::tensor::{Device, Tensor, TensorData};
use feedbacknet_core::DynTensor;
use onnx_ir::{Argument, Node};

use crate::{
    error::{OnnxError, Result},
    ops::{Activation, Op},
    program::{Program, Step},
    weights::Weights,
};

/// A program under construction, one node at a time.
pub(super) struct Compiler<'a> {
    device: &'a Device,
    /// The large weights taken out of the model before parsing (see `weights`).
    weights: &'a Weights,
    /// The graph output's name (a final Softmax is skipped, see `activation::softmax`).
    graph_output: &'a str,
    slots: HashMap<String, usize>,
    next_slot: usize,
    constants: Vec<(usize, DynTensor)>,
    steps: Vec<Step>,
    gate_count: usize,
}

impl<'a> Compiler<'a> {
    /// An empty program whose result is the value named `graph_output`.
    pub(super) fn new(device: &'a Device, weights: &'a Weights, graph_output: &'a str) -> Self {
        Self {
            device,
            weights,
            graph_output,
            slots: HashMap::new(),
            next_slot: 0,
            constants: Vec::new(),
            steps: Vec::new(),
            gate_count: 0,
        }
    }

    /// The program, reading `input_slot` with the declared `input_shape`.
    pub(super) fn finish(
        self,
        input_slot: usize,
        input_shape: Vec<Option<usize>>,
    ) -> Result<Program> {
        let output = *self.slots.get(self.graph_output).ok_or_else(|| {
            OnnxError::InvalidGraph(format!(
                "no node produces the output `{}`",
                self.graph_output
            ))
        })?;
        Ok(Program {
            steps: self.steps,
            constants: self.constants,
            slots: self.next_slot,
            input: input_slot,
            output,
            input_shape,
            channels_last: Vec::new(),
            gate_count: self.gate_count,
        })
    }

    /// A new slot for the value called `name`.
    pub(super) fn define(&mut self, name: &str) -> usize {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.slots.insert(name.to_string(), slot);
        slot
    }

    /// Makes `name` another name of `slot`.
    pub(super) fn alias(&mut self, name: &str, slot: usize) {
        self.slots.insert(name.to_string(), slot);
    }

    /// Whether the node's first output is the graph output.
    pub(super) fn writes_graph_output(&self, node: &Node) -> bool {
        node.outputs()
            .first()
            .is_some_and(|o| o.name == self.graph_output)
    }

    /// The slot of a runtime or constant input.
    pub(super) fn input_slot(&mut self, arg: &Argument, node: &str) -> Result<usize> {
        if let Some((values, shape)) = self.constant_values(arg, node)? {
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

    /// The constant at input `index` as a tensor of any rank (a scalar as `[1]`), if the node
    /// has that input; an error if it is computed at run time.
    pub(super) fn constant(&self, node: &Node, index: usize) -> Result<Option<DynTensor>> {
        let Some((values, shape)) = self.required_constant(node, index, "")? else {
            return Ok(None);
        };
        let shape = if shape.is_empty() { vec![1] } else { shape };
        Ok(Some(DynTensor::from_vec(values, &shape, self.device)?))
    }

    /// A constant slot holding `tensor`, named as the node's first output (no step).
    pub(super) fn define_constant(&mut self, node: &Node, tensor: DynTensor) -> Result<()> {
        let out = node.outputs().first().ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` has no output", node.name()))
        })?;
        let slot = self.define(&out.name);
        self.constants.push((slot, tensor));
        Ok(())
    }

    /// The values of the node's input `index` as floats, if it is a constant.
    pub(super) fn constant_floats(&self, node: &Node, index: usize) -> Result<Option<Vec<f32>>> {
        let Some(arg) = present_input(node, index) else {
            return Ok(None);
        };
        Ok(self
            .constant_values(arg, node.name())?
            .map(|(values, _)| values))
    }

    /// The values and shape of the node's input `index`, if the node has that input; an error
    /// naming it (`what`: "weights " or "") if it is computed at run time.
    fn required_constant(
        &self,
        node: &Node,
        index: usize,
        what: &str,
    ) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
        let Some(arg) = present_input(node, index) else {
            return Ok(None);
        };
        let found = self.constant_values(arg, node.name())?.ok_or_else(|| {
            unsupported(
                node.name(),
                &node.node_type().to_string(),
                format!("input {index} must be a constant ({what}computed at run time)"),
            )
        })?;
        Ok(Some(found))
    }

    /// A constant argument's finite values and shape; `None` if computed at run time.
    fn constant_values(
        &self,
        arg: &Argument,
        node: &str,
    ) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
        constant_values(self.weights, arg, node)
    }

    /// The device the weights live on.
    pub(super) fn device(&self) -> &Device {
        self.device
    }

    /// The constant weight at input `index`, if the node has that input.
    pub(super) fn weight<const D: usize>(
        &self,
        node: &Node,
        index: usize,
    ) -> Result<Option<Tensor<D>>> {
        let Some((values, shape)) = self.required_constant(node, index, "weights ")? else {
            return Ok(None);
        };
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

    /// The constant weight at input `index`, which the node must have.
    pub(super) fn required_weight<const D: usize>(
        &self,
        node: &Node,
        index: usize,
    ) -> Result<Tensor<D>> {
        self.weight(node, index)?.ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` lacks input {index}", node.name()))
        })
    }

    /// The slot of the node's input `index` (runtime or constant).
    pub(super) fn slot_of(&mut self, node: &Node, index: usize) -> Result<usize> {
        let arg = node.inputs().get(index).ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` lacks input {index}", node.name()))
        })?;
        self.input_slot(arg, node.name())
    }

    /// Pushes a step reading `inputs` and writing the node's first output.
    pub(super) fn step(&mut self, node: &Node, op: Op, inputs: Vec<usize>) -> Result<()> {
        self.push(node, op, inputs, None)
    }

    /// Pushes a step reading `inputs` and writing the node's output `index`.
    pub(super) fn step_output(
        &mut self,
        node: &Node,
        op: Op,
        inputs: Vec<usize>,
        index: usize,
    ) -> Result<()> {
        self.push_at(node, op, inputs, None, index)
    }

    /// Pushes a step writing the node's first output.
    fn push(&mut self, node: &Node, op: Op, inputs: Vec<usize>, gate: Option<usize>) -> Result<()> {
        self.push_at(node, op, inputs, gate, 0)
    }

    /// Pushes a step writing the node's output `index`.
    fn push_at(
        &mut self,
        node: &Node,
        op: Op,
        inputs: Vec<usize>,
        gate: Option<usize>,
        index: usize,
    ) -> Result<()> {
        let out = node.outputs().get(index).ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` has no output {index}", node.name()))
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
    pub(super) fn unary(&mut self, node: &Node, op: Op) -> Result<()> {
        self.unary_gated(node, op, None)
    }

    fn unary_gated(&mut self, node: &Node, op: Op, gate: Option<usize>) -> Result<()> {
        let first = node.inputs().first().ok_or_else(|| {
            OnnxError::InvalidGraph(format!("node `{}` has no input", node.name()))
        })?;
        let slot = self.input_slot(first, node.name())?;
        self.push(node, op, vec![slot], gate)
    }

    /// Pushes an op over all of the node's (non-optional) inputs.
    pub(super) fn nary(&mut self, node: &Node, op: Op) -> Result<()> {
        let slots = node
            .inputs()
            .iter()
            .filter(|a| !a.is_optional())
            .map(|a| self.input_slot(a, node.name()))
            .collect::<Result<Vec<_>>>()?;
        self.push(node, op, slots, None)
    }

    /// Pushes an activation with a gate site of its own.
    pub(super) fn gated(&mut self, node: &Node, activation: Activation) -> Result<()> {
        self.gated_op(node, Op::Activation(activation))
    }

    /// Pushes `op` (an activation op, see `Op::gated_activation`) with a gate site of its own.
    pub(super) fn gated_op(&mut self, node: &Node, op: Op) -> Result<()> {
        let gate = self.gate_count;
        self.gate_count += 1;
        self.unary_gated(node, op, Some(gate))
    }
}

/// The node's input `index`, unless it is absent or left out (optional).
fn present_input(node: &Node, index: usize) -> Option<&Argument> {
    node.inputs().get(index).filter(|a| !a.is_optional())
}

/// The error of a node whose configuration the interpreter does not run.
pub(super) fn unsupported(node: &str, op: &str, reason: impl Into<String>) -> OnnxError {
    OnnxError::UnsupportedConfig {
        op: op.into(),
        node: node.into(),
        reason: reason.into(),
    }
}

/// The values of the node's input `index` as integers, if it is a constant (ONNX axes, indices
/// and shapes); `None` if it is absent or computed at run time.
pub(super) fn constant_ints(node: &Node, index: usize) -> Result<Option<Vec<i64>>> {
    let Some(arg) = present_input(node, index) else {
        return Ok(None);
    };
    let Some(data) = arg.value() else {
        return Ok(None);
    };
    let values = data.try_into_vec_as::<i64>().map_err(|e| {
        OnnxError::InvalidGraph(format!(
            "constant `{}` of node `{}`: {e:?}",
            arg.name,
            node.name()
        ))
    })?;
    Ok(Some(values))
}

/// Reads a constant argument (or a large weight taken out before parsing) as finite `f32`
/// values with its shape.
fn constant_values(
    weights: &Weights,
    arg: &Argument,
    node: &str,
) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
    let (values, shape) = match arg.value() {
        Some(data) => {
            let shape = data.shape().as_slice().to_vec();
            let values = data.try_into_vec_as::<f32>().map_err(|e| {
                OnnxError::InvalidGraph(format!("constant `{}` of node `{node}`: {e:?}", arg.name))
            })?;
            (values, shape)
        }
        None => match weights.values(&arg.name) {
            Some(read) => read.map_err(|source| OnnxError::Io {
                path: weights.path().to_path_buf(),
                source,
            })?,
            None => return Ok(None),
        },
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(OnnxError::NonFiniteWeights {
            node: node.into(),
            input: arg.name.clone(),
        });
    }
    Ok(Some((values, shape)))
}
