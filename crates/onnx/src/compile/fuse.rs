//! The exported patterns of SiLU, HardSwish and GELU fused into one activation node each,
//! before dispatch, so that each gets a gate site (one gate on the activation's output, as on
//! a ReLU's) instead of running as a string of element-wise steps:
//!
//! | pattern (as torch exports it) | fused into |
//! |---|---|
//! | `s = Sigmoid(x)`, `Mul(x, s)` (either operand order) | `Swish(x)` with alpha 1 (SiLU) |
//! | `h = HardSigmoid(x)` with alpha 1/6, beta 1/2, `Mul(x, h)` (either order; opset < 14) | `HardSwish(x)` |
//! | `d = Div(x, √2)` or `Mul(x, 1/√2)`, `e = Erf(d)`, `a = Add(e, 1)`, then `Mul(Mul(x, a), 0.5)` or `Mul(Mul(x, 0.5), a)` (operands in either order) | `Gelu(x)`, exact |
//!
//! Every intermediate value must be read by the next node of the pattern alone (and not be a
//! graph output); otherwise the nodes stay as they are (a squeeze-and-excitation scale
//! `Mul(y, Sigmoid(s))` multiplies another value than the sigmoid's input, and stays a
//! `Sigmoid` and a `Mul`). The fused node takes the place of the pattern's last node and
//! writes its output (the graph output's name too, where the pattern ends the graph); it is
//! named after the pattern's nonlinearity (the `Sigmoid`, `HardSigmoid` or `Erf` node), which
//! names the gate site. GELU's tanh form (`Pow`/`Mul` cube, `Tanh`) is not fused yet: it runs
//! ungated, op by op, where those operators load.
//!
//! This runs on the `onnx-ir` node list rather than on the compiled program (as `fold` does):
//! the fused node then goes through the same dispatch arm as the node an exporter writes
//! directly (`Swish`, `HardSwish`, `Gelu`).

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
};

use onnx_ir::{
    Argument, Node, OnnxGraph,
    node::{
        gelu::{GeluApproximate, GeluConfig, GeluNode},
        hard_swish::HardSwishNode,
        swish::{SwishConfig, SwishNode},
    },
};

/// `graph` with the activation patterns fused (borrowed as it is where none was found).
pub(super) fn activations(graph: &OnnxGraph) -> Cow<'_, OnnxGraph> {
    let mut fusion = Fusion::new(graph);
    for index in 0..graph.nodes.len() {
        let found = match &graph.nodes[index] {
            Node::Sigmoid(_) => fusion.times_input(index, |x, name, outputs| {
                Node::Swish(SwishNode {
                    name,
                    inputs: vec![x],
                    outputs,
                    config: SwishConfig { alpha: 1.0 },
                })
            }),
            Node::HardSigmoid(n)
                if close(n.config.alpha, 1.0 / 6.0) && close(n.config.beta, 0.5) =>
            {
                fusion.times_input(index, |x, name, outputs| {
                    Node::HardSwish(HardSwishNode {
                        name,
                        inputs: vec![x],
                        outputs,
                    })
                })
            }
            Node::Erf(_) => fusion.gelu(index),
            _ => None,
        };
        if let Some((removed, last, node)) = found {
            fusion.claim(&removed, last, node);
        }
    }
    if fusion.replaced.is_empty() {
        return Cow::Borrowed(graph);
    }
    let mut fused = graph.clone();
    fused.nodes = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !fusion.removed[*i])
        .map(|(i, node)| fusion.replaced.remove(&i).unwrap_or_else(|| node.clone()))
        .collect();
    Cow::Owned(fused)
}

/// A pattern found: the nodes it removes, the index of its last node, and the node that
/// replaces that one.
type Found = (Vec<usize>, usize, Node);

/// Whether two attribute values agree to within `f32` rounding.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// The graph's readers and producers, and the fusions chosen so far.
struct Fusion<'g> {
    nodes: &'g [Node],
    /// Per value name, the nodes reading it (once per input that names it).
    readers: HashMap<&'g str, Vec<usize>>,
    producer: HashMap<&'g str, usize>,
    graph_outputs: HashSet<&'g str>,
    removed: Vec<bool>,
    replaced: HashMap<usize, Node>,
}

impl<'g> Fusion<'g> {
    fn new(graph: &'g OnnxGraph) -> Self {
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut producer = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            for arg in node.inputs() {
                readers.entry(arg.name.as_str()).or_default().push(i);
            }
            for arg in node.outputs() {
                producer.insert(arg.name.as_str(), i);
            }
        }
        Self {
            nodes: &graph.nodes,
            readers,
            producer,
            graph_outputs: graph.outputs.iter().map(|a| a.name.as_str()).collect(),
            removed: vec![false; graph.nodes.len()],
            replaced: HashMap::new(),
        }
    }

    /// Records a fusion, unless one of its nodes belongs to another already.
    fn claim(&mut self, removed: &[usize], last: usize, node: Node) {
        let taken = |i: &usize| self.removed[*i] || self.replaced.contains_key(i);
        if removed.iter().any(taken) || taken(&last) {
            return;
        }
        for &i in removed {
            self.removed[i] = true;
        }
        self.replaced.insert(last, node);
    }

    /// The single output of node `i`.
    fn output(&self, i: usize) -> Option<&'g str> {
        match self.nodes[i].outputs() {
            [out] => Some(out.name.as_str()),
            _ => None,
        }
    }

    /// The node that alone reads the value `name` (not a graph output either).
    fn only_reader(&self, name: &str) -> Option<usize> {
        if self.graph_outputs.contains(name) {
            return None;
        }
        match self.readers.get(name).map(Vec::as_slice) {
            Some(&[i]) => Some(i),
            _ => None,
        }
    }

    /// The two operands of a binary node `i` if it is a `Mul`.
    fn mul_operands(&self, i: usize) -> Option<(&'g Argument, &'g Argument)> {
        match &self.nodes[i] {
            Node::Mul(n) => match n.inputs.as_slice() {
                [a, b] => Some((a, b)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The constant scalar value of `arg` (its own value, or a `Constant` node's).
    fn scalar(&self, arg: &Argument) -> Option<f32> {
        let data = arg.value().or_else(|| {
            let &i = self.producer.get(arg.name.as_str())?;
            match &self.nodes[i] {
                Node::Constant(n) => n.inputs.first()?.value(),
                _ => None,
            }
        })?;
        match data.try_into_vec_as::<f32>().ok()?.as_slice() {
            &[v] => Some(v),
            _ => None,
        }
    }

    /// Whether `arg` is the constant `value` (to `f32` rounding of an exported constant).
    fn is_constant(&self, arg: &Argument, value: f32) -> bool {
        self.scalar(arg)
            .is_some_and(|v| close(f64::from(v), f64::from(value)))
    }

    /// Of a `Mul` node `i` reading `known`, its other operand.
    fn other_operand(&self, i: usize, known: &str) -> Option<&'g Argument> {
        let (a, b) = self.mul_operands(i)?;
        if a.name == known {
            Some(b)
        } else if b.name == known {
            Some(a)
        } else {
            None
        }
    }

    /// `y = act(x)` read alone by `Mul(x, y)` (either order): the node `make(x, name, outputs)`
    /// replacing both, named after node `i` (the activation).
    fn times_input(
        &self,
        i: usize,
        make: impl FnOnce(Argument, String, Vec<Argument>) -> Node,
    ) -> Option<Found> {
        let x = self.nodes[i].inputs().first()?;
        let y = self.output(i)?;
        let m = self.only_reader(y)?;
        let other = self.other_operand(m, y)?;
        if other.name != x.name || x.name == y {
            return None;
        }
        let node = make(
            x.clone(),
            self.nodes[i].name().to_string(),
            self.nodes[m].outputs().to_vec(),
        );
        Some((vec![i], m, node))
    }

    /// The exact GELU around the `Erf` node `e`.
    fn gelu(&self, e: usize) -> Option<Found> {
        // d = x / √2 (or x · 1/√2), read by the Erf alone.
        let d = self.nodes[e].inputs().first()?;
        let &scale = self.producer.get(d.name.as_str())?;
        if self.only_reader(&d.name)? != e {
            return None;
        }
        let x = match &self.nodes[scale] {
            Node::Div(n) => match n.inputs.as_slice() {
                [x, c] if self.is_constant(c, std::f32::consts::SQRT_2) => x,
                _ => return None,
            },
            Node::Mul(_) => {
                let (a, b) = self.mul_operands(scale)?;
                let half_sqrt2 = std::f32::consts::FRAC_1_SQRT_2;
                if self.is_constant(b, half_sqrt2) {
                    a
                } else if self.is_constant(a, half_sqrt2) {
                    b
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        // a = erf + 1.
        let erf = self.output(e)?;
        let add = self.only_reader(erf)?;
        let Node::Add(n) = &self.nodes[add] else {
            return None;
        };
        let one = match n.inputs.as_slice() {
            [p, q] if p.name == erf => q,
            [p, q] if q.name == erf => p,
            _ => return None,
        };
        if !self.is_constant(one, 1.0) {
            return None;
        }
        let a = self.output(add)?;
        let product = self.only_reader(a)?;
        let other = self.other_operand(product, a)?;
        let (removed, last) = if other.name == x.name {
            // (x · a) · 0.5
            let xa = self.output(product)?;
            let last = self.only_reader(xa)?;
            if !self
                .other_operand(last, xa)
                .is_some_and(|c| self.is_constant(c, 0.5))
            {
                return None;
            }
            (vec![scale, e, add, product], last)
        } else {
            // (x · 0.5) · a
            let &half = self.producer.get(other.name.as_str())?;
            let halved = self.only_reader(&other.name)? == product
                && self
                    .other_operand(half, &x.name)
                    .is_some_and(|c| self.is_constant(c, 0.5));
            if !halved {
                return None;
            }
            (vec![scale, e, add, half], product)
        };
        let node = Node::Gelu(GeluNode {
            name: self.nodes[e].name().to_string(),
            inputs: vec![x.clone()],
            outputs: self.nodes[last].outputs().to_vec(),
            config: GeluConfig {
                approximate: GeluApproximate::Exact,
            },
        });
        Some((removed, last, node))
    }
}
