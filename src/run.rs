//! Running methods on one prepared batch: each piece of work (a gate solve, the gated
//! gradient, a Grad-CAM) is computed once per batch and shared by every method that needs it.

use std::time::Instant;

use burn::tensor::Tensor;
use feedbacknet_core::{ActivationRule, GateSet};
use feedbacknet_localize::{SaliencyMap, fuse};
use feedbacknet_solver::{
    GateSolution, grad_cam, hard_feedback, input_gradient_with, saliency_maps, soft_feedback,
};

use crate::{CamThrough, Error, FeedbackCamConfig, FeedbackNet, Method, Result, Timings};

/// One method to run, with the fusion settings [`Method::FeedbackCam`] uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    pub method: Method,
    pub feedback_cam: FeedbackCamConfig,
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
    /// The input gradient through the soft-feedback gates ([`Method::Feedback`]'s maps).
    soft_gradient: Cached<Maps>,
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
            Method::Feedback => cache.soft_gradient.get_or_try(|| {
                self.gradient_maps(batch, targets, gates, ActivationRule::Gradient)
            })?,
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
        let ((fine, scores), fine_ms) = cache
            .soft_gradient
            .get_or_try(|| self.gradient_maps(batch, targets, gates, ActivationRule::Gradient))?;
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
