//! The settings of the feedback solvers: [`SolverConfig`] (soft solver) and [`HardConfig`]
//! (hard solver).

use feedbacknet_core::{GateGranularity, KinkDerivative};
use serde::{Deserialize, Serialize};

use crate::{Result, SolverError};

/// What the soft solver maximizes (besides the sparsity penalty).
///
/// The default is the log-softmax (with λ 0.001, [`SolverConfig::default`]): its maps are a
/// stable function of the input where the paper's raw logit's are not (MobileNet v2: the same
/// solve in PyTorch in float32 and float64 gives maps that correlate 0.997, against 0.62 with
/// the logit), its boxes are as good (MobileNet v2, first 80 dev images, held out: GT-known
/// 53.8 % for both), and it keeps two classes of one photo apart (`docs/results.md`,
/// "Stability"). The paper's formulation is [`SolverConfig::paper`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    /// The target class logit, as in Cao et al. ([`SolverConfig::paper`]). Unbounded: as
    /// inhibitory paths are gated off, SqueezeNet's logit grows from about 20 to about 70,000 in
    /// 30 iterations, and on the MobileNets and EfficientNet-Lite0 rounding decides which of
    /// many near-equal gate patterns wins (maps under 1e-6 input noise correlate 0.3-0.5 with
    /// the clean ones); the maps of two classes in one photo become alike.
    Logit,
    /// The target's log-softmax, `logit − logsumexp(logits)` (default): rewards only what
    /// separates the class from the others and saturates once the class dominates, so the
    /// gates settle (maps stable under rounding) and maps stay class-specific on multi-object
    /// photos. It reads every logit, so the classifier head is computed whole. With the paper's
    /// λ 0.01 the penalty, no longer outweighed once the class dominates, shrinks the maps onto
    /// the most discriminative parts and the boxes lose (MobileNet v2: 42.5 % GT-known); the
    /// default pairs it with λ 0.001.
    #[default]
    LogSoftmax,
    /// A contrastive margin: the target logit minus the strongest other logit (the competitor
    /// is re-chosen at every iteration). Rewards only what separates the class from its nearest
    /// rival.
    Margin,
    /// A contrastive objective: the target logit minus the mean of all the other logits.
    ContrastMean,
}
/// Settings of the soft feedback solver. Defaults: the class log-softmax
/// ([`Objective::LogSoftmax`]) with λ 0.001, gate gradients that take a smooth derivative at the
/// kinks of ReLU and ReLU6 ([`KinkDerivative::Smooth`], β 10), and the step settings of the
/// public code of Cao et al.: learning rate 0.1, momentum 0.9, 30 iterations.
/// [`SolverConfig::paper`] is the paper's formulation: the raw class logit with λ 0.01 and the
/// exact derivative.
///
/// ```
/// use feedbacknet_solver::{KinkDerivative, Objective, SolverConfig};
///
/// let config = SolverConfig::default().with_iterations(10).with_lambda(0.05);
/// assert_eq!(config.iterations, 10);
/// assert!(config.validate().is_ok());
/// assert_eq!(SolverConfig::default().objective, Objective::LogSoftmax);
/// assert_eq!(SolverConfig::default().lambda, 0.001);
/// assert_eq!(SolverConfig::default().kinks, KinkDerivative::Smooth { beta: 10.0 });
/// let paper = SolverConfig::paper();
/// assert_eq!((paper.objective, paper.lambda), (Objective::Logit, 0.01));
/// assert_eq!(paper.kinks, KinkDerivative::Exact);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverConfig {
    /// Weight of the sparsity penalty `λ·Σ|g|` (default 0.001; the paper's 0.01).
    pub lambda: f32,
    /// SGD step size (default 0.1).
    pub learning_rate: f32,
    /// SGD momentum (default 0.9).
    pub momentum: f32,
    /// Maximum number of iterations (default 30).
    pub iterations: usize,
    /// Stop early once no gate moves by more than this in an iteration (default 1e-4; 0
    /// disables early stopping).
    pub tolerance: f32,
    /// One gate per neuron (default) or per channel.
    pub granularity: GateGranularity,
    /// The score maximized (default: the class log-softmax).
    pub objective: Objective,
    /// Which gates move when (default: all from the first iteration).
    pub schedule: Schedule,
    /// The derivative the gate gradients take through the kinks of ReLU and Clip (ReLU6):
    /// default [`KinkDerivative::Smooth`] with β [`SolverConfig::DEFAULT_KINK_BETA`]; the
    /// paper's is [`KinkDerivative::Exact`]. The map read off the gates is the exact gradient
    /// either way.
    #[serde(default = "exact_kinks")]
    pub kinks: KinkDerivative,
}

/// What a configuration written before the setting existed meant.
fn exact_kinks() -> KinkDerivative {
    KinkDerivative::Exact
}

/// Which gates the soft solver updates when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Every gate from the first iteration (default).
    #[default]
    AllAtOnce,
    /// Multi-stage pruning after Cao et al.: for the first `iterations` iterations only the
    /// gates of the `sites` gate sites nearest the output move (the lower ones stay open),
    /// then every gate. The iterations of the first stage count towards
    /// [`SolverConfig::iterations`]; the solver does not stop early during it.
    TopFirst {
        /// Gate sites of the first stage, counted from the output.
        sites: usize,
        /// Iterations of the first stage.
        iterations: usize,
    },
}

impl Schedule {
    /// Whether gate site `site` (of `sites`, input first) moves at iteration `iteration`.
    pub fn moves(self, site: usize, sites: usize, iteration: usize) -> bool {
        match self {
            Schedule::AllAtOnce => true,
            Schedule::TopFirst {
                sites: top,
                iterations,
            } => iteration >= iterations || site + top >= sites,
        }
    }

    /// Whether iteration `iteration` is in the first stage of a multi-stage schedule.
    pub fn in_first_stage(self, iteration: usize) -> bool {
        matches!(self, Schedule::TopFirst { iterations, .. } if iteration < iterations)
    }
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            lambda: 0.001,
            learning_rate: 0.1,
            momentum: 0.9,
            iterations: 30,
            tolerance: 1e-4,
            granularity: GateGranularity::Neuron,
            objective: Objective::LogSoftmax,
            schedule: Schedule::AllAtOnce,
            kinks: KinkDerivative::Smooth {
                beta: Self::DEFAULT_KINK_BETA,
            },
        }
    }
}

impl SolverConfig {
    /// The default sharpness β of the smooth derivative at the kinks of ReLU and Clip
    /// ([`KinkDerivative::Smooth`]).
    pub const DEFAULT_KINK_BETA: f32 = 10.0;

    /// The paper's formulation (Cao et al.): the raw class logit ([`Objective::Logit`]) with
    /// λ 0.01 and the exact derivative at the kinks, the other settings as the defaults.
    pub fn paper() -> Self {
        Self::default()
            .with_objective(Objective::Logit)
            .with_lambda(0.01)
            .with_kinks(KinkDerivative::Exact)
    }

    /// The most class-discriminative formulation measured: the log-softmax with λ 0.01, for
    /// several classes of one image. On the grid pointing game (2x2 mosaics of dev images at
    /// the net's input size, `docs/results.md`) its maps put 72.7 % of their mass in the right
    /// cell on MobileNet v2 (the default's λ 0.001: 35.9 %; the paper's logit: 25.8 %, chance
    /// 25 %), but its single-object boxes are worse than the default's (MobileNet v2: 42.5
    /// against 53.8 % GT-known held out on 80 dev images). The CLI uses it when one image is
    /// explained for several classes and no `--objective` or `--lambda` is given.
    ///
    /// ```
    /// use feedbacknet_solver::{Objective, SolverConfig};
    ///
    /// let config = SolverConfig::discriminative();
    /// assert_eq!(config.objective, Objective::LogSoftmax);
    /// assert_eq!(config.lambda, 0.01);
    /// ```
    pub fn discriminative() -> Self {
        Self::default()
            .with_objective(Objective::LogSoftmax)
            .with_lambda(0.01)
    }

    /// Sets λ.
    pub fn with_lambda(mut self, lambda: f32) -> Self {
        self.lambda = lambda;
        self
    }

    /// Sets the learning rate.
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets the momentum.
    pub fn with_momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the iteration count.
    pub fn with_iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Sets the early-stopping tolerance.
    pub fn with_tolerance(mut self, tolerance: f32) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Sets the gate granularity.
    pub fn with_granularity(mut self, granularity: GateGranularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Sets the schedule (multi-stage pruning).
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the objective.
    pub fn with_objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// Sets the derivative at the kinks of ReLU and Clip.
    pub fn with_kinks(mut self, kinks: KinkDerivative) -> Self {
        self.kinks = kinks;
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let check = |name, value: f32, ok: bool, reason| {
            if ok && value.is_finite() {
                Ok(())
            } else {
                Err(SolverError::InvalidConfig {
                    name,
                    value: value.to_string(),
                    reason,
                })
            }
        };
        check("lambda", self.lambda, self.lambda >= 0.0, "must be >= 0")?;
        check(
            "learning_rate",
            self.learning_rate,
            self.learning_rate > 0.0,
            "must be > 0",
        )?;
        check(
            "momentum",
            self.momentum,
            (0.0..1.0).contains(&self.momentum),
            "must be in [0, 1)",
        )?;
        check(
            "tolerance",
            self.tolerance,
            self.tolerance >= 0.0,
            "must be >= 0",
        )?;
        if self.iterations == 0 {
            return Err(SolverError::InvalidConfig {
                name: "iterations",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        if !self.kinks.is_valid() {
            return Err(SolverError::InvalidConfig {
                name: "kinks",
                value: self.kinks.to_string(),
                reason: "the smoothing sharpness must be finite and > 0",
            });
        }
        if let Schedule::TopFirst { sites: 0, .. } = self.schedule {
            return Err(SolverError::InvalidConfig {
                name: "schedule",
                value: "top-first with 0 sites".into(),
                reason: "the first stage needs at least one gate site",
            });
        }
        Ok(())
    }
}

impl Objective {
    /// Every objective, in the order the command line lists them.
    pub const ALL: [Objective; 4] = [
        Objective::Logit,
        Objective::LogSoftmax,
        Objective::Margin,
        Objective::ContrastMean,
    ];

    /// The command-line name (`logit`, `log-softmax`, `margin`, `contrast-mean`).
    pub fn name(self) -> &'static str {
        match self {
            Objective::Logit => "logit",
            Objective::LogSoftmax => "log-softmax",
            Objective::Margin => "margin",
            Objective::ContrastMean => "contrast-mean",
        }
    }

    /// Whether the objective compares the target with the other classes (every objective but
    /// the raw logit), so that two classes of one image get maps of their own.
    pub fn is_discriminative(self) -> bool {
        self != Objective::Logit
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Objective::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Objective::ALL.iter().map(|o| o.name()).collect();
                format!("unknown objective `{s}` ({})", names.join(", "))
            })
    }
}

/// Settings of the hard (binary-gate) feedback solver, [`hard_feedback`](crate::hard_feedback).
///
/// Defaults: `ratio` 0 (every gate with a positive gradient stays open), `max_sweeps` 5,
/// `patience` 2, one gate per neuron.
///
/// The ratio was 1.0 until the defaults were measured (SqueezeNet 1.1, the first 100 dev
/// images, blur and threshold tuned on one half and reported on the other): held-out GT-known
/// 67 % at ratio 0, 50 % at 0.25, 43 % at 0.5 and 31 % at 1 (the plain gradient: 60 %). Ratio 1
/// leaves about 1.4 % of the neurons open (18 % at ratio 0): the few surviving paths reach the
/// input through the receptive fields of a handful of low-level neurons, so the map is a few
/// specks and its largest component a sliver of the object (GT-known 5 % at blur 10,
/// threshold 0.2). Sweeps at ratio 0: 54 % after 1, 67 % after 5, 62 % after 10.
///
/// ```
/// use feedbacknet_solver::HardConfig;
///
/// let config = HardConfig::default().with_ratio(0.5).with_max_sweeps(20);
/// assert_eq!(config.max_sweeps, 20);
/// assert!(config.validate().is_ok());
/// assert!(HardConfig::default().with_ratio(f32::NAN).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardConfig {
    /// A gate stays open only if its gradient is positive and at least `ratio` times the mean
    /// of the positive gradients of its gate site, per sample (default 0: every gate with a
    /// positive gradient). Larger values close more gates and make the maps specks.
    pub ratio: f32,
    /// Maximum number of sweeps (default 5); the solver stops earlier once no gate changes.
    pub max_sweeps: usize,
    /// A sample stops (its gates are frozen at the best set seen) once this many consecutive
    /// sweeps have not raised its best target logit (default 2; 0 disables this and sweeps
    /// until no gate changes). The sweeps are not monotone and can cycle; this ends cycles.
    pub patience: usize,
    /// One gate per neuron (default) or per channel.
    pub granularity: GateGranularity,
}

impl Default for HardConfig {
    fn default() -> Self {
        Self {
            ratio: 0.0,
            max_sweeps: 5,
            patience: 2,
            granularity: GateGranularity::Neuron,
        }
    }
}

impl HardConfig {
    /// Sets the threshold ratio.
    pub fn with_ratio(mut self, ratio: f32) -> Self {
        self.ratio = ratio;
        self
    }

    /// Sets the maximum number of sweeps.
    pub fn with_max_sweeps(mut self, max_sweeps: usize) -> Self {
        self.max_sweeps = max_sweeps;
        self
    }

    /// Sets the patience (0: no early stop on a stalled logit).
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Sets the gate granularity.
    pub fn with_granularity(mut self, granularity: GateGranularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// Checks every setting: `ratio` finite and >= 0, `max_sweeps` >= 1.
    pub fn validate(&self) -> Result<()> {
        check_f32(
            "ratio",
            self.ratio,
            self.ratio >= 0.0,
            "must be finite and >= 0",
        )?;
        check_nonzero("max_sweeps", self.max_sweeps)
    }
}

/// `InvalidConfig` unless `ok` holds and `value` is finite.
pub(crate) fn check_f32(
    name: &'static str,
    value: f32,
    ok: bool,
    reason: &'static str,
) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(SolverError::InvalidConfig {
            name,
            value: value.to_string(),
            reason,
        })
    }
}

/// `InvalidConfig` when a count is 0.
pub(crate) fn check_nonzero(name: &'static str, value: usize) -> Result<()> {
    if value == 0 {
        Err(SolverError::InvalidConfig {
            name,
            value: "0".into(),
            reason: "must be at least 1",
        })
    } else {
        Ok(())
    }
}
