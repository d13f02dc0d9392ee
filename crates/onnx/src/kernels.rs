//! The CPU kernels that the interpreter calls: they live in `feedbacknet-kernels` (each beside
//! its plain Burn reference, with the flex fast paths behind one switch); this module names the
//! ones the interpreter uses, so that its files reach them as `crate::kernels::…`.

pub(crate) use feedbacknet_kernels::{
    Wanted, WinogradWeights, activation, dense_conv, depthwise_conv, depthwise_input_grad,
    few_channel_conv, few_channel_input_grad, gated_activation, gated_activation_backward,
    gated_backward_step, max_pool, max_pool_with_indices, nan_max, pad_planes, pointwise_conv,
    sparse_pointwise_input_grad, spread_channels, symmetric_stride_one, winograd_conv,
    winograd_weights,
};
