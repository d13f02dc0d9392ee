//! The large weights of a model, read by this crate rather than through `onnx-ir`.
//!
//! Why (measured with `scripts/load_speed.sh` and `perf`): `onnx-ir` 0.22 copies a constant's
//! bytes into a fresh aligned buffer on every `Argument::value()` call, and its type inference
//! and post-processing call it several times per constant. VGG16 (528 MB) spent 5.7 s of its
//! 7.1 s load in the parser, of which decoding the protobuf was 0.4 s, and its peak memory was
//! four times the weights'.
//!
//! So before the parser sees the model, every float initializer of at least [`LARGE`] bytes is
//! taken out of it, declared a graph input of the same shape under a new name instead, and
//! read from its place in the file once, when the compiler asks for it. The parser still
//! infers every shape from the declared inputs; it never holds the values. The file itself is
//! never held whole in memory: its small parts are read as a stream (see `skeleton`), and each
//! weight straight into the buffer of its values, so the peak at load is about the weights
//! once. Models with subgraphs (`If`, `Loop`, `Scan`) are passed through unchanged.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufReader, Cursor, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use onnx_ir::{GraphProto, Message, ModelProto, ValueInfoProto};

use crate::constant_fold;
use crate::skeleton::{self, Span};

/// The size from which a float initializer is read by this crate.
pub(crate) const LARGE: usize = 64 * 1024;

/// ONNX's `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;

/// Prefix of the names given to the weights taken out (already as `onnx-ir` sanitizes names).
const PREFIX: &str = "feedbacknet_weight_";

/// Where a model's bytes are read from.
#[derive(Debug)]
pub(crate) enum Source {
    /// An open file (read at the weights' offsets, never whole).
    File {
        /// The file, behind a lock for its read position.
        file: Mutex<File>,
        /// Its path, for errors.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
    /// Bytes already in memory.
    Memory(Bytes),
}

impl Source {
    /// The file at `path`, opened.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Source::File {
            file: Mutex::new(file),
            path: path.to_path_buf(),
            len,
        })
    }

    /// The size in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Memory(bytes) => bytes.len() as u64,
        }
    }

    /// The path (`<bytes>` for memory), for errors.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Source::File { path, .. } => path,
            Source::Memory(_) => Path::new("<bytes>"),
        }
    }

    /// The model without its large weights' bytes (see `skeleton`).
    fn skeleton(&self) -> io::Result<skeleton::Skeleton> {
        match self {
            Source::File { file, len, .. } => {
                let mut file = lock(file)?.try_clone()?;
                file.seek(SeekFrom::Start(0))?;
                skeleton::read(BufReader::new(file), *len, LARGE)
            }
            Source::Memory(bytes) => skeleton::read(Cursor::new(bytes), self.len(), LARGE),
        }
    }

    /// Every byte.
    fn read_all(&self) -> io::Result<Bytes> {
        match self {
            Source::File { .. } => self.read_bytes(0, self.len()).map(Bytes::from),
            Source::Memory(bytes) => Ok(bytes.clone()),
        }
    }

    /// The `len` bytes at `offset`.
    fn read_bytes(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(|_| too_large())?;
        let mut bytes = vec![0u8; len];
        self.read_into(offset, &mut bytes)?;
        Ok(bytes)
    }

    /// Fills `out` with the bytes at `offset`.
    fn read_into(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        match self {
            Source::File { file, .. } => {
                let mut file = lock(file)?;
                file.seek(SeekFrom::Start(offset))?;
                file.read_exact(out)
            }
            Source::Memory(bytes) => {
                let start = usize::try_from(offset).map_err(|_| too_large())?;
                let slice = start
                    .checked_add(out.len())
                    .and_then(|end| bytes.get(start..end))
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                out.copy_from_slice(slice);
                Ok(())
            }
        }
    }

    /// The `count` little-endian `f32`s at `offset`, read straight into their buffer.
    fn read_f32(&self, offset: u64, count: usize) -> io::Result<Vec<f32>> {
        let mut values = vec![0f32; count];
        self.read_into(offset, bytemuck::cast_slice_mut(&mut values))?;
        if cfg!(target_endian = "big") {
            for v in &mut values {
                *v = f32::from_bits(u32::from_le(v.to_bits()));
            }
        }
        Ok(values)
    }
}

fn lock(file: &Mutex<File>) -> io::Result<std::sync::MutexGuard<'_, File>> {
    file.lock()
        .map_err(|_| io::Error::other("a reader of this file panicked"))
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "a size larger than memory")
}

/// The weights taken out of a model, by their new names, and where they are read from.
#[derive(Debug, Default)]
pub(crate) struct Weights {
    tensors: HashMap<String, Weight>,
    source: Option<Arc<Source>>,
}

/// One weight: its shape and where its little-endian `f32` bytes are.
#[derive(Debug)]
struct Weight {
    dims: Vec<usize>,
    offset: u64,
    count: usize,
}

impl Weights {
    /// Whether `name` is a weight taken out of the model.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The values and shape of the weight called `name`, if it is one (read now).
    pub(crate) fn values(&self, name: &str) -> Option<io::Result<(Vec<f32>, Vec<usize>)>> {
        let weight = self.tensors.get(name)?;
        let source = self.source.as_ref()?;
        let values = source.read_f32(weight.offset, weight.count);
        Some(values.map(|v| (v, weight.dims.clone())))
    }

    /// Where the weights are read from (for errors).
    pub(crate) fn path(&self) -> &Path {
        self.source
            .as_deref()
            .map_or(Path::new("<bytes>"), Source::path)
    }

    /// The number of weights taken out.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tensors.len()
    }
}

/// The model without its large float initializers, and those weights, its constant integer
/// arithmetic folded (`constant_fold`). A file this reader cannot decode is returned whole, as
/// it is (the parser then reports what is wrong with it).
pub(crate) fn take_large_weights(source: Source) -> io::Result<(Bytes, Weights)> {
    let source = Arc::new(source);
    let whole = |source: &Source| Ok((folded(source.read_all()?), Weights::default()));
    let Ok(skeleton) = source.skeleton() else {
        return whole(&source);
    };
    let Ok(mut model) = ModelProto::parse_from_bytes(&skeleton.bytes) else {
        return whole(&source);
    };
    drop(skeleton.bytes);
    let opset = opset(&model);
    let Some(graph) = model.graph.as_mut() else {
        return whole(&source);
    };
    if has_subgraphs(graph) {
        return whole(&source);
    }
    let spans: HashMap<usize, Span> = skeleton.spans.iter().map(|s| (s.initializer, *s)).collect();
    let mut weights = Weights {
        tensors: HashMap::new(),
        source: Some(source.clone()),
    };
    let mut renamed = HashMap::new();
    let mut kept = Vec::with_capacity(graph.initializer.len());
    for (index, mut tensor) in std::mem::take(&mut graph.initializer)
        .into_iter()
        .enumerate()
    {
        let Some(span) = spans.get(&index) else {
            kept.push(tensor);
            continue;
        };
        let dims: Option<Vec<usize>> = tensor
            .dims
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect();
        let take = tensor.data_type == FLOAT
            && tensor.external_data.is_empty()
            && dims
                .as_ref()
                .is_some_and(|d| byte_size(d) == Some(span.len));
        let (true, Some(dims)) = (take, dims) else {
            // Not a weight this reader takes: its bytes go back where they were.
            tensor.raw_data = source.read_bytes(span.offset, span.len as u64)?.into();
            kept.push(tensor);
            continue;
        };
        let name = format!("{PREFIX}{}", weights.tensors.len());
        renamed.insert(tensor.name.clone(), name.clone());
        let declared = tensor.dims.clone();
        let count = span.len / 4;
        let offset = span.offset;
        weights.tensors.insert(
            name.clone(),
            Weight {
                dims,
                offset,
                count,
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
        return whole(&source);
    }
    let outputs_read_weights = graph.output.iter().any(|o| renamed.contains_key(&o.name));
    if outputs_read_weights {
        return whole(&source);
    }
    for node in &mut graph.node {
        for input in &mut node.input {
            if let Some(name) = renamed.get(input) {
                input.clone_from(name);
            }
        }
    }
    constant_fold::fold_constants(graph, opset);
    match model.write_to_bytes() {
        Ok(stripped) => Ok((Bytes::from(stripped), weights)),
        Err(_) => whole(&source),
    }
}

/// `bytes` with their constant integer arithmetic folded (see `constant_fold`), or as they
/// are when there is none or they do not decode as one graph without subgraphs.
fn folded(bytes: Bytes) -> Bytes {
    let Ok(mut model) = ModelProto::parse_from_bytes(&bytes) else {
        return bytes;
    };
    let opset = opset(&model);
    let Some(graph) = model.graph.as_mut() else {
        return bytes;
    };
    if has_subgraphs(graph) || constant_fold::fold_constants(graph, opset) == 0 {
        return bytes;
    }
    model.write_to_bytes().map_or(bytes, Bytes::from)
}

/// Whether a node of `graph` holds a graph (`If`, `Loop`, `Scan`).
fn has_subgraphs(graph: &GraphProto) -> bool {
    graph.node.iter().any(|n| {
        n.attribute
            .iter()
            .any(|a| a.g.is_some() || !a.graphs.is_empty())
    })
}

/// The model's version of the default operator set (1 when it names none).
fn opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version)
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
        let (model, weights) = take_large_weights(Source::Memory(file.clone())).expect("read");
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
            let (values, dims) = weights.values(&arg.name).expect("a weight").expect("read");
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
            .map(|read| read.expect("read"))
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
        let (_, weights) = take_large_weights(Source::Memory(file)).expect("read");
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
        let (model, weights) = take_large_weights(Source::Memory(cut.clone())).expect("read");
        assert_eq!(model, cut);
        assert_eq!(weights.len(), 0);
    }
}
