//! The large weights of a model, read by this crate rather than through `onnx-ir`.
//!
//! Why (measured with `scripts/load_speed.sh` and `perf`): `onnx-ir` 0.22 copies a constant's
//! bytes into a fresh aligned buffer on every `Argument::value()` call, and its type inference
//! and post-processing call it several times per constant. VGG16 (528 MB) spent 5.7 s of its
//! 7.1 s load in the parser, of which decoding the protobuf was 0.4 s, and its peak memory was
//! four times the weights'. Reading them here: 1.4 s and twice the weights (an onnxruntime
//! session: 2.1 s and twice the weights).
//!
//! So before the parser sees the model, every float initializer of at least [`LARGE`] bytes is
//! taken out of it (a zero-copy slice of the file's bytes), declared a graph input of the same
//! shape under a new name instead, and decoded once, when the compiler asks for it. The
//! parser still infers every shape from the declared inputs; it never holds the values. Models
//! with subgraphs (`If`, `Loop`, `Scan`) are passed through unchanged.

use std::collections::HashMap;

use bytes::Bytes;
use onnx_ir::{Message, ModelProto, ValueInfoProto};

/// The size from which a float initializer is read by this crate.
pub(crate) const LARGE: usize = 64 * 1024;

/// ONNX's `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;

/// Prefix of the names given to the weights taken out (already as `onnx-ir` sanitizes names).
const PREFIX: &str = "feedbacknet_weight_";

/// The weights taken out of a model, by their new names.
#[derive(Debug, Default)]
pub(crate) struct Weights {
    tensors: HashMap<String, Weight>,
}

/// One weight: its shape and its little-endian `f32` bytes.
#[derive(Debug)]
struct Weight {
    dims: Vec<usize>,
    bytes: Bytes,
}

impl Weights {
    /// Whether `name` is a weight taken out of the model.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The values and shape of the weight called `name`, if it is one.
    pub(crate) fn values(&self, name: &str) -> Option<(Vec<f32>, Vec<usize>)> {
        let weight = self.tensors.get(name)?;
        let (words, _) = weight.bytes.as_chunks::<4>();
        let values = words.iter().map(|&b| f32::from_le_bytes(b)).collect();
        Some((values, weight.dims.clone()))
    }

    /// The number of weights taken out.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tensors.len()
    }
}

/// The model without its large float initializers, and those weights. A file this reader cannot
/// decode is returned as it is (the parser then reports what is wrong with it).
pub(crate) fn take_large_weights(file: Bytes) -> (Bytes, Weights) {
    let Ok(mut model) = ModelProto::parse_from_tokio_bytes(&file) else {
        return (file, Weights::default());
    };
    let Some(graph) = model.graph.as_mut() else {
        return (file, Weights::default());
    };
    let has_subgraphs = graph.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    });
    if has_subgraphs {
        return (file, Weights::default());
    }
    let mut weights = Weights::default();
    let mut renamed = HashMap::new();
    let mut kept = Vec::with_capacity(graph.initializer.len());
    for tensor in std::mem::take(&mut graph.initializer) {
        let dims: Option<Vec<usize>> = tensor
            .dims
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        let take = tensor.data_type == FLOAT
            && tensor.raw_data.len() >= LARGE
            && tensor.external_data.is_empty()
            && dims
                .as_ref()
                .is_some_and(|d| byte_size(d) == Some(tensor.raw_data.len()));
        let (true, Some(dims)) = (take, dims) else {
            kept.push(tensor);
            continue;
        };
        let name = format!("{PREFIX}{}", weights.tensors.len());
        renamed.insert(tensor.name.clone(), name.clone());
        let declared = tensor.dims.clone();
        weights.tensors.insert(
            name.clone(),
            Weight {
                dims,
                bytes: tensor.raw_data,
            },
        );
        match graph.input.iter_mut().find(|i| i.name == tensor.name) {
            Some(input) => declare_float_input(input, &name, &declared),
            None => {
                let mut input = ValueInfoProto::new();
                declare_float_input(&mut input, &name, &declared);
                graph.input.push(input);
            }
        }
    }
    graph.initializer = kept;
    if weights.tensors.is_empty() {
        return (file, weights);
    }
    let outputs_read_weights = graph.output.iter().any(|o| renamed.contains_key(&o.name));
    if outputs_read_weights {
        return (file, Weights::default());
    }
    for node in &mut graph.node {
        for input in &mut node.input {
            if let Some(name) = renamed.get(input) {
                input.clone_from(name);
            }
        }
    }
    match model.write_to_bytes() {
        Ok(stripped) => (Bytes::from(stripped), weights),
        Err(_) => (file, Weights::default()),
    }
}

/// The bytes of a float tensor of shape `dims`; `None` if that overflows.
fn byte_size(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(4usize, |size, &d| size.checked_mul(d))
}

/// Makes `input` the float input `name` of shape `dims`.
fn declare_float_input(input: &mut ValueInfoProto, name: &str, dims: &[i64]) {
    input.name = name.to_string();
    let tensor = input.type_.mut_or_insert_default().mut_tensor_type();
    tensor.elem_type = FLOAT;
    let shape = tensor.shape.mut_or_insert_default();
    shape.dim.clear();
    for &d in dims {
        shape.dim.push(Default::default());
        if let Some(dim) = shape.dim.last_mut() {
            dim.set_dim_value(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squeezenet() -> Bytes {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/models/squeezenet1.1.onnx"
        );
        Bytes::from(std::fs::read(path).expect("the shared SqueezeNet"))
    }

    #[test]
    fn large_weights_become_declared_inputs_and_read_back_as_in_the_file() {
        let file = squeezenet();
        let original = ModelProto::parse_from_tokio_bytes(&file).expect("a model");
        let (model, weights) = take_large_weights(file.clone());
        assert!(model.len() < file.len() / 10, "the weights left the model");
        let large = original
            .graph
            .initializer
            .iter()
            .filter(|t| t.raw_data.len() >= LARGE)
            .count();
        assert!(large > 0);
        assert_eq!(weights.len(), large);
        let graph = onnx_ir::OnnxGraphBuilder::new()
            .parse_bytes(&model)
            .expect("the parser takes the model without its weights");
        let declared: Vec<_> = graph
            .inputs
            .iter()
            .filter(|a| weights.contains(&a.name))
            .collect();
        assert_eq!(declared.len(), large, "each weight is a declared input");
        for arg in declared {
            let (values, dims) = weights.values(&arg.name).expect("values");
            let shape = arg.ty.static_shape().cloned().expect("a static shape");
            assert_eq!(shape, dims.iter().map(|&d| Some(d)).collect::<Vec<_>>());
            assert_eq!(values.len(), dims.iter().product::<usize>());
        }
        // The values are the file's: the first large initializer, value for value.
        let first = original
            .graph
            .initializer
            .iter()
            .find(|t| t.raw_data.len() >= LARGE)
            .expect("one");
        let expected: Vec<f32> = first
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let found = (0..weights.len())
            .filter_map(|i| weights.values(&format!("{PREFIX}{i}")))
            .any(|(values, _)| values == expected);
        assert!(found);
    }

    #[test]
    fn a_weight_whose_size_overflows_stays_in_the_model() {
        let mut model = ModelProto::parse_from_tokio_bytes(&squeezenet()).expect("a model");
        let graph = model.graph.as_mut().expect("a graph");
        let large = graph
            .initializer
            .iter()
            .filter(|t| t.raw_data.len() >= LARGE)
            .count();
        let tensor = (graph.initializer.iter_mut())
            .find(|t| t.raw_data.len() >= LARGE)
            .expect("a large initializer");
        // 4 · 2^62 · 2 bytes overflows `usize`: the size check must not.
        tensor.dims = vec![1 << 62, 2];
        let file = Bytes::from(model.write_to_bytes().expect("written"));
        let (_, weights) = take_large_weights(file);
        assert_eq!(
            weights.len(),
            large - 1,
            "the malformed weight is left to the parser"
        );
    }

    #[test]
    fn a_file_it_cannot_decode_is_passed_through_unchanged() {
        let file = squeezenet();
        let cut = file.slice(..file.len() / 3);
        let (model, weights) = take_large_weights(cut.clone());
        assert_eq!(model, cut);
        assert_eq!(weights.len(), 0);
    }
}
