//! Gate sites (where a network can be gated) and gate sets (the gate values).

use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{CoreError, DynTensor, Result};

/// The activation whose output a gate multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ActivationKind {
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, 0, max)`, such as ReLU6 (`max` = 6).
    Clip {
        /// Upper bound of the clip.
        max: f32,
    },
    /// SiLU (Swish), `x·σ(x)`.
    Silu,
    /// HardSwish, `x·relu6(x + 3)/6`.
    HardSwish,
    /// GELU, exact (`x·Φ(x)`).
    Gelu,
    /// GELU, tanh approximation.
    GeluTanh,
    /// LeakyReLU: `x` for `x > 0`, `alpha·x` otherwise.
    LeakyRelu {
        /// The negative slope.
        alpha: f32,
    },
    /// ELU: `x` for `x > 0`, `alpha·(eˣ − 1)` otherwise.
    Elu {
        /// The scale of the negative part.
        alpha: f32,
    },
    /// Mish, `x·tanh(softplus(x))`.
    Mish,
    /// PReLU with one slope for all channels.
    PRelu {
        /// The learnt negative slope.
        slope: f32,
    },
    /// PReLU whose learnt slopes differ per channel: `x` for `x > 0`, `a·x` otherwise, `a` the
    /// slope tensor broadcast over the activation as ONNX `PRelu` broadcasts it (`[C, 1, 1]`
    /// on a `[N, C, H, W]` map, `[C]` on `[N, C]` features or on channels-last `[.., C]`
    /// tokens). The values themselves stay with the network.
    PReluPerChannel {
        /// The number of slope values (the channels, in the usual export).
        slopes: usize,
    },
    /// No activation: the outputs of an attention's heads, `[heads, tokens, head size]` per
    /// sample, gated one gate per head (on the channel axis, the heads) whatever the gate
    /// set's granularity, before the heads are merged. Every backward rule passes the gradient
    /// through unchanged: guided backprop and DeconvNet modify activations, and there is none
    /// here.
    AttentionHeads,
}

impl ActivationKind {
    /// The granularity of a site of this kind in a gate set of `granularity`: one gate per
    /// head on [`AttentionHeads`](Self::AttentionHeads) sites (per channel), the set's
    /// elsewhere.
    pub fn granularity(self, granularity: GateGranularity) -> GateGranularity {
        match self {
            ActivationKind::AttentionHeads => GateGranularity::Channel,
            _ => granularity,
        }
    }
}

/// One place in a network where a gate multiplies an activation's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateSite {
    /// Name of the activation node (unique within the network).
    pub name: String,
    /// Per-sample shape of the activation, without the batch dimension (`[C, H, W]` for a
    /// convolutional layer, `[C]` for a fully connected one, `[tokens, C]` for a transformer's
    /// MLP, `[H, W, C]` for a channels-last map).
    pub shape: Vec<usize>,
    /// The activation that is gated.
    pub activation: ActivationKind,
    /// The axis of `shape` that holds the channels (features): 0 for `[C, H, W]` and `[C]`
    /// (the default), the last for `[tokens, C]` and `[H, W, C]`. Per-channel gates
    /// ([`GateGranularity::Channel`]) have one gate along it.
    #[serde(default)]
    pub channel_axis: usize,
}

impl GateSite {
    /// A site whose channels are the first per-sample axis (`[C, H, W]`, `[C]`).
    pub fn new(name: impl Into<String>, shape: Vec<usize>, activation: ActivationKind) -> Self {
        Self {
            name: name.into(),
            shape,
            activation,
            channel_axis: 0,
        }
    }

    /// This site with its channels on per-sample axis `axis` (the last one for token
    /// sequences and channels-last maps).
    pub fn with_channel_axis(mut self, axis: usize) -> Self {
        self.channel_axis = axis;
        self
    }

    /// Number of channels (the size of the channel axis).
    pub fn channels(&self) -> usize {
        self.shape.get(self.channel_axis).copied().unwrap_or(1)
    }

    /// Per-sample shape of the gate tensor for the given granularity: the activation shape for
    /// per-neuron gates; for per-channel gates, 1 on every axis but the channel axis (`[C, 1,
    /// 1]`, `[1, C]`; it broadcasts). Attention-head sites have per-channel gates (one per
    /// head) at either granularity ([`ActivationKind::granularity`]).
    pub fn gate_shape(&self, granularity: GateGranularity) -> Vec<usize> {
        match self.activation.granularity(granularity) {
            GateGranularity::Neuron => self.shape.clone(),
            GateGranularity::Channel => {
                let mut shape = vec![1; self.shape.len()];
                match shape.get_mut(self.channel_axis) {
                    Some(axis) => *axis = self.channels(),
                    None => shape = vec![1],
                }
                shape
            }
        }
    }

    /// Number of gates per sample at this site.
    pub fn gate_count(&self, granularity: GateGranularity) -> usize {
        self.gate_shape(granularity).iter().product()
    }
}

/// How finely gates are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateGranularity {
    /// One gate per hidden neuron (the paper's formulation).
    #[default]
    Neuron,
    /// One gate per channel of each gated layer.
    Channel,
}

/// Gate values for every gate site of a network, for a batch of samples.
///
/// Each site's gates are stored as a `[batch, gates_per_sample]` tensor; [`GateSet::gate`]
/// returns them shaped like the activation (`[batch, C, H, W]` or `[batch, C, 1, 1]`).
///
/// ```
/// use std::sync::Arc;
/// use feedbacknet_core::{ActivationKind, Device, GateGranularity, GateSet, GateSite};
///
/// let sites: Arc<[GateSite]> = Arc::from(vec![
///     GateSite::new("relu1", vec![8, 4, 4], ActivationKind::Relu),
///     GateSite::new("gelu1", vec![16, 32], ActivationKind::Gelu).with_channel_axis(1),
/// ]);
/// let gates = GateSet::ones(sites, 2, GateGranularity::Channel, &Device::flex());
/// assert_eq!(gates.gate(0).unwrap().dims(), vec![2, 8, 1, 1]);
/// assert_eq!(gates.gate(1).unwrap().dims(), vec![2, 1, 32]);
/// ```
#[derive(Debug, Clone)]
pub struct GateSet {
    sites: Arc<[GateSite]>,
    granularity: GateGranularity,
    batch: usize,
    values: Vec<Tensor<2>>,
}

impl GateSet {
    /// All gates open (1): the plain feed-forward network.
    pub fn ones(
        sites: Arc<[GateSite]>,
        batch: usize,
        granularity: GateGranularity,
        device: &Device,
    ) -> Self {
        let values = sites
            .iter()
            .map(|site| Tensor::ones([batch, site.gate_count(granularity)], device))
            .collect();
        Self {
            sites,
            granularity,
            batch,
            values,
        }
    }

    /// Builds a gate set from per-site `[batch, gates_per_sample]` tensors.
    pub fn from_values(
        sites: Arc<[GateSite]>,
        batch: usize,
        granularity: GateGranularity,
        values: Vec<Tensor<2>>,
    ) -> Result<Self> {
        if values.len() != sites.len() {
            return Err(CoreError::GateMismatch(format!(
                "{} gate tensors for {} sites",
                values.len(),
                sites.len()
            )));
        }
        for (site, value) in sites.iter().zip(&values) {
            let expected = [batch, site.gate_count(granularity)];
            if value.dims() != expected {
                return Err(CoreError::GateMismatch(format!(
                    "site `{}` expects gates of shape {expected:?}, got {:?}",
                    site.name,
                    value.dims()
                )));
            }
        }
        Ok(Self {
            sites,
            granularity,
            batch,
            values,
        })
    }

    /// The gate sites these gates belong to.
    pub fn sites(&self) -> &Arc<[GateSite]> {
        &self.sites
    }

    /// Per-neuron or per-channel.
    pub fn granularity(&self) -> GateGranularity {
        self.granularity
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Number of gate sites.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the network has no gate sites.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The per-site `[batch, gates_per_sample]` tensors.
    pub fn values(&self) -> &[Tensor<2>] {
        &self.values
    }

    /// Takes the per-site tensors out.
    pub fn into_values(self) -> Vec<Tensor<2>> {
        self.values
    }

    /// The gates of site `index`, shaped to broadcast against its activation.
    pub fn gate(&self, index: usize) -> Result<DynTensor> {
        let (site, values) = self
            .sites
            .get(index)
            .zip(self.values.get(index))
            .ok_or_else(|| {
                CoreError::GateMismatch(format!(
                    "no gate site {index} (the set has {})",
                    self.sites.len()
                ))
            })?;
        let mut shape = vec![self.batch];
        shape.extend(site.gate_shape(self.granularity));
        DynTensor::R2(values.clone()).reshape(&shape)
    }

    /// Makes every gate a fresh autodiff leaf whose gradient is kept after `backward`.
    pub fn require_grad(self) -> Self {
        self.map(|t| t.autodiff().detach().require_grad())
    }

    /// Enables autodiff on every gate without tracking it: the gates act as constants in a
    /// differentiated forward pass.
    pub fn constant(self) -> Self {
        self.map(|t| t.autodiff().detach())
    }

    /// Drops any autodiff association (plain tensors, no graph).
    pub fn without_autodiff(self) -> Self {
        self.map(|t| t.without_autodiff())
    }

    /// Applies a function to every site's gate tensor.
    pub fn map(self, f: impl FnMut(Tensor<2>) -> Tensor<2>) -> Self {
        Self {
            values: self.values.into_iter().map(f).collect(),
            ..self
        }
    }

    /// Reads the gates back: `result[site][sample * gates_per_sample + i]`.
    pub fn to_vecs(&self) -> Result<Vec<Vec<f32>>> {
        self.values
            .iter()
            .map(|t| DynTensor::R2(t.clone()).to_vec())
            .collect()
    }
}
