//! Choosing the Burn device (and so the backend) at run time.

use feedbacknet_core::Device;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The compute backends feedbacknet can run on; each is a Cargo feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (feature `flex`, default).
    #[default]
    Flex,
    /// wgpu: Vulkan, Metal or DX12 (feature `wgpu`).
    Wgpu,
    /// CUDA (feature `cuda`).
    Cuda,
    /// Burn's classic ndarray CPU backend (feature `ndarray`). Deprecated in Burn 0.22 and much
    /// slower than `flex` for the backward passes that every method runs: for comparison only.
    Ndarray,
}

impl Backend {
    /// The backends compiled into this build.
    pub fn available() -> Vec<Backend> {
        let mut out = Vec::new();
        if cfg!(feature = "flex") {
            out.push(Backend::Flex);
        }
        if cfg!(feature = "wgpu") {
            out.push(Backend::Wgpu);
        }
        if cfg!(feature = "cuda") {
            out.push(Backend::Cuda);
        }
        if cfg!(feature = "ndarray") {
            out.push(Backend::Ndarray);
        }
        out
    }

    /// The device of this backend, or an error if the feature is not compiled in.
    pub fn device(self) -> Result<Device> {
        let missing = || {
            Error::Config(format!(
                "backend {self:?} is not compiled in (enable the Cargo feature `{}`)",
                format!("{self:?}").to_lowercase()
            ))
        };
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // deprecated in Burn 0.22; offered for comparison
            Backend::Ndarray => Ok(Device::ndarray()),
            #[allow(unreachable_patterns)]
            _ => Err(missing()),
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "flex" | "cpu" => Ok(Backend::Flex),
            "wgpu" => Ok(Backend::Wgpu),
            "cuda" => Ok(Backend::Cuda),
            "ndarray" => Ok(Backend::Ndarray),
            _ => Err(format!("unknown backend `{s}` (flex, wgpu, cuda, ndarray)")),
        }
    }
}

/// The first compiled-in backend's device (flex in a default build).
pub fn default_device() -> Result<Device> {
    Backend::available()
        .first()
        .copied()
        .ok_or_else(|| Error::Config("no backend feature enabled".into()))?
        .device()
}
