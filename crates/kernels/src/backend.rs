//! The one switch between backends: [`Fast`] is the [`FastPath`] implementation of this build,
//! flex's with the `flex` feature and [`NoFastPath`] (the trait's defaults) without.
//!
//! The dispatch functions of the kernel families call `Fast::…` and fall back to the plain
//! Burn form in [`crate::reference`] (or, for the convolutions, to the caller's Burn op).

use crate::fast::FastPath;

/// No fast path at all: every kernel runs its reference (the build without `flex`).
#[cfg_attr(feature = "flex", allow(dead_code))]
pub(crate) struct NoFastPath;

impl FastPath for NoFastPath {}

/// The fast paths of this build.
#[cfg(feature = "flex")]
pub(crate) type Fast = crate::flex::Flex;

/// The fast paths of this build.
#[cfg(not(feature = "flex"))]
pub(crate) type Fast = NoFastPath;
