//! What a solver iteration back-propagates from the logits.

use burn::tensor::Tensor;

use crate::Result;

/// The gradient of a solver's score w.r.t. the logits, computed from the logits of the same
/// forward pass (a one-hot row differentiates a target logit; `onehot − softmax` its
/// log-probability), and which logits the score reads.
///
/// A seed that reads only a few logits (the soft solver's logit objective reads each sample's
/// target logit) lets a network skip the rest of its classifier: the ONNX interpreter then
/// computes only those output channels of a final convolution (SqueezeNet's 512 → 1000
/// classifier is a quarter of its forward pass). The logits it does not read may then come back
/// as anything, 0 on the ONNX interpreter; the gradients are the same.
///
/// ```
/// use feedbacknet_core::{Device, Result, Seed, Tensor};
///
/// let device = Device::flex();
/// let one_hot = |logits: &Tensor<2>| -> Result<Tensor<2>> {
///     let mut row = vec![0.0f32; logits.dims()[1]];
///     row[2] = 1.0;
///     Ok(Tensor::<1>::from_floats(row.as_slice(), &logits.device()).reshape([1, 3]))
/// };
/// let seed = Seed::new(&one_hot).reading_only(&[2]);
/// let logits = Tensor::<2>::from_floats([[0.5, -1.0, 3.0]], &device);
/// assert_eq!(seed.gradient(&logits)?.into_data().try_to_vec::<f32>().unwrap(), [0.0, 0.0, 1.0]);
/// assert_eq!(seed.classes(), Some(&[2][..]));
/// # Ok::<(), feedbacknet_core::CoreError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Seed<'a> {
    gradient: &'a dyn Fn(&Tensor<2>) -> Result<Tensor<2>>,
    classes: Option<&'a [usize]>,
}

impl<'a> Seed<'a> {
    /// A seed computed by `gradient` from the logits; it may read every logit.
    pub fn new(gradient: &'a dyn Fn(&Tensor<2>) -> Result<Tensor<2>>) -> Self {
        Self {
            gradient,
            classes: None,
        }
    }

    /// The same seed, with the promise that it, and the caller that reads the logits back, read
    /// only the logits `classes` (in any order, repeats allowed).
    pub fn reading_only(self, classes: &'a [usize]) -> Self {
        Self {
            classes: Some(classes),
            ..self
        }
    }

    /// The `[batch, num_outputs]` gradient for these `logits`.
    pub fn gradient(&self, logits: &Tensor<2>) -> Result<Tensor<2>> {
        (self.gradient)(logits)
    }

    /// The only logits read, if the seed said so.
    pub fn classes(&self) -> Option<&'a [usize]> {
        self.classes
    }
}

impl std::fmt::Debug for Seed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}
