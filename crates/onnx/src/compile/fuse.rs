//! The exported patterns of SiLU, HardSwish and GELU fused into one activation node each,
//! before dispatch, so that each gets a gate site (one gate on the activation's output, as on
//! a ReLU's) instead of running as a string of element-wise steps:
//!
//! | pattern (as torch exports it) | fused into |
//! |---|---|
//! | `s = Sigmoid(x)`, `Mul(x, s)` (either operand order) | `Swish(x)` with alpha 1 (SiLU) |
//! | `h = HardSigmoid(x)` with alpha 1/6, beta 1/2, `Mul(x, h)` (either order; opset < 14) | `HardSwish(x)` |
//! | `d = Div(x, √2)` or `Mul(x, 1/√2)`, `e = Erf(d)`, `a = Add(e, 1)`, then `Mul(Mul(x, a), 0.5)` or `Mul(Mul(x, 0.5), a)` (operands in either order) | `Gelu(x)`, exact |
//! | `t = Tanh(Mul(√(2/π), Add(x, Mul(0.044715, x³))))` (`x³` as `Mul(x, Mul(x, x))` or `Pow(x, 3)`), then `Add(t, 1)` and the products as above | `Gelu(x)`, tanh form |
//!
//! Every intermediate value must be read by the next node of the pattern alone (and not be a
//! graph output); otherwise the nodes stay as they are (a squeeze-and-excitation scale
//! `Mul(y, Sigmoid(s))` multiplies another value than the sigmoid's input, and stays a
//! `Sigmoid` and a `Mul`). The fused node takes the place of the pattern's last node and
//! writes its output (the graph output's name too, where the pattern ends the graph); it is
//! named after the pattern's nonlinearity (the `Sigmoid`, `HardSigmoid`, `Erf` or `Tanh` node),
//! which names the gate site.
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
    for (index, node) in graph.nodes.iter().enumerate() {
        let found = match node {
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
            Node::Tanh(_) => fusion.gelu_tanh(index),
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
        .filter(|(i, _)| !fusion.removed.contains(i))
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
    removed: HashSet<usize>,
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
            removed: HashSet::new(),
            replaced: HashMap::new(),
        }
    }

    /// Records a fusion, unless one of its nodes belongs to another already.
    fn claim(&mut self, removed: &[usize], last: usize, node: Node) {
        let taken = |i: &usize| self.removed.contains(i) || self.replaced.contains_key(i);
        if removed.iter().any(taken) || taken(&last) {
            return;
        }
        self.removed.extend(removed);
        self.replaced.insert(last, node);
    }

    /// Node `i` (`None` past the end).
    fn node(&self, i: usize) -> Option<&'g Node> {
        self.nodes.get(i)
    }

    /// The single output of node `i`.
    fn output(&self, i: usize) -> Option<&'g str> {
        match self.node(i)?.outputs() {
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
        match self.node(i)? {
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
            match self.node(i)? {
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
        let x = self.node(i)?.inputs().first()?;
        let y = self.output(i)?;
        let m = self.only_reader(y)?;
        let other = self.other_operand(m, y)?;
        if other.name != x.name || x.name == y {
            return None;
        }
        let node = make(
            x.clone(),
            self.node(i)?.name().to_string(),
            self.node(m)?.outputs().to_vec(),
        );
        Some((vec![i], m, node))
    }

    /// The exact GELU around the `Erf` node `e`.
    fn gelu(&self, e: usize) -> Option<Found> {
        // d = x / √2 (or x · 1/√2), read by the Erf alone.
        let d = self.node(e)?.inputs().first()?;
        let &scale = self.producer.get(d.name.as_str())?;
        if self.only_reader(&d.name)? != e {
            return None;
        }
        let x = match self.node(scale)? {
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
        let (mut removed, last) = self.gelu_tail(e, x)?;
        removed.push(scale);
        self.gelu_node(e, x, removed, last, GeluApproximate::Exact)
    }

    /// The GELU node named after node `named`, replacing the nodes `removed` and `last`.
    fn gelu_node(
        &self,
        named: usize,
        x: &Argument,
        removed: Vec<usize>,
        last: usize,
        approximate: GeluApproximate,
    ) -> Option<Found> {
        let node = Node::Gelu(GeluNode {
            name: self.node(named)?.name().to_string(),
            inputs: vec![x.clone()],
            outputs: self.node(last)?.outputs().to_vec(),
            config: GeluConfig { approximate },
        });
        Some((removed, last, node))
    }

    /// After the `Erf` or `Tanh` node `e` of a GELU of `x`: `a = Add(e, 1)`, then
    /// `Mul(Mul(x, a), 0.5)` or `Mul(Mul(x, 0.5), a)` (operands in either order). The nodes to
    /// remove (`e` among them) and the last node.
    fn gelu_tail(&self, e: usize, x: &Argument) -> Option<(Vec<usize>, usize)> {
        let erf = self.output(e)?;
        let add = self.only_reader(erf)?;
        let Node::Add(n) = self.node(add)? else {
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
        if other.name == x.name {
            // (x · a) · 0.5
            let xa = self.output(product)?;
            let last = self.only_reader(xa)?;
            let halves = self.other_operand(last, xa);
            halves
                .is_some_and(|c| self.is_constant(c, 0.5))
                .then(|| (vec![e, add, product], last))
        } else {
            // (x · 0.5) · a
            let &half = self.producer.get(other.name.as_str())?;
            let halved = self.only_reader(&other.name)? == product
                && self
                    .other_operand(half, &x.name)
                    .is_some_and(|c| self.is_constant(c, 0.5));
            halved.then(|| (vec![e, add, half], product))
        }
    }

    /// The tanh-form GELU around the `Tanh` node `t`, as torch exports it:
    /// `Tanh(Mul(√(2/π), Add(x, Mul(0.044715, x³))))` with `x³` as `Mul(x, Mul(x, x))` or
    /// `Pow(x, 3)` (operands in either order), then the tail of [`Fusion::gelu_tail`].
    fn gelu_tanh(&self, t: usize) -> Option<Found> {
        const SQRT_2_OVER_PI: f32 = 0.797_884_6;
        let inner = self.node(t)?.inputs().first()?;
        let mut removed = Vec::new();
        // The node producing `value`, read by `reader` alone.
        let feeding = |value: &str, reader: usize| -> Option<usize> {
            let &i = self.producer.get(value)?;
            (self.only_reader(value)? == reader).then_some(i)
        };
        // `Mul(c, v)` (either order) with the constant `c`: `v`.
        let scaled = |i: usize, c: f32| -> Option<&'g Argument> {
            let (a, b) = self.mul_operands(i)?;
            if self.is_constant(a, c) {
                Some(b)
            } else if self.is_constant(b, c) {
                Some(a)
            } else {
                None
            }
        };
        let scale = feeding(&inner.name, t)?;
        let sum = scaled(scale, SQRT_2_OVER_PI)?;
        let add = feeding(&sum.name, scale)?;
        let Node::Add(n) = self.node(add)? else {
            return None;
        };
        let [p, q] = n.inputs.as_slice() else {
            return None;
        };
        // One operand is x, the other 0.044715·x³.
        let (x, cubic, cube) = [(p, q), (q, p)].into_iter().find_map(|(x, k)| {
            let cubic = feeding(&k.name, add)?;
            let cube = scaled(cubic, 0.044_715)?;
            Some((x, cubic, cube))
        })?;
        let power = feeding(&cube.name, cubic)?;
        match self.node(power)? {
            Node::Pow(n) => match n.inputs.as_slice() {
                [base, e] if base.name == x.name && self.is_constant(e, 3.0) => {}
                _ => return None,
            },
            Node::Mul(_) => {
                let square = self.other_operand(power, &x.name)?;
                let squaring = feeding(&square.name, power)?;
                let (a, b) = self.mul_operands(squaring)?;
                if a.name != x.name || b.name != x.name {
                    return None;
                }
                removed.push(squaring);
            }
            _ => return None,
        }
        removed.extend([scale, add, cubic, power]);
        let (tail, last) = self.gelu_tail(t, x)?;
        removed.extend(tail);
        self.gelu_node(t, x, removed, last, GeluApproximate::Tanh)
    }
}
