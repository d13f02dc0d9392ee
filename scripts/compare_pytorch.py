#!/usr/bin/env python3
"""feedbacknet vs PyTorch on the same ONNX net, the same image and the same thread count.

Runs the `timing` example of feedbacknet (release build) and the same algorithms in PyTorch
(the ONNX file converted by onnx2torch, weights frozen), then prints per method the median time
of each, the ratio feedbacknet / PyTorch, and the Pearson correlation of the two saliency maps
(so that speed is never bought with a different answer).

    pip install torch onnx2torch onnx numpy pillow
    python3 scripts/compare_pytorch.py [--model squeezenet1.1.onnx] [--runs 5] [--threads 2] [--rounds 3]

Methods, as feedbacknet defines them: gradient (Simonyan et al.), guided backprop, DeconvNet,
Grad-CAM on the last gated feature map, soft feedback (30 projected SGD steps with momentum 0.9,
lr 0.1, stop when no gate moves by 1e-4; --objective as the library's, default the log-softmax
with lambda 0.001; `logit` is the paper's formulation with lambda 0.01; --kinks as the library's,
default a smooth derivative of sharpness 10 at the ReLU/ReLU6 kinks while the gates are solved,
`exact` with the logit) for one class and for the top-5 classes in one batch.

Stability (--dev N, default 4): on N dev images and their true class, PyTorch's own maps in
float32 against the same computation in float64, and against the input plus 1e-6 uniform noise
(Pearson correlation of the maps; a port cannot agree with PyTorch better than this). The hard solver has no PyTorch counterpart here. Maps: M_ij = max_c |d score / d I_cij|
(Grad-CAM: the ReLU of the weighted feature map, bilinearly upsampled), normalized to max 1.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx2torch import convert
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
NORMALIZATION = {  # the presets of feedbacknet-onnx
    "squeezenet1.1.onnx": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mobilenet_v2_1.0_224.onnx": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "mobilenet_v1_0.25_128.onnx": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "efficientnet_lite0.onnx": ((0.498, 0.498, 0.498), (0.502, 0.502, 0.502)),
}
GATED = ("ReLU", "ReLU6", "Hardtanh", "OnnxClip")


def median_ms(runs, f):
    f()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


class Gated:
    """The converted net; hooks are installed only while a method needs them (a hook costs time
    even when it does nothing): gates after every ReLU/Clip, modified backward rules, or the
    recording of activations."""

    def __init__(self, path):
        self.model = convert(onnx.load(str(path))).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.acts = [m for m in self.model.modules() if type(m).__name__ in GATED]
        self.gates = None
        self.outputs = []

    def hooks(self, gates=None, rule=None, record=False, beta=None):
        """Installs hooks; returns their handles (call `unhook` with them). With `beta`, each
        activation's derivative is the smooth one of feedbacknet's `KinkDerivative::Smooth`:
        sigmoid(beta x) - sigmoid(beta (x - max)), its value unchanged."""
        handles = []
        for i, m in enumerate(self.acts):
            if gates is not None or record or beta is not None:
                hook = self._forward_hook(i, gates, record, beta)
                handles.append(m.register_forward_hook(hook))
            if rule is not None:
                handles.append(m.register_full_backward_hook(self._backward_hook(rule)))
        return handles

    @staticmethod
    def unhook(handles):
        for h in handles:
            h.remove()

    def _forward_hook(self, i, gates, record, beta=None):
        def hook(module, inputs, output):
            if beta is not None:
                x = inputs[0]
                smooth = F.softplus(x, beta)
                upper = getattr(module, "max_val", float("inf"))
                if upper != float("inf"):
                    smooth = smooth - F.softplus(x - upper, beta)
                output = output.detach() + (smooth - smooth.detach())
            if gates is not None:
                output = output * gates[i]
            if record:
                self.outputs.append(output)
            return output

        return hook

    @staticmethod
    def _backward_hook(rule):
        def hook(module, grad_input, grad_output):
            if rule == "guided":
                return (grad_input[0].clamp(min=0),)
            return (grad_output[0].clamp(min=0),)  # deconvnet

        return hook

    def __call__(self, x):
        self.outputs = []
        return self.model(x)

    def shapes(self, x):
        handles = self.hooks(record=True)
        with torch.no_grad():
            self(x)
        self.unhook(handles)
        return [o.shape for o in self.outputs]


def input_gradient_map(net, x, targets, rule=None, gates=None):
    handles = net.hooks(gates=gates, rule=rule)
    x = x.clone().requires_grad_(True)
    logits = net(x)
    score = logits[torch.arange(len(targets)), targets].sum()
    (grad,) = torch.autograd.grad(score, x)
    net.unhook(handles)
    return grad.abs().amax(dim=1)


def gradcam_map(net, x, targets):
    handles = net.hooks(record=True)
    # The input must be part of the graph for the feature map to have a gradient (the weights
    # are frozen); autograd.grad stops at the feature map, as feedbacknet does.
    logits = net(x.clone().requires_grad_(True))
    net.unhook(handles)
    spatial = [o for o in net.outputs if o.dim() == 4 and o.shape[2] * o.shape[3] > 1]
    feature = spatial[-1]
    score = logits[torch.arange(len(targets)), targets].sum()
    (grad,) = torch.autograd.grad(score, feature)
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * feature).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def objective_seed(logits, targets, objective):
    """d objective / d logits, per sample (the seeds of feedbacknet_solver's objectives)."""
    index = torch.arange(len(targets))
    one_hot = torch.zeros_like(logits)
    one_hot[index, targets] = 1.0
    if objective == "logit":
        return one_hot
    if objective == "log-softmax":
        return one_hot - torch.softmax(logits, dim=1)
    if objective == "margin":
        rival = logits.masked_fill(one_hot.bool(), -float("inf")).argmax(dim=1)
        seed = one_hot.clone()
        seed[index, rival] = -1.0
        return seed
    if objective == "contrast-mean":
        return one_hot - (1.0 - one_hot) / (logits.shape[1] - 1)
    raise ValueError(f"unknown objective {objective}")


def soft_feedback(net, x, targets, iterations=30, lr=0.1, momentum=0.9, lam=None, tol=1e-4,
                  objective="log-softmax", kinks=None):
    """The soft solver; runs in x's dtype (float64 too: the model is cast and cast back).
    lam and kinks default as feedbacknet's: 0.01 and the exact derivative with the paper's
    logit, 0.001 and a smooth derivative of sharpness 10 otherwise (kinks: "exact" or a beta)."""
    if lam is None:
        lam = 0.01 if objective == "logit" else 0.001
    if kinks is None:
        kinks = "exact" if objective == "logit" else "10"
    beta = None if kinks == "exact" else float(kinks)
    dtype = x.dtype
    net.model.to(dtype)
    shapes = net.shapes(x)
    gates = [torch.ones(s, dtype=dtype) for s in shapes]
    velocity = [torch.zeros(s, dtype=dtype) for s in shapes]
    for _ in range(iterations):
        leaves = [g.clone().requires_grad_(True) for g in gates]
        handles = net.hooks(gates=leaves, beta=beta)
        logits = net(x)
        net.unhook(handles)
        seed = objective_seed(logits.detach(), targets, objective)
        grads = torch.autograd.grad((logits * seed).sum(), leaves)
        largest = 0.0
        with torch.no_grad():
            for k, (g, d) in enumerate(zip(gates, grads)):
                direction = d - lam * (g > 0).to(dtype)
                velocity[k] = momentum * velocity[k] + direction
                new = (g + lr * velocity[k]).clamp(0.0, 1.0)
                largest = max(largest, (new - g).abs().max().item())
                gates[k] = new
        if largest < tol:
            break
    result = input_gradient_map(net, x, targets, gates=gates)
    net.model.float()
    return result


def top5_feedback(net, x, x5, top5, objective, kinks=None):
    """Soft feedback of the top-5 classes in one batch; one class at a time where the converted
    graph bakes batch 1 into its reshapes (onnx2torch's EfficientNet-Lite0), as feedbacknet's
    pipeline does for such nets."""
    try:
        with torch.no_grad():
            net.model(x5)
    except RuntimeError:
        return torch.cat([soft_feedback(net, x, c.view(1), objective=objective, kinks=kinks)
                          for c in top5])
    return soft_feedback(net, x5, top5, objective=objective, kinks=kinks)


def at_size(their_map, size):
    """PyTorch's map (at the net's input size) resized bilinearly to `size` (the image's, where
    feedbacknet writes its maps)."""
    m = torch.as_tensor(their_map).detach().to(torch.float64)
    if tuple(m.shape[-2:]) != tuple(size):
        m = F.interpolate(m[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return m


def correlation(a, b):
    return float(np.corrcoef(normalized(a), normalized(b))[0, 1])


def stability(net, x, target, f, seed=0):
    """PyTorch's own map of f against itself in float64 and under 1e-6 uniform input noise."""
    base = f(x, target)
    r64 = correlation(base, f(x.double(), target))
    generator = torch.Generator().manual_seed(seed)
    noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * 1e-6
    r_noise = correlation(base, f(x + noise, target))
    return r64, r_noise


def normalized(m):
    m = m.detach().numpy().astype(np.float64).ravel()
    return m / max(m.max(), 1e-12)


def run_feedbacknet(model, runs, threads, maps_dir, objective, kinks=None):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), FEEDBACKNET_OBJECTIVE=objective)
    if kinks is not None:
        env["FEEDBACKNET_KINKS"] = kinks
    cmd = ["cargo", "run", "--release", "--quiet", "--example", "timing", "--",
           str(runs), model, str(maps_dir)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    times = {}
    for line in out.splitlines():
        m = re.match(r"^(\S+(?: top-5)?)\s+([0-9.]+) ms", line)
        if m:
            times[m.group(1)] = float(m.group(2))
    return times


def prepare(path, size, mean, std):
    image = Image.open(path).convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return ((pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None])[None]


def dev_stability(net, shared, model, size, mean, std, count, objective, kinks=None):
    """Per method, the mean (and smallest) correlation of PyTorch's own maps, float32 against
    float64 and clean against 1e-6 input noise, over `count` dev images and their true class."""
    import csv
    rows = list(csv.DictReader(open(shared / "data/imagenet-val/boxes.csv")))
    images = list(dict.fromkeys((r["image"], int(r["class_idx"])) for r in rows))
    picked = images[:: max(1, len(images) // max(count, 1))][:count]
    offset = 1 if net.model(torch.zeros(1, 3, size, size)).shape[1] == 1001 else 0

    def cast(f):
        def run(x, t):
            net.model.to(x.dtype)
            out = f(x, t)
            net.model.float()
            return out
        return run

    methods = {
        "gradient": cast(lambda x, t: input_gradient_map(net, x, t)),
        "gradcam": cast(lambda x, t: gradcam_map(net, x, t)),
        "feedback": lambda x, t: soft_feedback(net, x, t, objective=objective, kinks=kinks),
    }
    table = {}
    for name, f in methods.items():
        pairs = []
        for k, (path, cls) in enumerate(picked):
            x = prepare(shared / "data/imagenet-val" / path, size, mean, std)
            pairs.append(stability(net, x, torch.tensor([cls + offset]), f, seed=k))
        table[name] = pairs
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="squeezenet1.1.onnx")
    ap.add_argument("--shared", default=os.environ.get("FEEDBACKNET_SHARED", str(ROOT.parent / "shared")))
    ap.add_argument("--image", default="data/demo/gradcam_both.png")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--maps", default="/tmp/feedbacknet_compare_maps")
    ap.add_argument("--objective", default="log-softmax",
                    choices=["logit", "log-softmax", "margin", "contrast-mean"],
                    help="the soft solver's objective on both sides (default: the library's)")
    ap.add_argument("--kinks", default=None,
                    help="the solver's derivative at the ReLU/ReLU6 kinks on both sides: `exact` or "
                         "a sharpness beta (default: the library's, 10; exact with --objective logit)")
    ap.add_argument("--dev", type=int, default=4,
                    help="stability: on this many dev images (spread over boxes.csv), PyTorch's "
                         "own maps in float32 against float64 and against the input with 1e-6 "
                         "uniform noise (0: skip)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two sides this many times and report each method's median "
                         "over the rounds (a shared machine drifts over minutes)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shared = Path(args.shared)

    print(f"feedbacknet: timing example, {args.runs} runs, RAYON_NUM_THREADS={args.threads} ...", file=sys.stderr)
    our_rounds = [run_feedbacknet(args.model, args.runs, args.threads, args.maps, args.objective,
                                   args.kinks)]
    maps = Path(args.maps)
    class_index = int((maps / "class.txt").read_text())

    net = Gated(shared / "models" / args.model)
    mean, std = NORMALIZATION[args.model]
    size = None
    for inp in onnx.load(str(shared / "models" / args.model)).graph.input:
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        if len(dims) == 4:
            size = dims[2] or 224
    x = prepare(shared / args.image, size, mean, std)
    # The library's own network input (its resize), so that both sides solve on the same values:
    # the resize filters differ (PIL's bilinear against the library's), which moves the rougher
    # maps more than the solvers differ.
    theirs_x = maps / "input.f32"
    if theirs_x.exists() and theirs_x.stat().st_size == x.numel() * 4:
        x = torch.from_numpy(np.fromfile(theirs_x, dtype="<f4").reshape(x.shape).copy())
    with torch.no_grad():
        top5 = net(x)[0].topk(5).indices
    one = torch.tensor([class_index])
    x5 = x.repeat(5, 1, 1, 1)

    print(f"PyTorch {torch.__version__}: {args.runs} runs, {args.threads} threads ...", file=sys.stderr)
    theirs, their_maps = {}, {}
    cases = {
        "forward": lambda: torch.no_grad()(net.model)(x),
        "gradient": lambda: input_gradient_map(net, x, one),
        "deconvnet": lambda: input_gradient_map(net, x, one, "deconvnet"),
        "guided": lambda: input_gradient_map(net, x, one, "guided"),
        "gradcam": lambda: gradcam_map(net, x, one),
        "feedback": lambda: soft_feedback(net, x, one, objective=args.objective, kinks=args.kinks),
        "feedback top-5": lambda: top5_feedback(net, x, x5, top5, args.objective, args.kinks),
    }
    their_rounds = []
    for r in range(args.rounds):
        if r > 0:
            print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr)
            our_rounds.append(run_feedbacknet(args.model, args.runs, args.threads, args.maps, args.objective,
                                   args.kinks))
        times = {}
        for name, f in cases.items():
            runs = min(args.runs, 3) if name == "feedback top-5" else args.runs
            times[name] = median_ms(runs, f)
            if r == 0 and name not in ("forward", "feedback top-5"):
                their_maps[name] = f()[0]
        their_rounds.append(times)
    for name in cases:
        theirs[name] = statistics.median(t[name] for t in their_rounds)
    ours = {name: statistics.median(t[name] for t in our_rounds if name in t)
            for name in cases if any(name in t for t in our_rounds)}

    print(f"\n{args.model}, logit {class_index}, {args.threads} threads, median of {args.runs} runs"
          + (f", median of {args.rounds} alternating rounds" if args.rounds > 1 else ""))
    print(f"| method | feedbacknet ms | PyTorch ms | ratio | map correlation |")
    print(f"|---|---|---|---|---|")
    for name in cases:
        corr = ""
        if name in their_maps and (maps / f"{name}.f32").exists():
            a = np.fromfile(maps / f"{name}.f32", dtype="<f4").astype(np.float64)
            b = normalized(at_size(their_maps[name], Image.open(shared / args.image).size[::-1]))
            corr = f"{np.corrcoef(a / max(a.max(), 1e-12), b)[0, 1]:.4f}"
        mine = ours.get(name)
        ratio = f"{mine / theirs[name]:.2f}" if mine else "-"
        mine = f"{mine:.1f}" if mine else "-"
        print(f"| {name} | {mine} | {theirs[name]:.1f} | {ratio} | {corr} |")
    if args.dev > 0:
        print(f"\nStability of PyTorch's own maps, {args.dev} dev images, objective {args.objective}: "
              "mean (smallest) correlation")
        print("| method | float32 vs float64 | input noise 1e-6 |")
        print("|---|---|---|")
        table = dev_stability(net, shared, args.model, size, mean, std, args.dev, args.objective,
                              args.kinks)
        for name, pairs in table.items():
            r64 = [p[0] for p in pairs]
            rn = [p[1] for p in pairs]
            print(f"| {name} | {np.mean(r64):.3f} ({min(r64):.3f}) | {np.mean(rn):.3f} ({min(rn):.3f}) |")


if __name__ == "__main__":
    main()
