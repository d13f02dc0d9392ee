//! [`OnnxNetwork`]: a loaded ONNX model that implements [`GatedNetwork`].

use std::{
    collections::{HashMap, VecDeque},
    path::Path,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use burn::tensor::{Device, Int, Tensor};
use feedbacknet_core::{
    ActivationKind, ActivationRule, BackwardOutput, BackwardTarget, CoreError, DynTensor, GateSet,
    GateSite, GatedNetwork, InputSpec, Normalization,
};

use crate::{
    OnnxError, Result,
    compile::{Program, Step, compile},
    ops::{Activation, Op},
};

/// Spatial size used when the model does not declare one.
const DEFAULT_INPUT_SIZE: usize = 224;

/// An ONNX CNN loaded at run time, gated after every `Relu` and `Clip(0, max)`.
///
/// Any batch size runs, whatever batch the file declares.
#[derive(Debug)]
pub struct OnnxNetwork {
    program: Program,
    input_spec: InputSpec,
    num_outputs: usize,
    device: Device,
    sites: Mutex<HashMap<[usize; 2], Arc<[GateSite]>>>,
    /// The value slot of the last convolutional feature map (Grad-CAM's layer), if found.
    feature_map: Option<usize>,
    /// The steps that no gate influences, and their values for the last [`PREFIX_SLOTS`]
    /// inputs seen (most recent first).
    prefix: Vec<usize>,
    prefix_cache: Mutex<VecDeque<PrefixValues>>,
    /// The step of the classifier head's convolution, if the graph ends in one (see `head`).
    head: Option<usize>,
}

/// What a forward pass recorded for a reverse pass keeps, knows already and may skip.
#[derive(Default)]
pub(crate) struct Recording<'a> {
    /// Receives, per value slot, the argmax indices of the max pooling that wrote it.
    pub pool_indices: Option<&'a mut Vec<Option<Tensor<4, Int>>>>,
    /// Values known already (the gate-free prefix).
    pub preset: &'a [(usize, DynTensor)],
    /// The only logits needed exactly, ascending and distinct (see [`feedbacknet_core::Seed`]):
    /// the classifier head then computes those channels alone.
    pub classes: Option<&'a [usize]>,
}

/// Inputs whose gate-free prefix values are kept: one per solver running at the same time (the
/// evaluation's workers; with a single slot, two workers alternating their images would
/// recompute the prefix at almost every iteration).
const PREFIX_SLOTS: usize = 4;

/// The values of the gate-free prefix for one input (a clone shares the tensors).
#[derive(Debug, Clone)]
struct PrefixValues {
    input: Tensor<4>,
    values: Arc<[(usize, DynTensor)]>,
}

impl OnnxNetwork {
    /// Loads an ONNX file. Weights go to `device` (a plain, non-autodiff device). The input
    /// size is the one the file declares; the normalization defaults to ImageNet statistics
    /// (override it with [`OnnxNetwork::with_input_spec`]).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.is_empty() {
            return Err(OnnxError::Empty {
                path: path.to_path_buf(),
            });
        }
        Self::from_bytes_named(&bytes, path, device)
    }

    /// Loads an ONNX model from memory.
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        if bytes.is_empty() {
            return Err(OnnxError::Empty {
                path: "<bytes>".into(),
            });
        }
        Self::from_bytes_named(bytes, Path::new("<bytes>"), device)
    }

    fn from_bytes_named(bytes: &[u8], path: &Path, device: &Device) -> Result<Self> {
        let parse_error = |reason: String| OnnxError::Parse {
            path: path.to_path_buf(),
            reason,
        };
        // onnx-ir does not validate every value of a damaged file; a panic inside the parser is
        // turned into an error rather than taking the caller down.
        let parsed =
            std::panic::catch_unwind(|| onnx_ir::OnnxGraphBuilder::new().parse_bytes(bytes))
                .map_err(|_| parse_error("the parser panicked on this file".into()))?;
        let graph = parsed.map_err(|e| parse_error(e.to_string()))?;
        let program = compile(&graph, device)?;
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
        let input_spec = InputSpec::rgb(width, height, Normalization::IMAGENET);
        let mut network = Self {
            program,
            input_spec,
            num_outputs: 0,
            device: device.clone(),
            sites: Mutex::new(HashMap::new()),
            feature_map: None,
            prefix: Vec::new(),
            prefix_cache: Mutex::new(VecDeque::new()),
            head: None,
        };
        network.prefix = network.program.gate_free_prefix();
        let probe = Tensor::zeros([1, 3, height, width], device);
        let values = network.execute(probe, None, None, Retain::All)?;
        let output = values[network.program.output]
            .clone()
            .ok_or_else(|| OnnxError::InvalidGraph("the graph output was never computed".into()))?;
        network.num_outputs = to_logits(output)?.dims()[1];
        network.feature_map =
            crate::feature_map::find(&network.program, &values, network.num_outputs);
        network.head = crate::head::find(&network.program, &values, network.num_outputs);
        Ok(network)
    }

    /// Replaces the input specification (size and normalization).
    pub fn with_input_spec(mut self, spec: InputSpec) -> Self {
        self.input_spec = spec;
        self
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of gated activations.
    pub fn gate_count(&self) -> usize {
        self.program.gate_count
    }

    fn run(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        record: Option<&mut Vec<GateSite>>,
    ) -> feedbacknet_core::Result<Tensor<2>> {
        let mut values = self.execute(input, gates, record, Retain::Needed)?;
        let logits = values[self.program.output]
            .take()
            .ok_or_else(|| CoreError::Forward {
                node: "<graph output>".into(),
                op: "output".into(),
                reason: "the output was never computed".into(),
            })?;
        to_logits(logits)
    }

    /// Runs every step; returns the value slots (those released on the way are `None`).
    pub(crate) fn execute(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        record: Option<&mut Vec<GateSite>>,
        retain: Retain,
    ) -> feedbacknet_core::Result<Vec<Option<DynTensor>>> {
        self.execute_recorded(input, gates, record, retain, Recording::default())
    }

    /// The values of the steps that no gate influences, for `input`: computed once and reused
    /// while the same input comes back (the soft solver's iterations).
    pub(crate) fn gate_free_values(
        &self,
        input: &Tensor<4>,
    ) -> feedbacknet_core::Result<Arc<[(usize, DynTensor)]>> {
        if let Some(values) = self.cached_prefix(input) {
            return Ok(values);
        }
        // Computed without holding the lock: other workers keep going meanwhile.
        let mut values = self.initial_values(input.clone());
        let mut computed = Vec::with_capacity(self.prefix.len());
        for &index in &self.prefix {
            let step = &self.program.steps[index];
            let out = step
                .op
                .run(step_inputs(step, &values)?)
                .map_err(|e| forward_error(step, e.to_string()))?;
            values[step.output] = Some(out.clone());
            computed.push((step.output, out));
        }
        let computed: Arc<[(usize, DynTensor)]> = Arc::from(computed);
        let mut cache = self.prefix_cache();
        cache.push_front(PrefixValues {
            input: input.clone(),
            values: computed.clone(),
        });
        cache.truncate(PREFIX_SLOTS);
        Ok(computed)
    }

    /// The cached prefix values, if they were computed for this very input (the entry then
    /// becomes the most recent one).
    ///
    /// The inputs are compared without holding the lock: the comparison is a tensor op, and a
    /// pool worker that waits inside a parallel op may pick up another inference, which would
    /// then wait for a lock that its own thread holds.
    fn cached_prefix(&self, input: &Tensor<4>) -> Option<Arc<[(usize, DynTensor)]>> {
        let cached: Vec<PrefixValues> = self.prefix_cache().iter().cloned().collect();
        let same = |cached: &PrefixValues| {
            cached.input.dims() == input.dims()
                && cached
                    .input
                    .clone()
                    .equal(input.clone())
                    .all()
                    .into_scalar::<bool>()
        };
        let values = cached.into_iter().find(same)?.values;
        let mut cache = self.prefix_cache();
        if let Some(found) = cache.iter().position(|e| Arc::ptr_eq(&e.values, &values))
            && let Some(entry) = cache.remove(found)
        {
            cache.push_front(entry);
        }
        Some(values)
    }

    /// The prefix cache, locked (only ever for a few pointer moves).
    fn prefix_cache(&self) -> MutexGuard<'_, VecDeque<PrefixValues>> {
        self.prefix_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The value slots before any step ran: the input and the constants.
    fn initial_values(&self, input: Tensor<4>) -> Vec<Option<DynTensor>> {
        let mut values: Vec<Option<DynTensor>> = vec![None; self.program.slots];
        values[self.program.input] = Some(DynTensor::R4(input));
        for (slot, constant) in &self.program.constants {
            values[*slot] = Some(constant.clone());
        }
        values
    }

    /// [`execute`](Self::execute) that also stores, per value slot, the argmax indices of each
    /// max pooling (for the reverse pass).
    pub(crate) fn execute_recorded(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        mut record: Option<&mut Vec<GateSite>>,
        retain: Retain,
        recording: Recording<'_>,
    ) -> feedbacknet_core::Result<Vec<Option<DynTensor>>> {
        let Recording {
            mut pool_indices,
            preset,
            classes,
        } = recording;
        // The head computes the needed channels alone when they are valid and at most a
        // quarter of them (past that, the one full product is the cheaper way).
        let head = self.head.zip(classes).filter(|(_, c)| {
            !c.is_empty()
                && 4 * c.len() <= self.num_outputs
                && c.iter().all(|&c| c < self.num_outputs)
        });
        if let Some(g) = gates
            && g.len() != self.program.gate_count
        {
            return Err(CoreError::GateMismatch(format!(
                "{} gate sites given, the network has {}",
                g.len(),
                self.program.gate_count
            )));
        }
        let mut values = self.initial_values(input);
        if let Some(indices) = pool_indices.as_deref_mut() {
            indices.resize(self.program.slots, None);
        }
        for (slot, value) in preset {
            values[*slot] = Some(value.clone());
        }
        for (index, step) in self.program.steps.iter().enumerate() {
            if values[step.output].is_some() {
                continue; // a preset value (the steps that no gate influences)
            }
            let inputs = step_inputs(step, &values)?;
            let gated = match (&step.op, step.gate, gates) {
                (Op::Activation(act), Some(k), Some(g)) => Some((*act, k, g)),
                _ => None,
            };
            let rows = head.filter(|(h, _)| *h == index).map(|(_, rows)| rows);
            let out =
                match (gated, rows, pool_indices.as_deref_mut()) {
                    (None, Some(rows), _) => step
                        .op
                        .run_rows(inputs, rows)
                        .ok_or_else(|| forward_error(step, "the head is not a convolution".into()))?
                        .map_err(|e| forward_error(step, e.to_string()))?,
                    (Some((act, k, g)), _, _) => {
                        let x = inputs.into_iter().next().ok_or_else(|| {
                            forward_error(step, "an input value is missing".into())
                        })?;
                        let gate = g.values().get(k).ok_or_else(|| {
                            CoreError::GateMismatch(format!("no gate for site {k}"))
                        })?;
                        crate::kernels::gated_activation(x, act, gate, g.granularity())
                            .map_err(|e| forward_error(step, format!("applying the gate: {e}")))?
                    }
                    (None, None, Some(indices)) => {
                        let (out, pooled) = step
                            .op
                            .run_recorded(inputs)
                            .map_err(|e| forward_error(step, e.to_string()))?;
                        indices[step.output] = pooled;
                        out
                    }
                    (None, None, None) => step
                        .op
                        .run(inputs)
                        .map_err(|e| forward_error(step, e.to_string()))?,
                };
            if step.gate.is_some() {
                if gated.is_none() && gates.is_some() {
                    return Err(forward_error(
                        step,
                        "a gate site that is not an activation".into(),
                    ));
                }
                if let Some(sites) = record.as_deref_mut() {
                    sites.push(site_of(step, &out));
                }
            }
            if retain == Retain::Needed {
                for &slot in &step.release {
                    values[slot] = None;
                }
            }
            values[step.output] = Some(out);
        }
        Ok(values)
    }

    pub(crate) fn program(&self) -> &Program {
        &self.program
    }

    /// The value slot of the last convolutional feature map, if the graph has one.
    pub(crate) fn feature_map_slot(&self) -> Option<usize> {
        self.feature_map
    }

    /// The name of the node whose output is the last convolutional feature map (what
    /// [`BackwardTarget::FeatureMap`] designates), if the graph has one.
    pub fn feature_map_node(&self) -> Option<&str> {
        let slot = self.feature_map?;
        self.program
            .steps
            .iter()
            .find(|s| s.output == slot)
            .map(|s| s.name.as_str())
    }
}

/// Which intermediate values a forward pass keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retain {
    /// Only what later steps still read (a plain forward pass).
    Needed,
    /// Every value (a hand-written reverse pass reads them all).
    All,
}

/// The values a step reads.
fn step_inputs(
    step: &Step,
    values: &[Option<DynTensor>],
) -> feedbacknet_core::Result<Vec<DynTensor>> {
    step.inputs
        .iter()
        .map(|&s| values[s].clone())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| forward_error(step, "an input value is missing".into()))
}

pub(crate) fn forward_error(step: &Step, reason: String) -> CoreError {
    CoreError::Forward {
        node: step.name.clone(),
        op: step.op.name().into(),
        reason,
    }
}

fn site_of(step: &Step, activation: &DynTensor) -> GateSite {
    let kind = match step.op {
        Op::Activation(Activation::Clip { max, .. }) if max.is_finite() => {
            ActivationKind::Clip { max }
        }
        _ => ActivationKind::Relu,
    };
    GateSite {
        name: step.name.clone(),
        shape: activation.dims()[1..].to_vec(),
        activation: kind,
    }
}

/// Accepts `[N, C]` or `[N, C, 1, 1, ..]` outputs as logits.
pub(crate) fn to_logits(output: DynTensor) -> feedbacknet_core::Result<Tensor<2>> {
    let dims = output.dims();
    if dims.len() >= 2 && dims[2..].iter().all(|&d| d == 1) {
        output.reshape(&dims[..2])?.into2("logits")
    } else {
        Err(CoreError::Shape {
            context: "network output".into(),
            expected: "[batch, classes] logits".into(),
            got: dims,
        })
    }
}

impl GatedNetwork for OnnxNetwork {
    fn input_spec(&self) -> &InputSpec {
        &self.input_spec
    }

    fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    fn gate_sites(&self, input_hw: [usize; 2]) -> feedbacknet_core::Result<Arc<[GateSite]>> {
        // The probe runs without the lock held (see `cached_prefix`): two first calls at one
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
        let mut sites = Vec::with_capacity(self.program.gate_count);
        let probe = Tensor::zeros([1, 3, input_hw[0], input_hw[1]], &self.device);
        self.run(probe, None, Some(&mut sites))?;
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
        self.run(input, gates, None)
    }

    /// A hand-written reverse pass that collects the gate gradients on its way down.
    fn gate_gradients(
        &self,
        input: Tensor<4>,
        gates: &GateSet,
        seed: &dyn Fn(&Tensor<2>) -> feedbacknet_core::Result<Tensor<2>>,
    ) -> feedbacknet_core::Result<feedbacknet_core::GateGradients> {
        crate::reverse::gate_gradients(self, input, gates, seed)
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
        crate::reverse::step_gates(self, input, state, moving, step, seed)
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
        crate::reverse::backward(self, input, gates, seed, rule, target)
    }
}
