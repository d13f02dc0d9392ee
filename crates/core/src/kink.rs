//! The derivative the soft solver takes through the kinks of ReLU and Clip (ReLU6).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The local derivative that the soft solver's reverse pass takes at ReLU and Clip(0, max)
/// (ReLU6) activations while it computes the gate gradients. The map read off the solved gates
/// always takes the exact derivative; so does every other backward pass.
///
/// The exact derivative is a 0/1 mask that jumps where an activation's input crosses 0 (or
/// `max`). A change of the input far below one grey level moves some unit across its kink, so
/// the gate gradients jump by up to ~0.8 on MobileNet v1 0.25 (input noise of 1e-6, gates
/// open); the solver then follows another path and ends on other gates. The smooth surrogate
/// `σ(β·x) − σ(β·(x − max))` (the derivative of a softplus of sharpness β, the "β-smoothing" of
/// Dombrowski et al., NeurIPS 2019) is continuous, so the gates become a continuous function of
/// the input (`docs/results.md`, "Stability").
///
/// ```
/// use feedbacknet_core::KinkDerivative;
///
/// let smooth: KinkDerivative = "10".parse().unwrap();
/// assert_eq!(smooth, KinkDerivative::Smooth { beta: 10.0 });
/// assert_eq!("exact".parse::<KinkDerivative>().unwrap(), KinkDerivative::Exact);
/// assert_eq!(smooth.to_string(), "10");
/// // The smooth derivative of ReLU6 is ½ at either kink and ~1 between them.
/// assert!((smooth.clip_derivative(0.0, 6.0) - 0.5).abs() < 1e-3);
/// assert!(smooth.clip_derivative(3.0, 6.0) > 0.99);
/// assert_eq!(KinkDerivative::Exact.clip_derivative(3.0, 6.0), 1.0);
/// assert!("-1".parse::<KinkDerivative>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KinkDerivative {
    /// The exact derivative: `1` where `0 < x < max`, else `0` (the paper's).
    Exact,
    /// `σ(β·x) − σ(β·(x − max))`: within about `4/β` of a kink it ramps instead of jumping.
    Smooth {
        /// The sharpness β, per unit of the activation's input (`> 0`; larger is closer to the
        /// exact mask).
        beta: f32,
    },
}

impl KinkDerivative {
    /// Where `β·x < −CUTOFF` (or `β·(x − max)` for the upper ramp), a ramp's `σ` is taken as 0
    /// (it is below 4e-11 there): slopes that small would only be denormal floats, which made
    /// the reverse pass's convolutions 15 times slower, and the exact mask is 0 there anyway.
    pub const CUTOFF: f32 = 24.0;

    /// The derivative of `clamp(x, 0, max)` at `x` (`max` may be infinite: ReLU).
    #[inline]
    pub fn clip_derivative(self, x: f32, max: f32) -> f32 {
        match self {
            KinkDerivative::Exact => {
                if x > 0.0 && x < max {
                    1.0
                } else {
                    0.0
                }
            }
            KinkDerivative::Smooth { beta } => sigmoid(beta * x) - sigmoid(beta * (x - max)),
        }
    }

    /// Whether the settings are usable: β finite and positive.
    pub fn is_valid(self) -> bool {
        match self {
            KinkDerivative::Exact => true,
            KinkDerivative::Smooth { beta } => beta.is_finite() && beta > 0.0,
        }
    }
}

/// `σ(x)`, 0 below `−CUTOFF` ([`KinkDerivative::CUTOFF`]).
#[inline]
fn sigmoid(x: f32) -> f32 {
    if x < -KinkDerivative::CUTOFF {
        0.0
    } else {
        1.0 / (1.0 + (-x).exp())
    }
}

impl fmt::Display for KinkDerivative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KinkDerivative::Exact => f.write_str("exact"),
            KinkDerivative::Smooth { beta } => write!(f, "{beta}"),
        }
    }
}

/// The error of parsing a [`KinkDerivative`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not a kink derivative: `exact`, or the smoothing sharpness β (a number > 0)")]
pub struct ParseKinkDerivativeError(String);

impl FromStr for KinkDerivative {
    type Err = ParseKinkDerivativeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("exact") {
            return Ok(KinkDerivative::Exact);
        }
        let smooth = s.parse().ok().map(|beta| KinkDerivative::Smooth { beta });
        smooth
            .filter(|k| k.is_valid())
            .ok_or_else(|| ParseKinkDerivativeError(s.to_owned()))
    }
}
