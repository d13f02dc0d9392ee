//! [`OnnxNetwork`]: a loaded ONNX model that implements [`GatedNetwork`].

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use burn::tensor::{Device, Tensor};
use feedbacknet_core::{
    ActivationRule, BackwardOutput, BackwardTarget, CoreError, GateSet, GateSite, GatedNetwork,
    InputSize, InputSpec, Normalization,
};

use crate::{
    compile::compile,
    error::{OnnxError, Result},
    execute::Executor,
    head_gates::GatePlacement,
    weights::{Source, take_large_weights},
};

/// Spatial size used when the model does not declare one.
const DEFAULT_INPUT_SIZE: usize = 224;

/// An ONNX CNN loaded at run time, gated after every activation that makes its units (see the
/// crate's documentation for which).
///
/// Any batch size runs, whatever batch the file declares.
#[derive(Debug)]
pub struct OnnxNetwork {
    executor: Executor,
    input_spec: InputSpec,
    device: Device,
    /// The gate sites per input size, found by a probe run.
    sites: Mutex<HashMap<[usize; 2], Arc<[GateSite]>>>,
    /// The file's `metadata_props` (key, value), in file order.
    metadata: Vec<(String, String)>,
    /// The most samples per call, found on first asking (see `find_max_batch`).
    max_batch: OnceLock<Option<usize>>,
}

impl OnnxNetwork {
    /// Loads an ONNX file. Weights go to `device` (a plain, non-autodiff device). The input
    /// size is the one the file declares; the normalization defaults to ImageNet statistics
    /// (override it with [`OnnxNetwork::with_input_spec`]). Gates sit after the activations
    /// ([`GatePlacement::Activations`]).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Self::load_with(path, device, GatePlacement::default())
    }

    /// [`load`](Self::load) with gates where `placement` says (also on attention heads, with
    /// [`GatePlacement::AttentionHeads`]).
    pub fn load_with(
        path: impl AsRef<Path>,
        device: &Device,
        placement: GatePlacement,
    ) -> Result<Self> {
        let path = path.as_ref();
        let io_error = |source| OnnxError::Io {
            path: path.to_path_buf(),
            source,
        };
        let source = Source::open(path).map_err(io_error)?;
        if source.len() == 0 {
            return Err(OnnxError::Empty {
                path: path.to_path_buf(),
            });
        }
        Self::from_source(source, device, placement)
    }

    /// Loads an ONNX model from memory.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::from_bytes_with(bytes, device, GatePlacement::default())
    }

    /// [`from_bytes`](Self::from_bytes) with gates where `placement` says.
    pub fn from_bytes_with(
        bytes: &[u8],
        device: &Device,
        placement: GatePlacement,
    ) -> Result<Self> {
        if bytes.is_empty() {
            return Err(OnnxError::Empty {
                path: "<bytes>".into(),
            });
        }
        let bytes = bytes::Bytes::copy_from_slice(bytes);
        Self::from_source(Source::Memory(bytes), device, placement)
    }

    fn from_source(source: Source, device: &Device, placement: GatePlacement) -> Result<Self> {
        let path = source.path().to_path_buf();
        let path = path.as_path();
        let parse_error = |reason: String| OnnxError::Parse {
            path: path.to_path_buf(),
            reason,
        };
        let panicked = || parse_error("the parser panicked on this file".into());
        // The large weights are read here, not by the parser (see `weights`). Neither protobuf
        // nor onnx-ir validates every value of a damaged file; a panic inside either is turned
        // into an error rather than taking the caller down.
        let (model, weights) = std::panic::catch_unwind(|| take_large_weights(source))
            .map_err(|_| panicked())?
            .map_err(|source| OnnxError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let metadata = crate::metadata::read_metadata_props(&model).unwrap_or_default();
        let parsed =
            std::panic::catch_unwind(|| onnx_ir::OnnxGraphBuilder::new().parse_bytes(&model))
                .map_err(|_| panicked())?;
        drop(model);
        let graph = parsed.map_err(|e| parse_error(with_advice(e.to_string())))?;
        let program = compile(&graph, &weights, device, placement)?;
        drop((graph, weights));
        let dim = |i: usize| {
            program
                .input_shape
                .get(i)
                .copied()
                .flatten()
                .unwrap_or(DEFAULT_INPUT_SIZE)
        };
        if program.input_shape.len() != 4 || dim(1) != 3 {
            return Err(OnnxError::InvalidGraph(format!(
                "expected an RGB image input [N, 3, H, W], found {:?}",
                program.input_shape
            )));
        }
        let (height, width) = (dim(2), dim(3));
        InputSize::new(height, width).map_err(|e| {
            OnnxError::InvalidGraph(format!("the declared input [N, 3, {height}, {width}]: {e}"))
        })?;
        let input_spec = InputSpec::rgb(width, height, Normalization::IMAGENET);
        Ok(Self {
            executor: Executor::probe(program, [height, width], device)?,
            input_spec,
            device: device.clone(),
            sites: Mutex::new(HashMap::new()),
            metadata,
            max_batch: OnceLock::new(),
        })
    }

    /// `Some(1)` when the graph takes one sample per call: it declares batch 1 and a zero
    /// batch of two at the input size fails or does not give two rows of logits (exporters
    /// bake the batch into reshapes, expands and constant class tokens). A graph that declares
    /// another or an open batch takes any number.
    fn find_max_batch(&self) -> Option<usize> {
        if self.executor.program().input_shape.first() != Some(&Some(1)) {
            return None;
        }
        let spec = &self.input_spec;
        let trial = Tensor::zeros([2, spec.channels, spec.height, spec.width], &self.device);
        match self.executor.run(trial, None, None) {
            Ok(logits) if logits.dims() == [2, self.executor.num_outputs()] => None,
            _ => Some(1),
        }
    }

    /// The executor (the compiled program and what its probe learnt).
    #[cfg(test)]
    pub(crate) fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Replaces the input specification (size and normalization).
    pub fn with_input_spec(mut self, spec: InputSpec) -> Self {
        self.input_spec = spec;
        self
    }

    /// The file's `metadata_props` (key, value) in file order, empty when it has none
    /// ([`read_metadata_props`](crate::read_metadata_props)).
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of gated activations.
    pub fn gate_count(&self) -> usize {
        self.executor.program().gate_count
    }

    /// The name of the node whose output is the last convolutional feature map (what
    /// [`BackwardTarget::FeatureMap`] designates), if the graph has one.
    pub fn feature_map_node(&self) -> Option<&str> {
        let slot = self.executor.feature_map_slot()?;
        let program = self.executor.program();
        let step = program.steps.get(program.writer(slot)?)?;
        Some(step.name.as_str())
    }
}

/// The parser's message, with what to do when it could not follow shapes computed at run
/// time (onnx-ir cannot type a `Reshape` whose target is assembled from `Shape` values).
fn with_advice(reason: String) -> String {
    if reason.contains("no statically known length") || reason.contains("Type inference failed") {
        format!(
            "{reason}. The graph computes shapes at run time that the parser cannot follow: \
             simplify it first (`pip install onnxsim`, then `onnxsim model.onnx \
             model_sim.onnx`) and load the simplified file"
        )
    } else {
        reason
    }
}

impl GatedNetwork for OnnxNetwork {
    fn input_spec(&self) -> &InputSpec {
        &self.input_spec
    }

    fn num_outputs(&self) -> usize {
        self.executor.num_outputs()
    }

    fn max_batch(&self) -> Option<usize> {
        *self.max_batch.get_or_init(|| self.find_max_batch())
    }

    fn gate_sites(&self, input_hw: [usize; 2]) -> feedbacknet_core::Result<Arc<[GateSite]>> {
        // The probe runs without the lock held (see `PrefixCache::get`): two first calls at one
        // size may both probe, and the first to finish is kept.
        let known = self
            .sites
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&input_hw)
            .cloned();
        if let Some(sites) = known {
            return Ok(sites);
        }
        let mut sites = Vec::with_capacity(self.gate_count());
        let probe = Tensor::zeros([1, 3, input_hw[0], input_hw[1]], &self.device);
        self.executor.run(probe, None, Some(&mut sites))?;
        let sites: Arc<[GateSite]> = Arc::from(sites);
        let mut cache = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.entry(input_hw).or_insert(sites).clone())
    }

    fn forward(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
    ) -> feedbacknet_core::Result<Tensor<2>> {
        let dims = input.dims();
        if dims[1] != self.input_spec.channels {
            return Err(CoreError::Shape {
                context: "network input".into(),
                expected: format!("[batch, {}, height, width]", self.input_spec.channels),
                got: dims.to_vec(),
            });
        }
        self.executor.run(input, gates, None)
    }

    /// A hand-written reverse pass that collects the gate gradients on its way down.
    fn gate_gradients(
        &self,
        input: Tensor<4>,
        gates: &GateSet,
        seed: &dyn Fn(&Tensor<2>) -> feedbacknet_core::Result<Tensor<2>>,
    ) -> feedbacknet_core::Result<feedbacknet_core::GateGradients> {
        crate::reverse::gate_gradients(&self.executor, input, gates, seed)
    }

    /// The same reverse pass, applying the step at each gate site where its gradient is
    /// computed (fused into the activation's backward pass on flex).
    fn step_gates(
        &self,
        input: Tensor<4>,
        state: feedbacknet_core::GateState,
        moving: &[bool],
        step: &feedbacknet_core::MomentumStep,
        seed: feedbacknet_core::Seed<'_>,
    ) -> feedbacknet_core::Result<feedbacknet_core::SteppedGates> {
        crate::reverse::step_gates(&self.executor, input, state, moving, step, seed)
    }

    /// A hand-written reverse pass: every [`ActivationRule`], to the input or to any gate site.
    fn backward(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        seed: Tensor<2>,
        rule: ActivationRule,
        target: BackwardTarget,
    ) -> feedbacknet_core::Result<BackwardOutput> {
        crate::reverse::backward(&self.executor, input, gates, seed, rule, target)
    }
}
