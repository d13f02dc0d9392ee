//! The executor: runs a compiled [`Program`] forward, with or without gates, recording what a
//! reverse pass needs (every value, the max-pooling argmaxes) and reusing what it may (the
//! gate-free prefix, only the logits a solver reads from the classifier head).

use burn::tensor::{Device, Int, Tensor};
use feedbacknet_core::{ActivationKind, CoreError, DynTensor, GateSet, GateSite};

use crate::{
    channel_gates::GateLayout,
    error::OnnxError,
    feature_map::TokenGrid,
    layout::{Channels, channel_axis, per_sample_shape},
    ops::GatedActivation,
    prefix::{PrefixCache, PrefixValues},
    program::{Program, Step},
    shapes::Shapes,
};

/// A compiled program with what a probe run taught about it.
#[derive(Debug)]
pub(crate) struct Executor {
    program: Program,
    /// The number of logits.
    num_outputs: usize,
    /// The value slot of Grad-CAM's default layer (the last convolutional feature map, or a
    /// transformer's last block input), if found.
    feature_map: Option<usize>,
    /// A vision transformer's patch grid, if the graph is one (see `feature_map`).
    token_grid: Option<TokenGrid>,
    /// The step of the classifier head's convolution, if the graph ends in one (see `head`).
    head: Option<usize>,
    /// The steps that no gate influences, and their values for the last few inputs.
    prefix: PrefixCache,
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
    /// Receives, per value slot, the shape of its value (the probe's only need).
    pub shapes: Option<&'a mut Vec<Option<Vec<usize>>>>,
    /// What runs of the heavy steps (see `shapes::stand_in`).
    pub heavy_steps: HeavySteps,
}

/// Whether a forward pass runs its heavy steps (convolutions, matrix products, attention).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum HeavySteps {
    /// Every step runs (every pass that computes values).
    #[default]
    Run,
    /// A heavy step whose shape rule applies writes zeros of that shape instead: the pass
    /// computes every value's shape, and values only where no heavy step feeds them (the
    /// shape arithmetic of run-time reshapes, which reads shapes alone).
    StandIn,
}

/// Which intermediate values a forward pass keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retain {
    /// Only what later steps still read (a plain forward pass).
    Needed,
    /// Every value (a hand-written reverse pass reads them all).
    All,
}

impl Executor {
    /// The executor of `program`, probed for an image of `[height, width]`: the shape of
    /// every value (from the ops' rules, `shapes`, or else by a forward pass on a zero image)
    /// gives the number of logits, the feature map and the classifier head.
    pub(crate) fn probe(
        program: Program,
        [height, width]: [usize; 2],
        device: &Device,
    ) -> crate::error::Result<Self> {
        let prefix = PrefixCache::new(program.gate_free_prefix());
        let mut executor = Self {
            program,
            num_outputs: 0,
            feature_map: None,
            token_grid: None,
            head: None,
            prefix,
        };
        let shapes = match crate::shapes::infer(&executor.program, [height, width]) {
            Some(shapes) => shapes,
            None => executor.forward_shapes([height, width], device)?,
        };
        let output = (shapes.get(executor.program.output).cloned().flatten())
            .ok_or_else(|| OnnxError::InvalidGraph("the graph output was never computed".into()))?;
        let classes = logit_count(output)?;
        executor.num_outputs = classes;
        let grid = crate::feature_map::token_grid(&executor.program, &shapes);
        executor.token_grid = grid;
        executor.feature_map = crate::feature_map::find(&executor.program, &shapes, classes, grid);
        executor.head = crate::head::find(&executor.program, &shapes, classes);
        Ok(executor)
    }

    /// The shape of every value for a zero image of `[height, width]`, by a forward pass in
    /// which the heavy steps write zeros of their shape instead of running
    /// ([`HeavySteps::StandIn`]). Only the shapes are kept: each value is released as soon as
    /// the steps are done with it, as in any forward pass (peak memory at load).
    pub(crate) fn forward_shapes(
        &self,
        hw: [usize; 2],
        device: &Device,
    ) -> feedbacknet_core::Result<Shapes> {
        self.probe_shapes(hw, device, HeavySteps::StandIn)
    }

    /// [`forward_shapes`](Self::forward_shapes) with every step run (what the stand-ins are
    /// tested against).
    #[cfg(test)]
    pub(crate) fn full_forward_shapes(
        &self,
        hw: [usize; 2],
        device: &Device,
    ) -> feedbacknet_core::Result<Shapes> {
        self.probe_shapes(hw, device, HeavySteps::Run)
    }

    fn probe_shapes(
        &self,
        [height, width]: [usize; 2],
        device: &Device,
        heavy_steps: HeavySteps,
    ) -> feedbacknet_core::Result<Shapes> {
        let probe = Tensor::zeros([1, 3, height, width], device);
        let mut shapes = Vec::new();
        let recording = Recording {
            shapes: Some(&mut shapes),
            heavy_steps,
            ..Recording::default()
        };
        self.execute_recorded(probe, None, None, Retain::Needed, recording)?;
        Ok(shapes)
    }

    /// The compiled program.
    pub(crate) fn program(&self) -> &Program {
        &self.program
    }

    /// The number of logits.
    pub(crate) fn num_outputs(&self) -> usize {
        self.num_outputs
    }

    /// The value slot of the last convolutional feature map, if the graph has one.
    pub(crate) fn feature_map_slot(&self) -> Option<usize> {
        self.feature_map
    }

    /// The patch grid of a vision transformer (its token sequences read as maps).
    pub(crate) fn token_grid(&self) -> Option<TokenGrid> {
        self.token_grid
    }

    /// The logits of `input`, recording the gate sites on the way if asked.
    pub(crate) fn run(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        record: Option<&mut Vec<GateSite>>,
    ) -> feedbacknet_core::Result<Tensor<2>> {
        let mut values = self.execute(input, gates, record, Retain::Needed)?;
        let logits = values.get_mut(self.program.output).and_then(Option::take);
        let logits = logits.ok_or_else(|| CoreError::Forward {
            node: "<graph output>".into(),
            op: "output".into(),
            reason: "the output was never computed".into(),
        })?;
        to_logits(logits)
    }

    /// Runs every step; returns the value slots (those released on the way are `None`).
    fn execute(
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
    ) -> feedbacknet_core::Result<PrefixValues> {
        if let Some(values) = self.prefix.get(input) {
            return Ok(values);
        }
        // Computed without holding the lock: other workers keep going meanwhile.
        let mut values = self.initial_values(input.clone())?;
        let mut computed = Vec::with_capacity(self.prefix.steps().len());
        for &index in self.prefix.steps() {
            let step = self
                .program
                .steps
                .get(index)
                .ok_or_else(|| program_error(format!("no step {index}")))?;
            let out = step
                .op
                .run(step_inputs(step, &values)?)
                .map_err(|e| forward_error(step, e.to_string()))?;
            store(&mut values, step.output, out.clone())?;
            computed.push((step.output, out));
        }
        let computed: PrefixValues = computed.into();
        self.prefix.insert(input.clone(), computed.clone());
        Ok(computed)
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
            mut shapes,
            heavy_steps,
        } = recording;
        let head = self.head_rows(classes);
        self.check_gates(gates)?;
        let batch = input.dims()[0];
        let device = input.device();
        let mut values = self.initial_values(input)?;
        if let Some(indices) = pool_indices.as_deref_mut() {
            indices.resize(self.program.slots, None);
        }
        for (slot, value) in preset {
            store(&mut values, *slot, value.clone())?;
        }
        if let Some(shapes) = shapes.as_deref_mut() {
            *shapes = values
                .iter()
                .map(|v| v.as_ref().map(DynTensor::dims))
                .collect();
        }
        for (index, step) in self.program.steps.iter().enumerate() {
            if values.get(step.output).is_some_and(Option::is_some) {
                continue; // a preset value (the steps that no gate influences)
            }
            let inputs = step_inputs(step, &values)?;
            let gated = match (step.op.gated_activation(), step.gate, gates) {
                (Some(act), Some(k), Some(g)) => {
                    let layout = self.program.gate_layout(step, g.granularity());
                    Some((act, k, g, layout))
                }
                _ => None,
            };
            let rows = head.filter(|(h, _)| *h == index).map(|(_, rows)| rows);
            let out = match stand_in(step, &inputs, heavy_steps, &device) {
                Some(zeros) => zeros?,
                None => run_step(step, inputs, gated, rows, pool_indices.as_deref_mut())?,
            };
            if step.gate.is_some() {
                if gated.is_none() && gates.is_some() {
                    return Err(forward_error(
                        step,
                        "a gate site that is not an activation".into(),
                    ));
                }
                if let Some(sites) = record.as_deref_mut() {
                    let channels_last = self.program.writes_channels_last(step);
                    sites.push(site_of(step, &out, batch, channels_last));
                }
            }
            if let Some(shape) = shapes.as_deref_mut().and_then(|s| s.get_mut(step.output)) {
                *shape = Some(out.dims());
            }
            if retain == Retain::Needed {
                for &slot in &step.release {
                    if let Some(value) = values.get_mut(slot) {
                        *value = None;
                    }
                }
            }
            store(&mut values, step.output, out)?;
        }
        Ok(values)
    }

    /// The head step and the logits it computes alone: the needed channels when they are valid
    /// and at most a quarter of them (past that, the one full product is the cheaper way).
    fn head_rows<'c>(&self, classes: Option<&'c [usize]>) -> Option<(usize, &'c [usize])> {
        self.head.zip(classes).filter(|(_, c)| {
            !c.is_empty()
                && 4 * c.len() <= self.num_outputs
                && c.iter().all(|&c| c < self.num_outputs)
        })
    }

    /// Refuses gates for another number of sites.
    fn check_gates(&self, gates: Option<&GateSet>) -> feedbacknet_core::Result<()> {
        match gates {
            Some(g) if g.len() != self.program.gate_count => Err(CoreError::GateMismatch(format!(
                "{} gate sites given, the network has {}",
                g.len(),
                self.program.gate_count
            ))),
            _ => Ok(()),
        }
    }

    /// The value slots before any step ran: the input and the constants.
    fn initial_values(&self, input: Tensor<4>) -> feedbacknet_core::Result<Vec<Option<DynTensor>>> {
        let mut values: Vec<Option<DynTensor>> = vec![None; self.program.slots];
        store(&mut values, self.program.input, DynTensor::R4(input))?;
        for (slot, constant) in &self.program.constants {
            store(&mut values, *slot, constant.clone())?;
        }
        Ok(values)
    }
}

/// The gate of a gated activation step: its activation, site and gates.
type Gated<'a> = (GatedActivation<'a>, usize, &'a GateSet, GateLayout);

/// Runs one step: gated, for the head's `rows` alone, recording its pooling argmaxes into
/// `indices`, or plainly.
fn run_step(
    step: &Step,
    inputs: Vec<DynTensor>,
    gated: Option<Gated<'_>>,
    rows: Option<&[usize]>,
    indices: Option<&mut Vec<Option<Tensor<4, Int>>>>,
) -> feedbacknet_core::Result<DynTensor> {
    let failed = |e: CoreError| forward_error(step, e.to_string());
    match (gated, rows, indices) {
        (None, Some(rows), _) => step
            .op
            .run_rows(inputs, rows)
            .ok_or_else(|| forward_error(step, "the head is not a convolution".into()))?
            .map_err(failed),
        (Some(gated), _, _) => run_gated(step, inputs, gated),
        (None, None, Some(indices)) => {
            let (out, pooled) = step.op.run_recorded(inputs).map_err(failed)?;
            let slot = indices
                .get_mut(step.output)
                .ok_or_else(|| program_error(format!("no pooling slot {}", step.output)))?;
            *slot = pooled;
            Ok(out)
        }
        (None, None, None) => step.op.run(inputs).map_err(failed),
    }
}

/// Zeros of `step`'s output shape, when `heavy` says to stand them in for a heavy step whose
/// shape rule applies (see `shapes::stand_in`).
fn stand_in(
    step: &Step,
    inputs: &[DynTensor],
    heavy: HeavySteps,
    device: &Device,
) -> Option<feedbacknet_core::Result<DynTensor>> {
    if heavy != HeavySteps::StandIn {
        return None;
    }
    let dims: Vec<Vec<usize>> = inputs.iter().map(DynTensor::dims).collect();
    let dims: Vec<&[usize]> = dims.iter().map(Vec::as_slice).collect();
    let shape = crate::shapes::stand_in(&step.op, &dims)?;
    let zeros = vec![0.0; shape.iter().product()];
    Some(DynTensor::from_vec(zeros, &shape, device))
}

/// Runs a gated activation step with gate site `k` of `gates`.
fn run_gated(
    step: &Step,
    inputs: Vec<DynTensor>,
    (act, k, gates, layout): Gated<'_>,
) -> feedbacknet_core::Result<DynTensor> {
    let x = inputs
        .into_iter()
        .next()
        .ok_or_else(|| forward_error(step, "an input value is missing".into()))?;
    let gate = gates
        .values()
        .get(k)
        .ok_or_else(|| CoreError::GateMismatch(format!("no gate for site {k}")))?;
    crate::channel_gates::gated_activation(x, act, gate, layout)
        .map_err(|e| forward_error(step, format!("applying the gate: {e}")))
}

/// The values a step reads.
fn step_inputs(
    step: &Step,
    values: &[Option<DynTensor>],
) -> feedbacknet_core::Result<Vec<DynTensor>> {
    step.inputs
        .iter()
        .map(|&s| values.get(s).cloned().flatten())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| forward_error(step, "an input value is missing".into()))
}

/// Writes `value` into `slot` of `values`; an error for a slot past the program's (which the
/// compiler never makes).
pub(crate) fn store<T>(
    values: &mut [Option<T>],
    slot: usize,
    value: T,
) -> feedbacknet_core::Result<()> {
    let count = values.len();
    let entry = values
        .get_mut(slot)
        .ok_or_else(|| program_error(format!("value slot {slot} of {count}")))?;
    *entry = Some(value);
    Ok(())
}

/// An inconsistency of the compiled program itself (a step or slot out of range), for `reason`.
pub(crate) fn program_error(reason: String) -> CoreError {
    CoreError::Forward {
        node: "<program>".into(),
        op: "execute".into(),
        reason,
    }
}

/// The error of `step`, for `reason`.
pub(crate) fn forward_error(step: &Step, reason: String) -> CoreError {
    CoreError::Forward {
        node: step.name.clone(),
        op: step.op.name().into(),
        reason,
    }
}

/// The gate site of a gated activation step, from its output (`channels_last`: a
/// channels-last map, see `layout`).
///
/// A value whose leading axis is not the batch of `batch` samples but folds them with another
/// axis (a transformer's MLP run on `[batch · tokens, features]`) has the per-sample shape
/// `[tokens, features]`: its gates are laid out sample by sample as well.
fn site_of(step: &Step, activation: &DynTensor, batch: usize, channels_last: bool) -> GateSite {
    let kind = (step.op.gated_activation())
        .and_then(|act| act.gate_kind())
        .unwrap_or(ActivationKind::Relu);
    let shape = per_sample_shape(&activation.dims(), batch);
    let axis = channel_axis(&shape, Channels::of(Some(kind), channels_last));
    GateSite::new(step.name.clone(), shape, kind).with_channel_axis(axis)
}

/// The number of logits of an output of shape `[N, C]` or `[N, C, 1, 1, ..]`.
fn logit_count(dims: Vec<usize>) -> feedbacknet_core::Result<usize> {
    match dims.as_slice() {
        [_, classes, rest @ ..] if rest.iter().all(|&d| d == 1) => Ok(*classes),
        _ => Err(CoreError::Shape {
            context: "network output".into(),
            expected: "[batch, classes] logits".into(),
            got: dims,
        }),
    }
}

/// Accepts `[N, C]` or `[N, C, 1, 1, ..]` outputs as logits.
pub(crate) fn to_logits(output: DynTensor) -> feedbacknet_core::Result<Tensor<2>> {
    let dims = output.dims();
    let batch = dims.first().copied().unwrap_or(0);
    let classes = logit_count(dims)?;
    output.reshape(&[batch, classes])?.into2("logits")
}
