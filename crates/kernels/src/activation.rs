//! The activations that the kernels run, gated or not, with their value `f(x)` and local
//! derivative `f'(x)` per element (what the flex kernels and the backward rules read).

use feedbacknet_core::{ActivationKind, KinkDerivative};

/// `√(2/π)`, the tanh form of GELU's scale.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// `1/√(2π)`, the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// An element-wise activation. Those for which [`Activation::gate_kind`] answers `Some` may
/// carry a gate (the ONNX compiler gives each a gate site); the others (`Sigmoid`,
/// `HardSigmoid`, `Tanh`, `Softplus`, and `Clip` with a lower bound other than 0) run ungated
/// inside blocks (squeeze-and-excitation scales, attention, …).
///
/// Every variant is `Copy` and holds scalars only: a PReLU whose slope differs per channel is
/// [`PReluSlopes`](crate::PReluSlopes) instead (both are a [`GatedActivation`](crate::GatedActivation)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, min, max)`; gated only when `min` is 0.
    Clip {
        /// The lower bound.
        min: f32,
        /// The upper bound.
        max: f32,
    },
    /// ReLU (`max` infinite) or Clip(0, `max`) whose local derivative is the smooth surrogate
    /// `σ(β·x) − σ(β·(x − max))` instead of the 0/1 mask; its value is the exact
    /// `clamp(x, 0, max)`. Never compiled from a model: the soft solver's reverse pass takes it
    /// in place of ReLU and Clip ([`Activation::with_kinks`], [`KinkDerivative::Smooth`]).
    SmoothClip {
        /// The upper bound (`f32::INFINITY` for ReLU).
        max: f32,
        /// The sharpness β of the derivative's ramps.
        beta: f32,
    },
    /// SiLU (Swish): `x·σ(x)`.
    Silu,
    /// HardSwish: `x·relu6(x + 3)/6`.
    HardSwish,
    /// GELU, exact: `x·Φ(x) = x·(1 + erf(x/√2))/2`.
    GeluErf,
    /// GELU, tanh approximation: `x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2`.
    GeluTanh,
    /// `x` for `x > 0`, `alpha·x` otherwise.
    LeakyRelu {
        /// The negative slope.
        alpha: f32,
    },
    /// `x` for `x > 0`, `alpha·(eˣ − 1)` otherwise.
    Elu {
        /// The scale of the negative part.
        alpha: f32,
    },
    /// Mish: `x·tanh(softplus(x))`.
    Mish,
    /// PReLU with one learnt slope for every channel: `x` for `x > 0`, `slope·x` otherwise (a
    /// slope per channel is [`PReluSlopes`](crate::PReluSlopes)).
    PRelu {
        /// The learnt negative slope.
        slope: f32,
    },
    /// `σ(x) = 1/(1 + e⁻ˣ)` (never gated).
    Sigmoid,
    /// `clamp(alpha·x + beta, 0, 1)` (never gated).
    HardSigmoid {
        /// The slope.
        alpha: f32,
        /// The offset.
        beta: f32,
    },
    /// `tanh(x)` (never gated).
    Tanh,
    /// `ln(1 + eˣ)` (never gated).
    Softplus,
    /// `x`: no activation, only a gate. The ONNX interpreter places one after an attention to
    /// gate its heads (site kind [`ActivationKind::AttentionHeads`]); every backward rule
    /// passes its gradient through unchanged.
    Identity,
}

impl Activation {
    /// The ONNX operator's name, for error messages.
    pub fn op_name(&self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::Clip { .. } => "Clip",
            Activation::SmoothClip { max, .. } if max.is_infinite() => "Relu",
            Activation::SmoothClip { .. } => "Clip",
            Activation::Silu => "Silu",
            Activation::HardSwish => "HardSwish",
            Activation::GeluErf | Activation::GeluTanh => "Gelu",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::Elu { .. } => "Elu",
            Activation::Mish => "Mish",
            Activation::PRelu { .. } => "PRelu",
            Activation::Sigmoid => "Sigmoid",
            Activation::HardSigmoid { .. } => "HardSigmoid",
            Activation::Tanh => "Tanh",
            Activation::Softplus => "Softplus",
            Activation::Identity => "HeadGate",
        }
    }

    /// The kind of gate site this activation makes, or `None` where it is never gated.
    pub fn gate_kind(&self) -> Option<ActivationKind> {
        Some(match *self {
            Activation::Relu => ActivationKind::Relu,
            Activation::Clip { min: 0.0, max } | Activation::SmoothClip { max, .. } => {
                if max.is_finite() {
                    ActivationKind::Clip { max }
                } else {
                    ActivationKind::Relu
                }
            }
            Activation::Silu => ActivationKind::Silu,
            Activation::HardSwish => ActivationKind::HardSwish,
            Activation::GeluErf => ActivationKind::Gelu,
            Activation::GeluTanh => ActivationKind::GeluTanh,
            Activation::LeakyRelu { alpha } => ActivationKind::LeakyRelu { alpha },
            Activation::Elu { alpha } => ActivationKind::Elu { alpha },
            Activation::Mish => ActivationKind::Mish,
            Activation::PRelu { slope } => ActivationKind::PRelu { slope },
            Activation::Identity => ActivationKind::AttentionHeads,
            Activation::Clip { .. }
            | Activation::Sigmoid
            | Activation::HardSigmoid { .. }
            | Activation::Tanh
            | Activation::Softplus => return None,
        })
    }

    /// This activation with the local derivative `kinks` at its kinks: ReLU and Clip(0, max)
    /// become [`Activation::SmoothClip`] under [`KinkDerivative::Smooth`]; every other
    /// activation (and every one under [`KinkDerivative::Exact`]) is returned as it is.
    ///
    /// ```
    /// use feedbacknet_core::KinkDerivative;
    /// use feedbacknet_kernels::Activation;
    ///
    /// let relu6 = Activation::Clip { min: 0.0, max: 6.0 };
    /// let smooth = relu6.with_kinks(KinkDerivative::Smooth { beta: 10.0 });
    /// assert_eq!(smooth, Activation::SmoothClip { max: 6.0, beta: 10.0 });
    /// assert_eq!(smooth.value(7.0), 6.0);
    /// assert!((smooth.derivative(0.0) - 0.5).abs() < 1e-3);
    /// assert_eq!(relu6.with_kinks(KinkDerivative::Exact), relu6);
    /// assert_eq!(Activation::Silu.with_kinks(KinkDerivative::Smooth { beta: 10.0 }), Activation::Silu);
    /// ```
    pub fn with_kinks(self, kinks: KinkDerivative) -> Activation {
        match (self, kinks) {
            (Activation::Relu, KinkDerivative::Smooth { beta }) => Activation::SmoothClip {
                max: f32::INFINITY,
                beta,
            },
            (Activation::Clip { min: 0.0, max }, KinkDerivative::Smooth { beta }) => {
                Activation::SmoothClip { max, beta }
            }
            (act, _) => act,
        }
    }

    /// Whether the local derivative is a 0/1 mask (ReLU and Clip): the backward rules then
    /// keep their original ReLU meaning exactly.
    pub fn is_piecewise_identity(&self) -> bool {
        matches!(self, Activation::Relu | Activation::Clip { .. })
    }

    /// `f(x)` for one element (the flex kernels' scalar form; one `exp`, `tanh` or `erf` per
    /// element for the smooth activations).
    #[inline]
    pub fn value(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Clip { min, max } => x.clamp(min, max),
            Activation::SmoothClip { max, .. } => x.clamp(0.0, max),
            Activation::Silu => x * sigmoid(x),
            Activation::HardSwish => x * ((x + 3.0).clamp(0.0, 6.0) / 6.0),
            Activation::GeluErf => {
                0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
            }
            Activation::GeluTanh => 0.5 * x * (1.0 + gelu_tanh_inner(x).tanh()),
            Activation::LeakyRelu { alpha: a } | Activation::PRelu { slope: a } => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha * (x.exp() - 1.0)
                }
            }
            Activation::Mish => x * softplus(x).tanh(),
            Activation::Sigmoid => sigmoid(x),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            Activation::Tanh => x.tanh(),
            Activation::Softplus => softplus(x),
            Activation::Identity => x,
        }
    }

    /// The local derivative `f'(x)` for one element (1 or 0 for ReLU and Clip: the active
    /// mask; at a kink, the right-hand or inner value as the references take it).
    #[inline]
    pub fn derivative(self, x: f32) -> f32 {
        let step = |on: bool| if on { 1.0 } else { 0.0 };
        match self {
            Activation::Relu => step(x > 0.0),
            Activation::Clip { min, max } => step(x > min && x < max),
            Activation::SmoothClip { max, beta } => kink_ramp(x, max, beta),
            Activation::Silu => {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
            Activation::HardSwish => {
                if x <= -3.0 {
                    0.0
                } else if x >= 3.0 {
                    1.0
                } else {
                    (2.0 * x + 3.0) / 6.0
                }
            }
            Activation::GeluErf => {
                let cdf = 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
                cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
            }
            Activation::GeluTanh => {
                let t = gelu_tanh_inner(x).tanh();
                let inner = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044_715 * x * x);
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner
            }
            Activation::LeakyRelu { alpha: a } | Activation::PRelu { slope: a } => {
                if x > 0.0 {
                    1.0
                } else {
                    a
                }
            }
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    1.0
                } else {
                    alpha * x.exp()
                }
            }
            Activation::Mish => {
                let t = softplus(x).tanh();
                t + x * (1.0 - t * t) * sigmoid(x)
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Activation::HardSigmoid { alpha, beta } => {
                let y = alpha * x + beta;
                if y > 0.0 && y < 1.0 { alpha } else { 0.0 }
            }
            Activation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
            }
            Activation::Softplus => sigmoid(x),
            Activation::Identity => 1.0,
        }
    }
}

/// `σ(β·x) − σ(β·(x − max))`, [`Activation::SmoothClip`]'s slope
/// ([`KinkDerivative::clip_derivative`]), branch-free so that the fused kernels' loops
/// vectorize: with libm's `exp` per element the solver's step took 2-3 times as long as with the
/// 0/1 mask (SqueezeNet). Within 1e-6 of the libm form.
#[inline(always)]
pub(crate) fn kink_ramp(x: f32, max: f32, beta: f32) -> f32 {
    fast_sigmoid(beta * x) - fast_sigmoid(beta * (x - max))
}

/// [`kink_ramp`] where the two ramps lie apart (`β·max ≥ 2·CUTOFF`, e.g. ReLU6 with β ≥ 8,
/// and ReLU, whose `max` is infinite: `σ(β·x)`): `σ(β·min(x, max − x))`, one `σ` instead of
/// two (the other is 0 or 1 there under the cutoff). The two-`σ` form keeps the fused step
/// from vectorizing: it took twice as long as the 0/1 mask on MobileNet v2, this one about as
/// long.
#[inline(always)]
pub(crate) fn kink_ramp_apart(x: f32, max: f32, beta: f32) -> f32 {
    fast_sigmoid(beta * x.min(max - x))
}

/// Whether [`kink_ramp_apart`] may stand for [`kink_ramp`].
pub(crate) fn ramps_apart(max: f32, beta: f32) -> bool {
    beta * max >= 2.0 * KinkDerivative::CUTOFF
}

/// `1/(1 + e⁻ᶻ)` with [`fast_exp`], 0 below `−CUTOFF` (no denormal slopes:
/// [`KinkDerivative::CUTOFF`]).
#[inline(always)]
fn fast_sigmoid(z: f32) -> f32 {
    let s = 1.0 / (1.0 + fast_exp(-z));
    if z < -KinkDerivative::CUTOFF { 0.0 } else { s }
}

/// `eˣ` within ~3e-7 relative error for `x` in [−87, 88] (clamped there; NaN stays NaN):
/// `2ⁿ · eʳ` with `n` the nearest integer to `x·log₂e`, `r = x − n·ln 2` (ln 2 in two parts, as
/// Cephes' `expf`, so that `r` keeps its precision) and the degree-6 Taylor polynomial of `eʳ`
/// on `|r| ≤ ½ ln 2`. No branch, no call and no float-to-integer conversion (`n` is rounded by
/// adding 1.5·2²³, whose bits then hold it), so that loops over it vectorize.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0; // 1.5·2²³: its ulp is 1
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // The low bits of `shifted` are `n` (in [−126, 127] after the clamp) over 0x4B40_0000.
    let exponent = shifted
        .to_bits()
        .wrapping_sub(0x4B40_0000)
        .wrapping_add(127);
    p * f32::from_bits(exponent << 23)
}

/// `σ(x)`, without overflow for large `|x|`.
#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(1 + eˣ)`, without overflow: `max(x, 0) + ln(1 + e^−|x|)`.
#[inline]
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `√(2/π)·(x + 0.044715·x³)`.
#[inline]
fn gelu_tanh_inner(x: f32) -> f32 {
    SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)
}

/// Which gradients the backward pass of a gated activation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// `∂/∂x` (not wanted below the lowest gate, where nothing reads it).
    pub input: bool,
    /// `∂/∂g` (what the soft solver collects; only with a gate).
    pub gate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The branch-free `exp` and the ramp built on it agree with libm's forms.
    #[test]
    fn the_fast_ramp_agrees_with_the_libm_forms() {
        let mut worst = 0.0f32;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            worst = worst.max(((fast_exp(x) - x.exp()) / x.exp()).abs());
        }
        assert!(worst < 3e-7, "relative error of exp: {worst}");
        assert!(fast_exp(f32::NAN).is_nan());
        let floor = fast_exp(f32::NEG_INFINITY) / (-87.0f32).exp();
        assert!((floor - 1.0).abs() < 3e-7, "−∞ is clamped to −87: {floor}");
        for (max, beta) in [
            (6.0, 10.0),
            (f32::INFINITY, 10.0),
            (0.5, 4.0),
            (6.0, 1000.0),
        ] {
            let kinks = KinkDerivative::Smooth { beta };
            for i in 0..=20_000 {
                let x = -10.0 + 20.0 * i as f32 / 20_000.0;
                let (fast, libm) = (kink_ramp(x, max, beta), kinks.clip_derivative(x, max));
                assert!(
                    (fast - libm).abs() < 1e-6,
                    "β {beta}, max {max}, x {x}: {fast} {libm}"
                );
                if ramps_apart(max, beta) {
                    let apart = kink_ramp_apart(x, max, beta);
                    assert!(
                        (apart - fast).abs() < 1e-6,
                        "β {beta}, max {max}, x {x}: {apart}"
                    );
                }
            }
        }
        assert!(ramps_apart(6.0, 10.0) && ramps_apart(f32::INFINITY, 10.0));
        assert!(!ramps_apart(0.5, 4.0));
    }
}
