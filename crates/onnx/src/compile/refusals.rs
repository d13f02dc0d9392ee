//! The nodes that compiling refused, collected so that one error lists every unsupported
//! operator of the graph (and the nodes using each) rather than the first one alone.

use std::collections::HashSet;

use onnx_ir::Node;

use super::builder::Compiler;
use crate::error::{OnnxError, Result};

/// The refusals so far, and the values that depend on a refused node.
#[derive(Default)]
pub(super) struct Refusals {
    /// Per unsupported operator (first seen first), the nodes that use it.
    operators: Vec<(String, Vec<String>)>,
    /// The refused configurations, as their errors.
    configs: Vec<OnnxError>,
    /// The names of the values computed from a refused node's output.
    tainted: HashSet<String>,
}

impl Refusals {
    /// Whether the node reads a value that depends on a refused node.
    pub(super) fn reads_refused(&self, node: &Node) -> bool {
        node.inputs().iter().any(|a| self.tainted.contains(&a.name))
    }

    /// Records the error of `node`'s compilation and gives its outputs placeholder slots, so
    /// that the nodes after it still compile (their own refusals then get listed too). An
    /// unknown operator is always listed; an unsupported configuration or another error of a
    /// node that reads a refused value is taken as a consequence and dropped. Any other error
    /// of a node that reads no refused value is returned.
    pub(super) fn refuse(
        &mut self,
        c: &mut Compiler,
        node: &Node,
        error: OnnxError,
        tainted: bool,
    ) -> Result<()> {
        match error {
            OnnxError::UnsupportedOperator { op, node: name } => {
                match self.operators.iter_mut().find(|(o, _)| *o == op) {
                    Some((_, nodes)) => nodes.push(name),
                    None => self.operators.push((op, vec![name])),
                }
            }
            e @ OnnxError::UnsupportedConfig { .. } if !tainted => self.configs.push(e),
            _ if tainted => {}
            other => return Err(other),
        }
        for out in node.outputs() {
            c.define(&out.name);
        }
        self.taint(node);
        Ok(())
    }

    /// Marks the node's outputs as depending on a refused node.
    pub(super) fn taint(&mut self, node: &Node) {
        self.tainted
            .extend(node.outputs().iter().map(|o| o.name.clone()));
    }

    /// `Ok` if nothing was refused; the one refusal's own error if there was one; otherwise
    /// [`OnnxError::UnsupportedOperators`] listing them all.
    pub(super) fn into_result(mut self) -> Result<()> {
        if self.operators.is_empty() && self.configs.len() <= 1 {
            return self.configs.pop().map_or(Ok(()), Err);
        }
        if let ([(op, nodes)], []) = (self.operators.as_slice(), self.configs.as_slice())
            && let [node] = nodes.as_slice()
        {
            return Err(OnnxError::UnsupportedOperator {
                op: op.clone(),
                node: node.clone(),
            });
        }
        Err(OnnxError::UnsupportedOperators {
            ops: self.operators,
            configs: self.configs.iter().map(ToString::to_string).collect(),
        })
    }
}
