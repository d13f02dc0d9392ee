//! Class model visualization (Simonyan et al., 2014, §2): the image that maximizes a class
//! logit, found by gradient ascent on the input.

use burn::tensor::{
    Device, Tensor, TensorData,
    module::conv2d,
    ops::{ConvOptions, PadMode},
};
use feedbacknet_core::{CoreError, GatedNetwork, InputSpec, Normalization};
use serde::{Deserialize, Serialize};

use crate::{
    Result, SolverError,
    config::{check_f32, check_nonzero},
    score::{check_targets, read, read_scalar, target_scores},
};

/// Settings of [`visualize_class`].
///
/// Defaults: 200 steps, learning rate 1.0, L2 weight 1e-4, jitter 4 px, a Gaussian blur of
/// sigma 0.5 every 10 steps, start from the exact mean image (no noise), seed 0.
///
/// ```
/// use feedbacknet_solver::VisualizeConfig;
///
/// let config = VisualizeConfig::default().with_steps(50).with_seed(7);
/// assert_eq!(config.steps, 50);
/// assert!(config.validate().is_ok());
/// assert!(VisualizeConfig::default().with_steps(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisualizeConfig {
    /// Gradient-ascent steps (default 200).
    pub steps: usize,
    /// Step size on the normalized input (default 1.0).
    pub learning_rate: f32,
    /// Weight `l2` of the penalty `l2 · ||I||²` (default 1e-4).
    pub l2: f32,
    /// Before each step the image is rolled (with wrap-around) by a random offset of up to this
    /// many pixels in x and y, and rolled back after the step (default 4; 0 disables).
    pub jitter: usize,
    /// Blur the image every this many steps (default 10; 0 disables).
    pub blur_every: usize,
    /// Standard deviation in pixels of that Gaussian blur (default 0.5; 0 disables).
    pub blur_sigma: f32,
    /// Amplitude of uniform noise in `[-init_noise, init_noise]` (normalized units) added to
    /// the mean image at the start (default 0: the exact mean image, as in the paper). Nets
    /// whose logits pass through a final ReLU (SqueezeNet) give some classes a logit of exactly
    /// 0 and a zero gradient at the mean image (23 of SqueezeNet 1.1's 1000 classes, e.g. 130
    /// flamingo); the ascent cannot leave it, and a little noise (e.g. 0.5) lets it start.
    pub init_noise: f32,
    /// Seed of the jitter offsets and the initial noise: equal seeds give identical results
    /// (default 0).
    pub seed: u64,
}

impl Default for VisualizeConfig {
    fn default() -> Self {
        Self {
            steps: 200,
            learning_rate: 1.0,
            l2: 1e-4,
            jitter: 4,
            blur_every: 10,
            blur_sigma: 0.5,
            init_noise: 0.0,
            seed: 0,
        }
    }
}

impl VisualizeConfig {
    /// Sets the number of steps.
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Sets the step size.
    pub fn with_learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets the L2 weight.
    pub fn with_l2(mut self, l2: f32) -> Self {
        self.l2 = l2;
        self
    }

    /// Sets the jitter in pixels.
    pub fn with_jitter(mut self, jitter: usize) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the blur period (steps) and sigma (pixels).
    pub fn with_blur(mut self, every: usize, sigma: f32) -> Self {
        self.blur_every = every;
        self.blur_sigma = sigma;
        self
    }

    /// Sets the amplitude of the initial noise.
    pub fn with_init_noise(mut self, init_noise: f32) -> Self {
        self.init_noise = init_noise;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every setting: at least one step, a finite positive learning rate, finite
    /// non-negative `l2`, `blur_sigma` and `init_noise`.
    pub fn validate(&self) -> Result<()> {
        check_nonzero("steps", self.steps)?;
        let lr = self.learning_rate;
        check_f32("learning_rate", lr, lr > 0.0, "must be finite and > 0")?;
        check_f32("l2", self.l2, self.l2 >= 0.0, "must be finite and >= 0")?;
        let sigma = self.blur_sigma;
        check_f32("blur_sigma", sigma, sigma >= 0.0, "must be finite and >= 0")?;
        let noise = self.init_noise;
        check_f32("init_noise", noise, noise >= 0.0, "must be finite and >= 0")
    }
}

/// The result of [`visualize_class`].
#[derive(Debug, Clone)]
pub struct ClassVisualization {
    /// The image, `[1, C, H, W]`, in the network's normalized input space.
    pub image: Tensor<4>,
    /// The class logit of the mean image (the start).
    pub logit_start: f32,
    /// The class logit of the final image (without jitter).
    pub logit_end: f32,
    /// The class logit at each step, on that step's jittered image.
    pub trace: Vec<f32>,
    /// The normalization of the input space, used by [`ClassVisualization::to_rgb8`].
    pub normalization: Normalization,
}

impl ClassVisualization {
    /// De-normalizes the image into interleaved 8-bit RGB: `(width, height, bytes)` with
    /// `width * height * 3` bytes, each value rounded and clamped to `0..=255`.
    pub fn to_rgb8(&self) -> Result<(usize, usize, Vec<u8>)> {
        let [_, channels, height, width] = self.image.dims();
        if channels != 3 {
            return Err(CoreError::Shape {
                context: "ClassVisualization::to_rgb8".into(),
                expected: "3 channels".into(),
                got: self.image.dims().to_vec(),
            }
            .into());
        }
        let plane = width * height;
        let values = read(self.image.clone().reshape([3, plane]))?;
        let norm = &self.normalization;
        let mut rgb = vec![0u8; 3 * plane];
        for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
            let stats = norm.mean.iter().zip(&norm.std);
            for (c, (out, (mean, std))) in px.iter_mut().zip(stats).enumerate() {
                let value = values.get(c * plane + i).copied().unwrap_or(0.0);
                let unit = value * std + mean;
                *out = (unit * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
        Ok((width, height, rgb))
    }
}

/// Class model visualization (Simonyan et al. 2014, §2) on the default device; see
/// [`visualize_class_on`].
///
/// ```no_run
/// # fn demo(net: &dyn feedbacknet_core::GatedNetwork) -> feedbacknet_solver::Result<()> {
/// use feedbacknet_solver::{VisualizeConfig, visualize_class};
///
/// let vis = visualize_class(net, 130, &VisualizeConfig::default())?;
/// let (width, height, rgb) = vis.to_rgb8()?;
/// assert_eq!(rgb.len(), width * height * 3);
/// # Ok(()) }
/// ```
pub fn visualize_class(
    net: &dyn GatedNetwork,
    class: usize,
    config: &VisualizeConfig,
) -> Result<ClassVisualization> {
    visualize_class_on(net, class, config, &Device::default())
}

/// Class model visualization (Simonyan et al. 2014, §2) on `device` (the device of the
/// network's weights): gradient ascent on the input image of `logit_c(I) − l2 · ||I||²`.
///
/// Starts from the mean image (zeros in the normalized input space, of the size of
/// [`GatedNetwork::input_spec`]); each step rolls the image by a random jitter, adds
/// `learning_rate` times the gradient of the objective (weights and gates are constants; all
/// gates open), rolls it back and clamps every pixel to the valid range of its channel
/// (`(0 − mean)/std ..= (1 − mean)/std`); every `blur_every` steps the image is blurred by a
/// separable Gaussian with replicated borders.
pub fn visualize_class_on(
    net: &dyn GatedNetwork,
    class: usize,
    config: &VisualizeConfig,
    device: &Device,
) -> Result<ClassVisualization> {
    config.validate()?;
    check_targets(net, &[class], 1)?;
    let spec = net.input_spec();
    let (lo, hi) = pixel_bounds(spec, device);
    let blur = gaussian_kernel(config.blur_sigma, spec);
    let mut rng = SplitMix64(config.seed);
    let mut image = initial_image(spec, config.init_noise, &mut rng, device)
        .max_pair(lo.clone())
        .min_pair(hi.clone());
    let mut trace = Vec::with_capacity(config.steps);
    for step in 1..=config.steps {
        let shift = rng.jitter(config.jitter);
        let (logit, gradient) = class_gradient(net, roll(image.clone(), shift), class, step)?;
        trace.push(logit);
        let gradient = roll(gradient, (-shift.0, -shift.1));
        let penalty = image.clone().mul_scalar(2.0 * config.l2);
        let ascent = gradient.sub(penalty).mul_scalar(config.learning_rate);
        image = image.add(ascent).max_pair(lo.clone()).min_pair(hi.clone());
        if let Some(kernel) = blur.as_ref().filter(|_| blurs_at(step, config.blur_every)) {
            image = kernel
                .apply(image)
                .max_pair(lo.clone())
                .min_pair(hi.clone());
        }
    }
    let logit_end = read_scalar(target_scores(net.forward(image.clone(), None)?, &[class]))?;
    Ok(ClassVisualization {
        image,
        logit_start: trace.first().copied().unwrap_or(logit_end),
        logit_end,
        trace,
        normalization: spec.normalization,
    })
}

/// The class logit of `image` and its gradient w.r.t. the image.
fn class_gradient(
    net: &dyn GatedNetwork,
    image: Tensor<4>,
    class: usize,
    step: usize,
) -> Result<(f32, Tensor<4>)> {
    let x = image.autodiff().detach().require_grad();
    let score = target_scores(net.forward(x.clone(), None)?, &[class]);
    let grads = score.clone().sum().backward();
    let logit = read_scalar(score)?;
    if !logit.is_finite() {
        return Err(SolverError::Diverged { iteration: step });
    }
    let gradient = x
        .grad(&grads)
        .ok_or_else(|| CoreError::Readback("the input received no gradient".into()))?;
    Ok((logit, gradient))
}

fn blurs_at(step: usize, every: usize) -> bool {
    every > 0 && step.is_multiple_of(every)
}

/// The mean image (zeros), plus uniform noise of amplitude `noise` when it is positive.
fn initial_image(spec: &InputSpec, noise: f32, rng: &mut SplitMix64, device: &Device) -> Tensor<4> {
    let shape = [1, spec.channels, spec.height, spec.width];
    if noise <= 0.0 {
        return Tensor::zeros(shape, device);
    }
    let count = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| noise * rng.symmetric_unit()).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Rolls the spatial dimensions by `(dy, dx)` with wrap-around.
fn roll(image: Tensor<4>, (dy, dx): (i64, i64)) -> Tensor<4> {
    if dy == 0 && dx == 0 {
        return image;
    }
    image.roll(&[dy, dx], &[2, 3])
}

/// Per-channel `[1, C, H, W]` lower and upper bounds of valid normalized pixels.
fn pixel_bounds(spec: &InputSpec, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let plane = spec.height * spec.width;
    let bound = |unit: f32| {
        let values: Vec<f32> = (0..spec.channels)
            .flat_map(|c| {
                let (mean, std) = channel_stats(&spec.normalization, c);
                std::iter::repeat_n((unit - mean) / std, plane)
            })
            .collect();
        let shape = [1, spec.channels, spec.height, spec.width];
        Tensor::<4>::from_data(TensorData::new(values, shape), device)
    };
    (bound(0.0), bound(1.0))
}

/// Mean and std of channel `c` (the last RGB channel's for any further channel).
fn channel_stats(norm: &Normalization, c: usize) -> (f32, f32) {
    let (mean, std) = (norm.mean, norm.std);
    match c {
        0 => (mean[0], std[0]),
        1 => (mean[1], std[1]),
        _ => (mean[2], std[2]),
    }
}

/// A separable Gaussian blur applied to every channel independently.
struct GaussianBlur {
    weights: Vec<f32>,
    radius: usize,
    channels: usize,
}

/// The blur for `sigma`, truncated at 3 sigma and at the image size; `None` when it would do
/// nothing.
fn gaussian_kernel(sigma: f32, spec: &InputSpec) -> Option<GaussianBlur> {
    let limit = spec.height.max(spec.width).saturating_sub(1);
    let radius = ((3.0 * sigma).ceil() as usize).min(limit);
    if sigma <= 0.0 || radius == 0 {
        return None;
    }
    let two_var = 2.0 * sigma * sigma;
    let raw: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let d = i as f32 - radius as f32;
            (-d * d / two_var).exp()
        })
        .collect();
    let total: f32 = raw.iter().sum();
    Some(GaussianBlur {
        weights: raw.iter().map(|w| w / total).collect(),
        radius,
        channels: spec.channels,
    })
}

impl GaussianBlur {
    /// Blurs `[1, C, H, W]` along y then x, replicating the border pixels.
    fn apply(&self, image: Tensor<4>) -> Tensor<4> {
        let (r, k, c) = (self.radius, self.weights.len(), self.channels);
        let device = image.device();
        let taps: Vec<f32> = (0..c).flat_map(|_| self.weights.iter().copied()).collect();
        let vertical = Tensor::<4>::from_data(TensorData::new(taps.clone(), [c, 1, k, 1]), &device);
        let horizontal = Tensor::<4>::from_data(TensorData::new(taps, [c, 1, 1, k]), &device);
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], c);
        let padded = image.pad([(r, r), (r, r)], PadMode::Edge);
        let rows = conv2d(padded, vertical, None, options.clone());
        conv2d(rows, horizontal, None, options)
    }
}

/// SplitMix64: a tiny deterministic generator for the jitter offsets.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[-1, 1)`.
    fn symmetric_unit(&mut self) -> f32 {
        // The top 24 bits give an exact f32 in [0, 1).
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// A uniform offset in `-max..=max`.
    fn offset(&mut self, max: usize) -> i64 {
        let span = 2 * max as u64 + 1;
        (self.next() % span) as i64 - max as i64
    }

    /// `(dy, dx)` offsets in `-max..=max`.
    fn jitter(&mut self, max: usize) -> (i64, i64) {
        if max == 0 {
            return (0, 0);
        }
        (self.offset(max), self.offset(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: usize) -> InputSpec {
        InputSpec::rgb(size, size, Normalization::IMAGENET)
    }

    #[test]
    fn blur_kernel_is_normalized_and_keeps_constant_images() {
        let kernel = gaussian_kernel(0.5, &spec(8)).unwrap();
        assert_eq!(kernel.radius, 2);
        assert!((kernel.weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(gaussian_kernel(0.0, &spec(8)).is_none());
        let device = Device::flex();
        let flat = Tensor::<4>::full([1, 3, 8, 8], 0.7, &device);
        let blurred = read(kernel.apply(flat).reshape([1, 3 * 64])).unwrap();
        assert_eq!(blurred.len(), 3 * 64);
        assert!(
            blurred.iter().all(|v| (v - 0.7).abs() < 1e-5),
            "{blurred:?}"
        );
    }

    #[test]
    fn blur_spreads_a_point_symmetrically() {
        let kernel = gaussian_kernel(1.0, &spec(9)).unwrap();
        let mut values = vec![0.0f32; 3 * 81];
        values[4 * 9 + 4] = 1.0;
        let device = Device::flex();
        let point = Tensor::<4>::from_data(TensorData::new(values, [1, 3, 9, 9]), &device);
        let out = read(kernel.apply(point).reshape([1, 3 * 81])).unwrap();
        let centre = out[4 * 9 + 4];
        assert!(centre < 0.5 && centre > 0.1, "{centre}");
        assert!((out[4 * 9 + 3] - out[4 * 9 + 5]).abs() < 1e-6);
        assert!((out[3 * 9 + 4] - out[4 * 9 + 3]).abs() < 1e-6);
        assert!((out[..81].iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(
            out[81..].iter().all(|&v| v == 0.0),
            "channels stay separate"
        );
    }

    #[test]
    fn jitter_is_deterministic_and_in_range() {
        let draw = |seed| {
            let mut rng = SplitMix64(seed);
            (0..200).map(|_| rng.jitter(3)).collect::<Vec<_>>()
        };
        let a = draw(5);
        assert_eq!(a, draw(5));
        assert_ne!(a, draw(6));
        assert!(
            a.iter()
                .all(|&(y, x)| (-3..=3).contains(&y) && (-3..=3).contains(&x))
        );
        assert!(a.iter().any(|&(y, _)| y == -3) && a.iter().any(|&(_, x)| x == 3));
        assert_eq!(SplitMix64(1).jitter(0), (0, 0));
        let mut rng = SplitMix64(9);
        assert!((0..1000).all(|_| (-1.0..1.0).contains(&rng.symmetric_unit())));
    }

    #[test]
    fn roll_and_back_is_the_identity() {
        let device = Device::flex();
        let values: Vec<f32> = (0..2 * 4 * 5).map(|v| v as f32).collect();
        let t = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 2, 4, 5]), &device);
        let rolled = roll(t, (3, -2));
        let first = read(rolled.clone().reshape([1, 40])).unwrap();
        assert_ne!(first, values);
        assert_eq!(
            first[3 * 5],
            2.0,
            "row 0 moved to row 3, column 2 to column 0"
        );
        let back = read(roll(rolled, (-3, 2)).reshape([1, 40])).unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn rgb8_round_trips_valid_pixels() {
        let norm = Normalization::IMAGENET;
        let rgb: Vec<u8> = (0..4 * 3).map(|v| (v * 21) as u8).collect();
        let planar = norm.planar_from_rgb(&rgb, 2, 2);
        let image = Tensor::<4>::from_data(TensorData::new(planar, [1, 3, 2, 2]), &Device::flex());
        let vis = ClassVisualization {
            image,
            logit_start: 0.0,
            logit_end: 0.0,
            trace: vec![],
            normalization: norm,
        };
        assert_eq!(vis.to_rgb8().unwrap(), (2, 2, rgb));
    }
}
