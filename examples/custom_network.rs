//! A network of your own: a small hand-written Burn CNN (conv-relu-conv-relu-pool-linear with
//! fixed pseudo-random weights) implements `feedbacknet::GatedNetwork`, and every saliency
//! method of feedbacknet runs on it through the same `FeedbackNet`.
//!
//! `cargo run --example custom_network`
//!
//! The trait needs the gate sites and a gated forward pass; the modified backward rules
//! (guided backprop, DeconvNet) and Grad-CAM also need `backward`, written here layer by layer:
//! the activation rule at each gated ReLU, each linear layer's true gradient by autodiff.

use std::sync::{Arc, OnceLock};

use burn::tensor::{module::conv2d, ops::ConvOptions};
use feedbacknet::{
    ActivationKind, ActivationRule, BackwardOutput, BackwardTarget, CoreError, Device, DynTensor,
    FeedbackNet, GateGranularity, GateSet, GateSite, GatedNetwork, HardConfig, InputSpec,
    LocalizeConfig, Method, Normalization, Request, SolverConfig, Tensor, TensorData,
};
use image::{DynamicImage, RgbImage};

/// Input side in pixels, and the channels of the two convolutions.
const SIDE: usize = 32;
const C1: usize = 8;
const C2: usize = 16;
const CLASSES: usize = 10;

/// conv(3→8, 3x3) → ReLU → conv(8→16, 3x3) → ReLU → global average pool → linear(16→10).
struct TinyNet {
    spec: InputSpec,
    conv1: (Tensor<4>, Tensor<1>),
    conv2: (Tensor<4>, Tensor<1>),
    /// `[C2, CLASSES]` weights and `[CLASSES]` biases.
    linear: (Tensor<2>, Tensor<1>),
    sites: OnceLock<Arc<[GateSite]>>,
}

/// What a recorded forward pass keeps for the backward pass.
struct Recorded {
    z1: Tensor<4>,
    a1: Tensor<4>,
    z2: Tensor<4>,
    a2: Tensor<4>,
    logits: Tensor<2>,
}

impl TinyNet {
    fn new(device: &Device) -> Self {
        let mut seed = 0x2545_f491_u64;
        let mut weights = |shape: &[usize], scale: f32| -> TensorData {
            let n = shape.iter().product();
            let values = (0..n)
                .map(|_| {
                    // A linear congruential generator: fixed weights, no dependency.
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
                })
                .collect::<Vec<f32>>();
            TensorData::new(values, shape.to_vec())
        };
        let w4 = |d: TensorData| Tensor::<4>::from_data(d, device);
        let w1 = |d: TensorData| Tensor::<1>::from_data(d, device);
        Self {
            spec: InputSpec::rgb(SIDE, SIDE, Normalization::IMAGENET),
            conv1: (w4(weights(&[C1, 3, 3, 3], 0.8)), w1(weights(&[C1], 0.2))),
            conv2: (w4(weights(&[C2, C1, 3, 3], 0.5)), w1(weights(&[C2], 0.2))),
            linear: (
                Tensor::<2>::from_data(weights(&[C2, CLASSES], 2.0), device),
                w1(weights(&[CLASSES], 0.1)),
            ),
            sites: OnceLock::new(),
        }
    }

    fn conv(x: Tensor<4>, (weight, bias): &(Tensor<4>, Tensor<1>)) -> Tensor<4> {
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        conv2d(x, weight.clone(), Some(bias.clone()), options)
    }

    /// The gates of site `i` shaped to broadcast against its activation (1 without gates).
    fn gate(gates: Option<&GateSet>, i: usize) -> Result<Option<Tensor<4>>, CoreError> {
        gates.map(|g| g.gate(i)?.into4("tiny net gate")).transpose()
    }

    fn gated(a: Tensor<4>, gate: &Option<Tensor<4>>) -> Tensor<4> {
        match gate {
            Some(g) => a.mul(g.clone()),
            None => a,
        }
    }

    fn record(&self, input: Tensor<4>, gates: Option<&GateSet>) -> Result<Recorded, CoreError> {
        let z1 = Self::conv(input, &self.conv1);
        let a1 = Self::gated(
            burn::tensor::activation::relu(z1.clone()),
            &Self::gate(gates, 0)?,
        );
        let z2 = Self::conv(a1.clone(), &self.conv2);
        let a2 = Self::gated(
            burn::tensor::activation::relu(z2.clone()),
            &Self::gate(gates, 1)?,
        );
        let [batch, channels, _, _] = a2.dims();
        let pooled = a2
            .clone()
            .mean_dim(3)
            .mean_dim(2)
            .reshape([batch, channels]);
        let (weight, bias) = &self.linear;
        let logits = pooled.matmul(weight.clone()) + bias.clone().unsqueeze::<2>();
        Ok(Recorded {
            z1,
            a1,
            z2,
            a2,
            logits,
        })
    }

    /// The true gradient of `Σ dy·conv(x)` with respect to `x`, by autodiff.
    fn conv_input_gradient(
        x: Tensor<4>,
        layer: &(Tensor<4>, Tensor<1>),
        dy: Tensor<4>,
    ) -> Result<Tensor<4>, CoreError> {
        let leaf = x.autodiff().detach().require_grad();
        let (weight, bias) = layer;
        let layer = (weight.clone().autodiff(), bias.clone().autodiff());
        let grads = Self::conv(leaf.clone(), &layer)
            .mul(dy.autodiff().detach())
            .sum()
            .backward();
        leaf.grad(&grads)
            .ok_or_else(|| CoreError::Readback("no gradient reached the layer input".into()))
    }

    /// `rule` at a gated ReLU: from the gradient at its gated output to its input `z`.
    fn relu_backward(
        rule: ActivationRule,
        dy: Tensor<4>,
        z: Tensor<4>,
        gate: Option<Tensor<4>>,
    ) -> Tensor<4> {
        let dz = match gate {
            Some(g) => dy.mul(g),
            None => dy,
        };
        rule.apply(dz, z.greater_elem(0.0).float())
    }
}

impl GatedNetwork for TinyNet {
    fn input_spec(&self) -> &InputSpec {
        &self.spec
    }

    fn num_outputs(&self) -> usize {
        CLASSES
    }

    fn gate_sites(&self, [h, w]: [usize; 2]) -> Result<Arc<[GateSite]>, CoreError> {
        let site = |name: &str, channels: usize| {
            GateSite::new(name, vec![channels, h, w], ActivationKind::Relu)
        };
        let sites = self
            .sites
            .get_or_init(|| Arc::from(vec![site("relu1", C1), site("relu2", C2)]));
        Ok(sites.clone())
    }

    fn forward(&self, input: Tensor<4>, gates: Option<&GateSet>) -> Result<Tensor<2>, CoreError> {
        Ok(self.record(input, gates)?.logits)
    }

    fn backward(
        &self,
        input: Tensor<4>,
        gates: Option<&GateSet>,
        seed: Tensor<2>,
        rule: ActivationRule,
        target: BackwardTarget,
    ) -> Result<BackwardOutput, CoreError> {
        let r = self.record(input.clone(), gates)?;
        let [batch, channels, h, w] = r.a2.dims();
        // Linear, then the average pool: every pixel of a channel gets 1/(h·w) of its gradient.
        let dp = seed.matmul(self.linear.0.clone().transpose());
        let da2 = dp
            .reshape([batch, channels, 1, 1])
            .div_scalar((h * w) as f32)
            .expand([batch, channels, h, w]);
        let at_site = |gradient: Tensor<4>, activation: Tensor<4>| BackwardOutput {
            logits: r.logits.clone(),
            gradient: DynTensor::R4(gradient),
            activation: Some(DynTensor::R4(activation)),
        };
        if matches!(target, BackwardTarget::Site(1) | BackwardTarget::FeatureMap) {
            return Ok(at_site(da2, r.a2.clone()));
        }
        let dz2 = Self::relu_backward(rule, da2, r.z2.clone(), Self::gate(gates, 1)?);
        let da1 = Self::conv_input_gradient(r.a1.clone(), &self.conv2, dz2)?;
        if target == BackwardTarget::Site(0) {
            return Ok(at_site(da1, r.a1.clone()));
        }
        if target != BackwardTarget::Input {
            return Err(CoreError::Unsupported(format!(
                "no such target: {target:?}"
            )));
        }
        let dz1 = Self::relu_backward(rule, da1, r.z1.clone(), Self::gate(gates, 0)?);
        let dx = Self::conv_input_gradient(input, &self.conv1, dz1)?;
        Ok(BackwardOutput {
            logits: r.logits.clone(),
            gradient: DynTensor::R4(dx),
            activation: None,
        })
    }
}

/// A 96x64 picture: a warm disk on a plain cool background.
fn synthetic_image() -> DynamicImage {
    let image = RgbImage::from_fn(96, 64, |x, y| {
        let (dx, dy) = (x as f32 - 62.0, y as f32 - 30.0);
        if dx * dx + dy * dy < 14.0 * 14.0 {
            image::Rgb([230, 150, 40])
        } else {
            image::Rgb([40, 70, 120])
        }
    });
    DynamicImage::ImageRgb8(image)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = feedbacknet::default_device()?;
    let model = TinyNet::new(&device);
    let net = FeedbackNet::builder()
        .network(Arc::new(model))
        .device(device)
        .solver(
            SolverConfig::default()
                .with_iterations(10)
                .with_granularity(GateGranularity::Channel),
        )
        .hard_solver(HardConfig::default().with_granularity(GateGranularity::Channel))
        // A 32-pixel input: a blur of 1.5 input pixels, not the default 10 meant for 224.
        .localize(
            LocalizeConfig::default()
                .with_blur_sigma(1.5)
                .with_threshold(0.4),
        )
        .build()?;
    let image = synthetic_image();
    let top = net.predict(&image, 1)?.remove(0);
    println!(
        "predicted class {} (logit {:.3}, p {:.2})",
        top.class.index, top.logit, top.probability
    );
    let request = Request::class(top.class.index).methods(Method::ALL);
    for result in net.explain(&image, &request)? {
        let best = result
            .best_box()
            .map(|b| format!("[{:.0}, {:.0}, {:.0}, {:.0}]", b.x0, b.y0, b.x1, b.y1))
            .unwrap_or_else(|| "none".into());
        println!("{:<14} best box {best}", result.method.name());
    }
    Ok(())
}
