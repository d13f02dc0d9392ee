//! What [`FeedbackNet::explain`](crate::FeedbackNet::explain) is asked: which classes, with
//! which methods.

use crate::{ClassQuery, MethodSpec};

/// The classes a [`Request`] explains.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// These classes (indices or labels), in this order.
    Classes(Vec<ClassQuery>),
    /// The `k` most likely classes of a plain forward pass, most likely first; `k` must lie
    /// in `1..=classes` ([`Error::TopK`](crate::Error::TopK) otherwise).
    TopK(usize),
}

/// A general explanation request: the classes and the methods.
///
/// All classes are solved together in one batch (one sample per class and view), and the
/// methods share their work: `Feedback` and `FeedbackCam` read the same soft-feedback gates and
/// the same gated gradient, `FeedbackCam` and `GradCam` the same Grad-CAM, so asking for all
/// three costs one solve. Without [`Request::method`] or [`Request::methods`] the net's own
/// method runs.
///
/// ```
/// use feedbacknet::{FeedbackCamConfig, Method, MethodSpec, Request, Targets};
/// let blurred_less = MethodSpec::new(Method::FeedbackCam)
///     .with_feedback_cam(FeedbackCamConfig::default().with_feedback_blur(5.0));
/// let request = Request::classes(["tiger cat", "bull mastiff"])
///     .method(Method::Feedback)
///     .method(blurred_less);
/// assert_eq!(request.targets.count(), Some(2));
/// assert_eq!(request.methods.as_ref().map(Vec::len), Some(2));
/// assert_eq!(Request::top_k(3).targets, Targets::TopK(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The classes.
    pub targets: Targets,
    /// The methods, in the order of the results; `None`: the net's method.
    pub methods: Option<Vec<MethodSpec>>,
}

impl Targets {
    /// The number of classes given; `None` for top-k (at most `k`, known after the forward
    /// pass).
    pub fn count(&self) -> Option<usize> {
        match self {
            Targets::Classes(classes) => Some(classes.len()),
            Targets::TopK(_) => None,
        }
    }
}

impl Request {
    /// A request for these classes (indices or labels) with the net's method.
    pub fn classes<Q: Into<ClassQuery>>(classes: impl IntoIterator<Item = Q>) -> Self {
        Self::new(Targets::Classes(
            classes.into_iter().map(Into::into).collect(),
        ))
    }

    /// A request for one class with the net's method.
    pub fn class(class: impl Into<ClassQuery>) -> Self {
        Self::classes([class.into()])
    }

    /// A request for the `k` most likely classes with the net's method.
    pub fn top_k(k: usize) -> Self {
        Self::new(Targets::TopK(k))
    }

    /// A request for `targets` with the net's method.
    pub fn new(targets: Targets) -> Self {
        Self {
            targets,
            methods: None,
        }
    }

    /// Adds a method (a [`Method`](crate::Method) or a [`MethodSpec`] with its own settings).
    pub fn method(mut self, spec: impl Into<MethodSpec>) -> Self {
        self.methods.get_or_insert_with(Vec::new).push(spec.into());
        self
    }

    /// Sets the methods, in the order of the results (none: an empty result).
    pub fn methods<S: Into<MethodSpec>>(mut self, specs: impl IntoIterator<Item = S>) -> Self {
        self.methods = Some(specs.into_iter().map(Into::into).collect());
        self
    }
}
