#!/usr/bin/env python3
"""Small ONNX nets built from modern architectures' blocks: fixtures for the operators and the
activation gates that feedbacknet does not load yet (groundwork for issue 22).

Each net is built from torchvision's own block classes with fixed seeds and random weights
(BatchNorm statistics calibrated on random batches, as in ../shared/NOTES.md), takes a 1x3x32x32
input and ends in 10 logits. It is exported with the TorchScript exporter (`dynamo=False`) at
two opsets (13 and 17; ViT at 14 and 17) and simplified with onnxsim; a variant is kept only
when its graph differs (by operator counts) from one already kept. Next to every
`tests/fixtures/modern/<file>.onnx` lies `<file>.json` (the graphs built with `onnx.helper`
instead, `GRAPHS`, record their own fields: see `graph_fixture`):

    input_shape, input (flat, NCHW row-major; exactly representable: randn rounded to 1/64),
    input_rule (how to regenerate it), logits (onnxruntime), torch_logits, ort_vs_torch_max_abs,
    class (the argmax of the logits) and input_gradient (PyTorch autograd d logits[0, class] /
    d input, same layout as the input), op_types (operator -> count), unsupported_ops (those
    the loader refused when this was written), activations (PyTorch activation modules in the
    net), opset, simplified, versions.

Usage (from the repository root):
    pip install torch torchvision onnx onnxruntime onnxsim numpy
    python3 scripts/make_fixtures.py [--out tests/fixtures/modern]
"""

import argparse
import collections
import io
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator
import torchvision
from onnxsim import simplify
from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.models.efficientnet import MBConv, MBConvConfig
from torchvision.models.mobilenetv3 import InvertedResidual as MobileInvertedResidual
from torchvision.models.mobilenetv3 import InvertedResidualConfig
from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleInvertedResidual
from torchvision.models.vision_transformer import VisionTransformer
from torchvision.ops.misc import Conv2dNormActivation

ROOT = Path(__file__).resolve().parent.parent
INPUT_SHAPE = (1, 3, 32, 32)
CLASSES = 10
# The operators feedbacknet-onnx loads (README, "Models") when these fixtures were made.
SUPPORTED = {
    "Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Add",
    "Sub", "Mul", "Div", "Gemm", "MatMul", "Flatten", "Reshape", "Pad", "BatchNormalization",
    "Dropout", "Identity", "Softmax", "LRN", "Constant",
}  # fmt: skip
ACTIVATIONS = {
    nn.ReLU: "ReLU", nn.ReLU6: "ReLU6", nn.GELU: "GELU", nn.SiLU: "SiLU",
    nn.Hardswish: "HardSwish", nn.Hardsigmoid: "HardSigmoid", nn.Sigmoid: "Sigmoid",
    nn.Softmax: "Softmax", nn.MultiheadAttention: "Softmax (attention)", nn.PReLU: "PReLU",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The nets: torchvision blocks between a small stem and a global-pool + linear head.
# ---------------------------------------------------------------------------------------------


class ConvNeXtNet(nn.Sequential):
    """ConvNeXt: patchify stem, CNBlocks (depthwise 7x7, LayerNorm, Linear-GELU-Linear, layer
    scale), LayerNorm2d + strided-conv downsampling, pooled LayerNorm2d head."""

    def __init__(self):
        norm = partial(LayerNorm2d, eps=1e-6)
        super().__init__(
            nn.Conv2d(3, 32, kernel_size=4, stride=4),
            norm(32),
            CNBlock(32, layer_scale=0.5, stochastic_depth_prob=0.0),
            CNBlock(32, layer_scale=0.5, stochastic_depth_prob=0.0),
            norm(32),
            nn.Conv2d(32, 64, kernel_size=2, stride=2),
            CNBlock(64, layer_scale=0.5, stochastic_depth_prob=0.0),
            nn.AdaptiveAvgPool2d(1),
            norm(64),
            nn.Flatten(1),
            nn.Linear(64, CLASSES),
        )
        for block in self.modules():
            if isinstance(block, CNBlock):  # per-channel scales, not one constant
                nn.init.uniform_(block.layer_scale, 0.2, 1.0)


def vit():
    """ViT: 8x8 patches of a 32x32 image (16 tokens + class token), dim 48, 2 heads, 2 layers;
    torchvision's VisionTransformer (its Encoder: pre-norm attention and GELU MLP)."""
    net = VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=48, mlp_dim=96,
        num_classes=CLASSES,
    )  # fmt: skip
    # torchvision zeroes the head and the class token: the logits would not depend on the input.
    nn.init.normal_(net.heads.head.weight, std=0.2)
    nn.init.normal_(net.heads.head.bias, std=0.1)
    nn.init.normal_(net.class_token, std=0.5)
    nn.init.normal_(net.encoder.pos_embedding, std=0.5)
    return net


class EfficientNetNet(nn.Sequential):
    """EfficientNet: SiLU stem, MBConv blocks (expand, depthwise, squeeze-excite with SiLU and
    Sigmoid, project, residual), SiLU 1x1 head, AdaptiveAvgPool2d, linear."""

    def __init__(self):
        norm = nn.BatchNorm2d
        configs = [
            MBConvConfig(1, 3, 1, 16, 16, 1),
            MBConvConfig(4, 3, 2, 16, 24, 1),
            MBConvConfig(4, 5, 1, 24, 24, 1),
        ]
        super().__init__(
            Conv2dNormActivation(3, 16, 3, stride=2, norm_layer=norm, activation_layer=nn.SiLU),
            *[MBConv(c, 0.0, norm) for c in configs],
            Conv2dNormActivation(24, 64, 1, norm_layer=norm, activation_layer=nn.SiLU),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(64, CLASSES),
        )


class MobileNetV3Net(nn.Sequential):
    """MobileNet v3: HardSwish stem, InvertedResidual blocks (ReLU and HardSwish, squeeze-excite
    with HardSigmoid), HardSwish 1x1 head, AdaptiveAvgPool2d, Linear-HardSwish-Linear."""

    def __init__(self):
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        configs = [
            InvertedResidualConfig(16, 3, 16, 16, True, "RE", 2, 1, 1.0),
            InvertedResidualConfig(16, 3, 72, 24, False, "RE", 2, 1, 1.0),
            InvertedResidualConfig(24, 5, 96, 24, True, "HS", 1, 1, 1.0),
        ]
        super().__init__(
            Conv2dNormActivation(3, 16, 3, stride=2, norm_layer=norm, activation_layer=nn.Hardswish),
            *[MobileInvertedResidual(c, norm) for c in configs],
            Conv2dNormActivation(24, 96, 1, norm_layer=norm, activation_layer=nn.Hardswish),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(96, 64),
            nn.Hardswish(),
            nn.Linear(64, CLASSES),
        )


class ShuffleNetV2Net(nn.Module):
    """ShuffleNet v2: ReLU stem, InvertedResidual units (channel split, branches, Concat,
    channel shuffle by view/transpose/view), ReLU 1x1 head, mean over H and W, linear."""

    def __init__(self):
        super().__init__()
        self.stem = Conv2dNormActivation(3, 24, 3, stride=2, norm_layer=nn.BatchNorm2d)
        self.units = nn.Sequential(
            ShuffleInvertedResidual(24, 48, 2),
            ShuffleInvertedResidual(48, 48, 1),
            ShuffleInvertedResidual(48, 48, 1),
        )
        self.head = Conv2dNormActivation(48, 64, 1, norm_layer=nn.BatchNorm2d)
        self.fc = nn.Linear(64, CLASSES)

    def forward(self, x):
        x = self.head(self.units(self.stem(x)))
        return self.fc(x.mean([2, 3]))  # as torchvision's ShuffleNetV2


def maxvit():
    """MaxViT: torchvision's `maxvit.MaxVit` (conv stem to 16x16, one stage of 16 channels and
    one layer: MBConv with squeeze-excite, block attention then grid attention over 2x2
    partitions of the 8x8 map, head dim 8), its LayerNorm-Linear-Tanh-Linear head. Its relative
    attention exports as `Einsum`."""
    net = torchvision.models.maxvit.MaxVit(
        input_size=(32, 32), stem_channels=16, partition_size=2, block_channels=[16],
        block_layers=[1], head_dim=8, stochastic_depth_prob=0.0, num_classes=CLASSES,
    )  # fmt: skip
    nn.init.normal_(net.classifier[-1].weight, std=0.2)
    return net


def swin():
    """Swin: torchvision's `swin_transformer.SwinTransformer` (4x4 patches, dim 16, one stage
    of 2 blocks with 2 heads over 4x4 windows of the 8x8 map; the second block shifted, with
    the attention mask built from shapes: Range, Mod, Equal, Where, Not, ScatterND)."""
    net = torchvision.models.swin_transformer.SwinTransformer(
        patch_size=[4, 4], embed_dim=16, depths=[2], num_heads=[2], window_size=[4, 4],
        stochastic_depth_prob=0.0, num_classes=CLASSES,
    )  # fmt: skip
    nn.init.normal_(net.head.weight, std=0.2)
    nn.init.normal_(net.head.bias, std=0.1)
    for m in net.modules():
        if hasattr(m, "relative_position_bias_table"):
            nn.init.normal_(m.relative_position_bias_table, std=0.5)
    return net


class PReLUNet(nn.Sequential):
    """PReLU with a learnt slope per channel: conv-BN-PReLU(16) stem (the slope exported as
    [16, 1, 1]), depthwise conv-BN-PReLU(16), pointwise conv-BN and a one-slope PReLU,
    AdaptiveAvgPool2d, Linear(32, 24)-PReLU(24)-Linear (the slope [24] on [N, 24] features).
    The per-channel slopes are drawn in [-0.5, 1] (a negative slope is what guided backprop
    blocks); the one-slope PReLU keeps PyTorch's 0.25."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.PReLU(16),
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16),
            nn.PReLU(16),
            nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.PReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
            nn.Linear(32, 24), nn.PReLU(24), nn.Linear(24, CLASSES),
        )  # fmt: skip
        for m in self.modules():
            if isinstance(m, nn.PReLU) and m.num_parameters > 1:
                nn.init.uniform_(m.weight, -0.5, 1.0)


# name -> (constructor, opsets, also exported with a dynamic batch axis at the last opset)
NETS = {
    "convnext": (ConvNeXtNet, (13, 17), False),
    "vit": (vit, (14, 17), True),
    "efficientnet": (EfficientNetNet, (13, 17), False),
    "mobilenet_v3": (MobileNetV3Net, (13, 17), False),
    "shufflenet_v2": (ShuffleNetV2Net, (13, 17), True),
    "maxvit": (maxvit, (17,), False),
    "swin": (swin, (17,), False),
    "prelu": (PReLUNet, (13, 17), False),
}
SEED = 2026


# ---------------------------------------------------------------------------------------------
# Building, exporting, checking.
# ---------------------------------------------------------------------------------------------


def calibrate(net, seed):
    """BatchNorm statistics from random batches (train mode, momentum=None: cumulative average),
    then eval(): a random-weight net whose logits depend on the input and stay finite."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        generator = torch.Generator().manual_seed(seed + 1)
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        net.train()
        with torch.no_grad():
            for _ in range(4):
                net(torch.randn((8,) + INPUT_SHAPE[1:], generator=generator))
    return net.eval()


def build(name, seed):
    torch.manual_seed(seed)
    constructor = NETS[name][0]
    return calibrate(constructor(), seed)


def fixture_input(seed):
    """randn(INPUT_SHAPE) with generator seed `seed`, rounded to multiples of 1/64."""
    generator = torch.Generator().manual_seed(seed)
    return torch.round(torch.randn(INPUT_SHAPE, generator=generator) * 64) / 64


def export(net, x, opset, dynamic=False):
    """The ONNX export; with `dynamic` the batch axis is symbolic ("batch"), which keeps the
    Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains that compute shapes at run time."""
    buffer = io.BytesIO()
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    torch.onnx.export(
        net, (x,), buffer, opset_version=opset, input_names=["input"], output_names=["logits"],
        do_constant_folding=True, dynamic_axes=axes, dynamo=False,
    )  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def op_counts(model):
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def run_ort(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def activations(net):
    found = {label for m in net.modules() for cls, label in ACTIVATIONS.items() if type(m) is cls}
    return sorted(found)


def reference(net, x):
    """Torch logits and the input gradient of the top logit."""
    x = x.clone().requires_grad_(True)
    logits = net(x)
    c = int(logits[0].argmax())
    (gradient,) = torch.autograd.grad(logits[0, c], x)
    return logits.detach(), c, gradient


def token_grad_cam(net, x, c):
    """Grad-CAM of class `c` on a ViT's tokens entering its last encoder block, the class token
    dropped and the 16 patch tokens read as a 4x4 map (row-major), as CAM tools' reshape
    transform does: `relu(sum_c mean_t(dA) * A)`."""
    captured = {}

    def keep(_module, inputs):
        captured["tokens"] = inputs[0]
        inputs[0].retain_grad()

    handle = net.encoder.layers[-1].register_forward_pre_hook(keep)
    logits = net(x)
    handle.remove()
    logits[0, c].backward()
    tokens, grad = captured["tokens"][0, 1:], captured["tokens"].grad[0, 1:]
    weights = grad.mean(dim=0)
    return torch.relu((tokens * weights).sum(dim=1)).detach()


def variants(name, net, x):
    """(file stem, opset, simplified, dynamic batch, model) of every static export whose operator
    counts differ from those already kept (the first export always kept), then the unsimplified
    dynamic-batch export at the last opset where the net asks for one."""
    _, opsets, dynamic = NETS[name]
    kept, seen = [], set()
    for opset in opsets:
        plain = export(net, x, opset)
        onnx.checker.check_model(plain)
        simplified, ok = simplify(plain)
        assert ok, f"{name}: onnxsim could not validate the simplified model"
        for model, simple in ((plain, False), (simplified, True)):
            key = tuple(op_counts(model).items())
            if key in seen:
                continue
            seen.add(key)
            stem = f"{name}_op{opset}" + ("_sim" if simple else "")
            kept.append((stem, opset, simple, False, model))
    if dynamic:
        model = export(net, x, opsets[-1], dynamic=True)
        onnx.checker.check_model(model)
        kept.append((f"{name}_op{opsets[-1]}_dynamic", opsets[-1], False, True, model))
    return kept


def f32(values):
    """float32 values as the shortest decimals that read back as the same float32."""
    return [float(str(v)) for v in np.asarray(values, np.float32).reshape(-1)]


def declared_shape(model):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param if d.dim_param else d.dim_value for d in dims]


def check(stem, model, x, torch_logits, dynamic):
    """onnxruntime's logits for `x`, checked against PyTorch's (and, with a dynamic batch,
    against a batch of two copies)."""
    logits = run_ort(model, x)
    diff = float(np.abs(logits - torch_logits.numpy()).max())
    scale = float(np.abs(torch_logits.numpy()).max())
    if diff > 1e-4 * max(1.0, scale):
        raise SystemExit(f"{stem}: onnxruntime and PyTorch disagree by {diff}")
    if dynamic:
        pair = run_ort(model, torch.cat([x, x]))
        if pair.shape != (2, CLASSES) or np.abs(pair - logits).max() > 1e-5:
            raise SystemExit(f"{stem}: a batch of two does not repeat the logits")
    return logits, diff


def fixture(net, x, stem, opset, simple, dynamic, model, torch_logits, c, gradient):
    logits, diff = check(stem, model, x, torch_logits, dynamic)
    ops = op_counts(model)
    return {
        "file": f"{stem}.onnx",
        "generator": "scripts/make_fixtures.py",
        "opset": opset,
        "simplified": simple,
        "dynamic_batch": dynamic,
        "declared_input_shape": declared_shape(model),
        "input_name": "input",
        "output_name": "logits",
        "input_shape": list(INPUT_SHAPE),
        "input_rule": f"torch.round(torch.randn({list(INPUT_SHAPE)}, generator=torch.Generator()"
        f".manual_seed({SEED})) * 64) / 64",
        "input": f32(x),
        "logits": f32(logits),
        "torch_logits": f32(torch_logits),
        "ort_vs_torch_max_abs": diff,
        "class": c,
        "input_gradient": f32(gradient),
        "op_types": ops,
        "unsupported_ops": sorted(set(ops) - SUPPORTED),
        "activations": activations(net),
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
    }


# ---------------------------------------------------------------------------------------------
# Graphs built with onnx.helper: operators that the TorchScript exporter does not emit.
# ---------------------------------------------------------------------------------------------

MASK_INPUT_SHAPE = (1, 3, 4, 4)


def attention_bool_mask():
    """ONNX `Attention` (opset 23) with a constant boolean mask: the 16 pixels of a 1x3x4x4
    input as tokens (Reshape, Transpose), Q, K and V by MatMul (width 8: 2 heads of 4, the 3-D
    layout), a [16, 16] boolean mask drawn at random (true: the key takes part) in which query 5
    has no key at all, then Flatten and Gemm to 10 logits."""
    rng = np.random.default_rng(SEED)

    def weight(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name)

    mask = rng.random((16, 16)) < 0.6
    mask[5, :] = False
    initializers = [
        numpy_helper.from_array(np.array([1, 3, 16], np.int64), "shape"),
        weight("wq", 3, 8), weight("wk", 3, 8), weight("wv", 3, 8),
        numpy_helper.from_array(mask, "mask"),
        weight("head_w", 128, CLASSES), weight("head_b", CLASSES),
    ]  # fmt: skip
    node = helper.make_node
    nodes = [
        node("Reshape", ["input", "shape"], ["flat"]),
        node("Transpose", ["flat"], ["tokens"], perm=[0, 2, 1]),
        node("MatMul", ["tokens", "wq"], ["q"]),
        node("MatMul", ["tokens", "wk"], ["k"]),
        node("MatMul", ["tokens", "wv"], ["v"]),
        node("Attention", ["q", "k", "v", "mask"], ["attention"], q_num_heads=2, kv_num_heads=2),
        node("Flatten", ["attention"], ["features"], axis=1),
        node("Gemm", ["features", "head_w", "head_b"], ["logits"]),
    ]
    float_info = partial(helper.make_tensor_value_info, elem_type=onnx.TensorProto.FLOAT)
    graph = helper.make_graph(
        nodes, "attention_bool_mask", [float_info("input", shape=MASK_INPUT_SHAPE)],
        [float_info("logits", shape=(1, CLASSES))], initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model, mask


# name -> builder of (model, mask)
GRAPHS = {"attention_bool_mask_op23": attention_bool_mask}


def graph_fixture(stem, model, mask):
    """input (randn of MASK_INPUT_SHAPE, seed SEED, rounded to 1/64), logits (onnxruntime),
    reference_logits (onnx's ReferenceEvaluator) and their largest difference, the mask (flat,
    0/1), op_types and versions."""
    generator = torch.Generator().manual_seed(SEED)
    x = torch.round(torch.randn(MASK_INPUT_SHAPE, generator=generator) * 64) / 64
    logits = run_ort(model, x)
    (reference_logits,) = ReferenceEvaluator(model).run(None, {"input": x.numpy()})
    diff = float(np.abs(logits - reference_logits).max())
    if diff > 1e-5:
        raise SystemExit(f"{stem}: onnxruntime and the ONNX reference disagree by {diff}")
    return {
        "file": f"{stem}.onnx",
        "generator": "scripts/make_fixtures.py",
        "opset": 23,
        "input_shape": list(MASK_INPUT_SHAPE),
        "input": f32(x),
        "logits": f32(logits),
        "reference_logits": f32(reference_logits),
        "ort_vs_reference_max_abs": diff,
        "mask": [int(v) for v in mask.reshape(-1)],
        "op_types": op_counts(model),
        "versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__},
    }


def save(out, stem, model, record):
    onnx.save(model, out / f"{stem}.onnx")
    with open(out / f"{stem}.json", "w") as f:
        json.dump(record, f, indent=None, separators=(",", ":"))
        f.write("\n")
    return (out / f"{stem}.onnx").stat().st_size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "modern")
    parser.add_argument(
        "--only", nargs="*", choices=sorted(NETS) + sorted(GRAPHS), help="build these nets only"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # bit-for-bit reproducible reductions
    x = fixture_input(SEED)
    total = 0
    for i, name in enumerate(NETS):
        if args.only and name not in args.only:
            continue
        net = build(name, SEED + 100 * i)
        torch_logits, c, gradient = reference(net, x)
        for stem, opset, simple, dynamic, model in variants(name, net, x):
            record = fixture(net, x, stem, opset, simple, dynamic, model, torch_logits, c, gradient)
            if name == "vit":
                record["grad_cam_last_block"] = f32(token_grad_cam(net, x, c))
            size = save(args.out, stem, model, record)
            total += size
            print(
                f"{stem:28} {size / 1024:7.1f} KiB  ort-torch {record['ort_vs_torch_max_abs']:.1e}  "
                f"class {c}  unsupported: {', '.join(record['unsupported_ops']) or '-'}",
                file=sys.stderr,
            )
    for stem, builder in GRAPHS.items():
        if args.only and stem not in args.only:
            continue
        model, mask = builder()
        size = save(args.out, stem, model, graph_fixture(stem, model, mask))
        total += size
        print(f"{stem:28} {size / 1024:7.1f} KiB", file=sys.stderr)
    print(f"total {total / 1024:.1f} KiB of ONNX", file=sys.stderr)


if __name__ == "__main__":
    main()
