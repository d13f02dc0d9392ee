//! `MaxPool`, `AveragePool` (2-D) and `GlobalAveragePool`.

use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use onnx_ir::{
    Node,
    node::{avg_pool2d::AvgPool2dConfig, max_pool2d::MaxPool2dConfig},
};

use super::{
    builder::{Compiler, unsupported},
    window::{check_positive, explicit_pads, padding_pairs},
};
use crate::{error::Result, ops::Op};

/// 2-D max pooling.
pub(super) fn max_pool2d(c: &mut Compiler, node: &Node, cfg: &MaxPool2dConfig) -> Result<()> {
    let name = node.name();
    explicit_pads(name, "MaxPool", &cfg.auto_pad, "auto_pad SAME_*")?;
    let windows = [cfg.strides, cfg.dilation, cfg.kernel_size];
    check_positive(name, "MaxPool", &windows)?;
    let mut options = MaxPoolOptions::new(cfg.kernel_size)
        .with_stride(cfg.strides)
        .with_padding_pairs(padding_pairs(&cfg.padding))
        .with_ceil_mode(cfg.ceil_mode);
    options.dilation = cfg.dilation;
    c.unary(node, Op::MaxPool2d(options))
}

/// 2-D average pooling (undilated).
pub(super) fn average_pool2d(c: &mut Compiler, node: &Node, cfg: &AvgPool2dConfig) -> Result<()> {
    let name = node.name();
    explicit_pads(name, "AveragePool", &cfg.auto_pad, "auto_pad SAME_*")?;
    if cfg.dilation != [1, 1] {
        return Err(unsupported(name, "AveragePool", "dilation other than 1"));
    }
    check_positive(name, "AveragePool", &[cfg.strides, cfg.kernel_size])?;
    let options = AvgPoolOptions::new(cfg.kernel_size)
        .with_stride(cfg.strides)
        .with_padding_pairs(padding_pairs(&cfg.padding))
        .with_count_include_pad(cfg.count_include_pad)
        .with_ceil_mode(cfg.ceil_mode);
    c.unary(node, Op::AvgPool2d { options })
}

/// The mean over all spatial positions.
pub(super) fn global_average_pool(c: &mut Compiler, node: &Node) -> Result<()> {
    c.unary(node, Op::GlobalAveragePool)
}
