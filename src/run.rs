//! Running methods on one prepared batch: each piece of work (a gate solve, the gated
//! gradient, a Grad-CAM) is computed once per batch and shared by every method that needs it.

use std::time::Instant;

use burn::tensor::Tensor;
use feedbacknet_core::{ActivationRule, GateSet};
use feedbacknet_localize::{SaliencyMap, fuse};
use feedbacknet_solver::{
    GateSolution, gated_energy, grad_cam, hard_feedback, input_gradient_with, saliency_maps,
    soft_feedback,
};

use crate::{
    CamThrough, Error, FeedbackCamConfig, FeedbackMap, FeedbackNet, Method, Result, Timings,
};

/// One method to run, with the settings of the feedback maps and the fusion.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub method: Method,
    pub feedback_cam: FeedbackCamConfig,
    pub feedback_map: FeedbackMap,
}

/// What [`FeedbackNet::run_job`] produces for a batch.
pub(crate) struct MethodOutput {
    /// One map per sample at the input's resolution (Grad-CAM's at the feature map's).
    pub maps: Vec<SaliencyMap>,
    /// The target logits (through the gates when the method has them).
    pub scores: Vec<f32>,
    pub solution: Option<GateSolution>,
}

/// Maps with their target logits.
type Maps = (Vec<SaliencyMap>, Vec<f32>);

/// The work done so far on one batch, each piece with the time it took.
#[derive(Default)]
pub(crate) struct BatchCache {
    soft: Cached<GateSolution>,
    hard: Cached<GateSolution>,
    /// The maps read off the soft-feedback gates ([`Method::Feedback`]'s), per kind of map.
    soft_maps: Vec<(FeedbackMap, Cached<Maps>)>,
    cam_plain: Cached<Maps>,
    cam_soft_gates: Cached<Maps>,
}

/// A value computed at most once, with the time it took in ms.
struct Cached<T>(Option<(T, f64)>);

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: Clone> Cached<T> {
    fn get_or_try(&mut self, compute: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
        if let Some(hit) = &self.0 {
            return Ok(hit.clone());
        }
        let started = Instant::now();
        let hit = (compute()?, ms(started));
        self.0 = Some(hit.clone());
        Ok(hit)
    }
}

impl FeedbackNet {
    /// Runs one job on a batch. Work already in `cache` is reused; `timings` counts it as if
    /// this job had done it alone (a solve shared by two methods is in both their times).
    pub(crate) fn run_job(
        &self,
        job: &Job,
        batch: &Tensor<4>,
        targets: &[usize],
        cache: &mut BatchCache,
        timings: &mut Timings,
    ) -> Result<MethodOutput> {
        let net = self.network.as_ref();
        let solved = match job.method {
            Method::Feedback | Method::FeedbackCam => Some(cache.soft.get_or_try(|| {
                soft_feedback(net, batch, targets, &self.solver).map_err(Error::from)
            })?),
            Method::FeedbackHard => Some(cache.hard.get_or_try(|| {
                hard_feedback(net, batch, targets, &self.hard).map_err(Error::from)
            })?),
            _ => None,
        };
        timings.solve_ms = solved.as_ref().map_or(0.0, |(_, ms)| *ms);
        let solution = solved.map(|(s, _)| s);
        let gates = solution.as_ref().map(|s| &s.gates);
        let ((maps, scores), saliency_ms) = match job.method {
            Method::GradCam => cache
                .cam_plain
                .get_or_try(|| self.cam_maps(batch, targets, None))?,
            Method::Feedback => {
                self.feedback_maps(&job.feedback_map, batch, targets, gates, cache)?
            }
            Method::FeedbackCam => self.feedback_cam_maps(job, batch, targets, gates, cache)?,
            method => {
                let started = Instant::now();
                let rule = match method {
                    Method::Guided => ActivationRule::Guided,
                    Method::Deconvnet => ActivationRule::Deconv,
                    _ => ActivationRule::Gradient,
                };
                (
                    self.gradient_maps(batch, targets, gates, rule)?,
                    ms(started),
                )
            }
        };
        timings.saliency_ms = saliency_ms;
        Ok(MethodOutput {
            maps,
            scores,
            solution,
        })
    }

    /// Input-gradient maps (`max_c |∂score/∂I_c|`) through `gates` under an activation rule.
    fn gradient_maps(
        &self,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
        rule: ActivationRule,
    ) -> Result<Maps> {
        let net = self.network.as_ref();
        let grad = input_gradient_with(net, batch, targets, gates, rule)?;
        Ok((saliency_maps(&grad.gradient)?, grad.scores))
    }

    /// The maps read off the soft-feedback `gates` (at the input's resolution), once per kind.
    fn feedback_maps(
        &self,
        kind: &FeedbackMap,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
        cache: &mut BatchCache,
    ) -> Result<(Maps, f64)> {
        let at = match cache.soft_maps.iter().position(|(k, _)| k == kind) {
            Some(at) => at,
            None => {
                cache.soft_maps.push((kind.clone(), Cached::default()));
                cache.soft_maps.len() - 1
            }
        };
        cache.soft_maps[at].1.get_or_try(|| match kind {
            FeedbackMap::InputGradient => {
                self.gradient_maps(batch, targets, gates, ActivationRule::Gradient)
            }
            FeedbackMap::GatedEnergy(layer) => {
                let net = self.network.as_ref();
                let energy = gated_energy(net, batch, targets, gates, layer)?;
                let [_, _, height, width] = batch.dims();
                let maps = energy
                    .maps
                    .iter()
                    .map(|m| m.resize_bilinear(width, height))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok((maps, energy.scores))
            }
        })
    }

    /// Grad-CAM maps at the feature map's resolution, through `gates` if any.
    fn cam_maps(
        &self,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
    ) -> Result<Maps> {
        let cam = grad_cam(
            self.network.as_ref(),
            batch,
            targets,
            gates,
            &self.cam_layer,
        )?;
        Ok((cam.maps, cam.scores))
    }

    /// [`Method::FeedbackCam`]'s maps (at the input's resolution) and gated target logits,
    /// with the time of the pieces and the fusion.
    fn feedback_cam_maps(
        &self,
        job: &Job,
        batch: &Tensor<4>,
        targets: &[usize],
        gates: Option<&GateSet>,
        cache: &mut BatchCache,
    ) -> Result<(Maps, f64)> {
        let ((fine, scores), fine_ms) =
            self.feedback_maps(&job.feedback_map, batch, targets, gates, cache)?;
        let ((cam, _), cam_ms) = match job.feedback_cam.cam_through {
            CamThrough::PlainNet => cache
                .cam_plain
                .get_or_try(|| self.cam_maps(batch, targets, None))?,
            CamThrough::FeedbackGates => cache
                .cam_soft_gates
                .get_or_try(|| self.cam_maps(batch, targets, gates))?,
        };
        let started = Instant::now();
        let maps = fine
            .iter()
            .zip(&cam)
            .map(|(f, c)| fuse(f, c, &job.feedback_cam.fusion))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(((maps, scores), fine_ms + cam_ms + ms(started)))
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
