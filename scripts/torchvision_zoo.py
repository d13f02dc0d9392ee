#!/usr/bin/env python3
"""Which torchvision classifiers feedbacknet loads, and whether it predicts as onnxruntime does.

Every architecture of `torchvision.models.list_models(module=torchvision.models)` is built with
`weights=None` (weights cannot be downloaded here; seed 0; BatchNorm statistics calibrated on
random batches in train mode with `momentum=None`, then `eval()`, as in ../shared/NOTES.md),
exported with the TorchScript exporter (`dynamo=False`) at each opset, with and without onnxsim,
into a temporary folder (never the repository). For each file the script

  - lists the operators the loader does not implement (against its operator list, below),
  - runs onnxruntime on a shared image, cropped (or resized, by PIL) to the model's input size and
    saved as PNG, so that feedbacknet reads the very same pixels and does not resample them,
  - runs `feedbacknet infer --model FILE --image CROP --top-k 1 --method gradient --out DIR`
    and reads the top-5 predictions and the gate sites from `DIR/<stem>.json` (or the error it
    printed),
  - for the first export of each architecture that loads, runs `--method feedback` too: its
    time minus the gradient run's is one soft-feedback solve (30 iterations, one class),

and writes a markdown table: loads?, the operator it refused (or the error), the operators
missing from the loader, whether the top-5 classes equal onnxruntime's (same order), the
largest logit difference over them, the gate sites and the soft-feedback time.

Usage (from the repository root, after `cargo build --release -p feedbacknet-cli`):
    pip install torch torchvision onnx onnxruntime onnxsim numpy pillow
    python3 scripts/torchvision_zoo.py target/release/feedbacknet [--opsets 13 17]
        [--simplify both|yes|no] [--only resnet18 vit_b_16 ...] [--max-params 30]
        [--out docs/architectures.md]

Each architecture is exported in a child process (`--export-one`), killed after
`--export-timeout` seconds per export (default 120): such architectures are reported as skipped.
`--skip` (default: vit_h_14, regnet_y_128gf, whose files exceed ONNX's 2 GiB protobuf limit)
leaves architectures out with a note. `--no-cli` reports the operators and onnxruntime only.
"""

import argparse
import collections
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FEEDBACKNET_SHARED", ROOT.parent / "shared"))
DEFAULT_IMAGE = SHARED / "data" / "demo" / "gradcam_both.png"
# The operators feedbacknet-onnx loads (docs/architectures.md, "Operators"), after issue 22.
SUPPORTED = {
    "Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Add",
    "Sub", "Mul", "Div", "Gemm", "MatMul", "Flatten", "Reshape", "Pad", "BatchNormalization",
    "Dropout", "Identity", "Softmax", "LRN", "Constant",
    "Transpose", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2", "Erf", "Sqrt", "Reciprocal",
    "Exp", "Neg", "Abs", "Pow", "LayerNormalization", "Slice", "Gather", "Squeeze", "Unsqueeze",
    "Split", "Shape", "Expand", "ConstantOfShape", "Cast", "Attention",
    "Sigmoid", "HardSigmoid", "HardSwish", "Gelu", "LeakyRelu", "Elu", "Mish", "PRelu", "Tanh",
    "Softplus", "Einsum", "Equal", "Not", "Where", "Mod", "Range", "ScatterND",
}  # fmt: skip
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # feedbacknet's default (ImageNet)
INPUT_SIZE = {"inception_v3": 299}  # the rest take 224x224
SIMPLIFY_MODES = {"both": ["no", "yes"], "yes": ["yes"], "no": ["no"]}  # --simplify: exports kept
TOO_BIG = {
    "vit_h_14": "632M parameters: the ONNX file exceeds protobuf's 2 GiB limit",
    "regnet_y_128gf": "645M parameters: the ONNX file exceeds protobuf's 2 GiB limit",
}
REFUSED = re.compile(r"unsupported ONNX operator `([^`]+)` at node `([^`]*)`")
CONFIG = re.compile(r"node `([^`]*)` \(([^)]+)\): unsupported configuration: (.*)")


# ---------------------------------------------------------------------------------------------
# The child process: build, calibrate, export, simplify, run onnxruntime.
# ---------------------------------------------------------------------------------------------


def build(name, size):
    import torch
    import torchvision

    torch.manual_seed(0)
    extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
    net = torchvision.models.get_model(name, weights=None, **extra)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        net.train()
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for _ in range(3):
                net(torch.randn(4, 3, size, size, generator=generator))
    return net.eval()


def op_types(model):
    return sorted({n.op_type for n in model.graph.node})


def ort_logits(path, pixels):
    import numpy as np
    import onnxruntime as ort

    x = (pixels.astype(np.float32) / 255.0 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0].reshape(-1)


def export_one(name, opsets, simplify_modes, folder, crop):
    """Exports `name` at every opset and simplify mode into `folder`; writes manifest.json."""
    import numpy as np
    import onnx
    import torch
    from onnxsim import simplify
    from PIL import Image

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    size = INPUT_SIZE.get(name, 224)
    started = time.time()
    net = build(name, size)
    params = sum(p.numel() for p in net.parameters())
    pixels = np.asarray(Image.open(crop).convert("RGB"))
    variants = []
    for opset in opsets:
        path = folder / f"{name}_op{opset}.onnx"
        record = {"opset": opset, "simplified": False, "file": str(path)}
        t = time.time()
        try:
            # Not under no_grad: there MultiheadAttention takes a fused path with no ONNX export.
            torch.onnx.export(
                net, (torch.zeros(1, 3, size, size),), str(path), opset_version=opset,
                input_names=["input"], output_names=["logits"], do_constant_folding=True,
                dynamo=False,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 (the exporter raises many kinds)
            record["export_error"] = f"{type(e).__name__}: {first_sentence(str(e))}"
            variants.append(record)
            if "yes" in simplify_modes:
                variants.append(dict(record, simplified=True, file=None))
            continue
        record["export_s"] = round(time.time() - t, 1)
        plain = onnx.load(str(path))
        if "no" in simplify_modes:
            variants.append(dict(record, ops=op_types(plain), logits=ort_logits(path, pixels).tolist()))
        if "yes" in simplify_modes:
            spath = folder / f"{name}_op{opset}_sim.onnx"
            srecord = dict(record, simplified=True, file=str(spath))
            t = time.time()
            try:
                simplified, ok = simplify(plain)
                if not ok:
                    raise RuntimeError("onnxsim could not validate the simplified model")
                onnx.save(simplified, str(spath))
                srecord.update(simplify_s=round(time.time() - t, 1), ops=op_types(simplified))
                srecord["logits"] = ort_logits(spath, pixels).tolist()
            except Exception as e:  # noqa: BLE001
                srecord["export_error"] = f"onnxsim: {type(e).__name__}: {first_sentence(str(e))}"
            variants.append(srecord)
        if "no" not in simplify_modes:
            path.unlink()
    manifest = {"name": name, "params": params, "size": size, "variants": variants}
    manifest["settings"] = {"opsets": opsets, "simplify": simplify_modes}
    manifest["total_s"] = round(time.time() - started, 1)
    (folder / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------------------------
# The parent: crops, children, the CLI, the table.
# ---------------------------------------------------------------------------------------------


def make_crop(image, size, folder):
    """The image centre-cropped to size x size (resized first, by PIL, if it is smaller), as
    PNG: feedbacknet then reads the same pixels as onnxruntime gets, without resampling."""
    from PIL import Image

    rgb = Image.open(image).convert("RGB")
    if min(rgb.size) < size:
        scale = size / min(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.BILINEAR)
    left, top = (rgb.width - size) // 2, (rgb.height - size) // 2
    path = folder / f"image_{size}.png"
    rgb.crop((left, top, left + size, top + size)).save(path)
    return path


def run_cli(cli, model, crop, out, timeout, method="gradient"):
    """(top-5 [(index, logit)], the JSON report, None) or (None, None, error text)."""
    command = [str(cli), "infer", "--model", str(model), "--image", str(crop), "--top-k", "1"]
    command += ["--method", method, "--out", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"timeout after {timeout} s"
    report = out / f"{crop.stem}.json"
    if done.returncode != 0 or not report.is_file():
        return None, None, error_text(done.stderr or done.stdout)
    data = json.loads(report.read_text())
    report.unlink()
    for png in out.glob(f"{crop.stem}_*.png"):
        png.unlink()
    return [(p["class"]["index"], p["logit"]) for p in data["predictions"]], data, None


def first_sentence(text):
    return re.split(r"(?<=\.)\s", text.strip().splitlines()[0] if text.strip() else "")[0][:200]


def error_text(stderr):
    if m := REFUSED.search(stderr):
        return f"refused `{m.group(1)}` (node `{m.group(2)}`)"
    if m := CONFIG.search(stderr):
        return f"`{m.group(2)}` (node `{m.group(1)}`): {m.group(3).strip()[:150]}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return (lines[-1] if lines else "failed, no message")[:200]


def compare(top5, logits):
    """(verdict, max |logit difference| over feedbacknet's top 5)."""
    import numpy as np

    logits = np.asarray(logits)
    reference = [int(i) for i in np.argsort(-logits, kind="stable")[:5]]
    diff = max(abs(logit - float(logits[i])) for i, logit in top5)
    if [i for i, _ in top5] == reference:
        return "yes", diff
    # Random weights give near-ties: same logits but another order is a tie, not a mismatch.
    gap = max(abs(float(logits[i]) - float(logits[j])) for i, j in zip(reference, [i for i, _ in top5]))
    return ("tie order" if diff < 1e-3 and gap < 1e-3 else "NO"), diff


def exported(name, args, child, crop):
    """The manifest of `name`'s exports in `child`: reused when a run with --keep or --workdir
    left one made with the same settings, else made by a child process. (manifest, None) or
    (None, the row's error)."""
    modes = SIMPLIFY_MODES[args.simplify]
    path = child / "manifest.json"
    if path.is_file():
        manifest = json.loads(path.read_text())
        if manifest.get("settings") == {"opsets": args.opsets, "simplify": modes}:
            return manifest, None
    shutil.rmtree(child, ignore_errors=True)
    child.mkdir(parents=True)
    command = [sys.executable, __file__, "--export-one", name, "--dir", str(child), "--crop", str(crop)]
    command += ["--opsets", *map(str, args.opsets), "--simplify", args.simplify]
    limit = args.export_timeout * len(args.opsets) * len(modes) + 60
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        shutil.rmtree(child, ignore_errors=True)
        return None, f"skipped: export took more than {limit} s"
    if done.returncode != 0 or not path.is_file():
        shutil.rmtree(child, ignore_errors=True)
        return None, "export failed: " + error_text(done.stderr)
    return json.loads(path.read_text()), None


def survey(name, args, folder, crops):
    """The rows of one architecture."""
    size = INPUT_SIZE.get(name, 224)
    child = folder / name
    manifest, error = exported(name, args, child, crops[size])
    if manifest is None:
        return [row(name, None, None, None, error)]
    cli = not args.no_cli and (args.cli_max_params is None or manifest["params"] <= args.cli_max_params * 1e6)
    rows = []
    for v in manifest["variants"]:
        r = row(name, manifest["params"], v["opset"], v["simplified"], v.get("export_error"))
        if "ops" in v:
            r["missing"] = sorted(set(v["ops"]) - SUPPORTED)
            if cli:
                top5, report, error = run_cli(args.cli, v["file"], crops[size], child, args.infer_timeout)
                r["loads"] = "yes" if top5 else "no"
                r["error"] = error or ""
                if top5:
                    r["match"], r["diff"] = compare(top5, v["logits"])
                    r["sites"] = report.get("gate_sites")
                    timed = any(x.get("feedback_s") is not None for x in rows)
                    if not timed and (args.feedback_max_params is None or manifest["params"] <= args.feedback_max_params * 1e6):
                        # Soft feedback (30 iterations) minus the gradient run: one solve's time.
                        _, fb, fb_error = run_cli(args.cli, v["file"], crops[size], child, args.infer_timeout, "feedback")
                        if fb:
                            r["feedback_s"] = max(0.0, (fb["total_ms"] - report["total_ms"]) / 1e3)
                        else:
                            r["error"] = f"feedback: {fb_error}"
        rows.append(r)
    if not args.keep:
        shutil.rmtree(child, ignore_errors=True)
    return rows



def row(name, params, opset, simplified, error):
    return {
        "name": name, "params": params, "opset": opset, "simplified": simplified, "loads": "",
        "error": error or "", "missing": None, "match": "", "diff": None, "sites": None,
        "feedback_s": None,
    }  # fmt: skip


def markdown(rows, args, started, versions):
    command = "python3 scripts/torchvision_zoo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "# torchvision classifiers in feedbacknet",
        "",
        f"Generated {started:%Y-%m-%d %H:%M} UTC by `{command}` ({versions}).",
        "",
        "The loader implements " + ", ".join(sorted(SUPPORTED)) + " (after issue 22). The column "
        "*missing operators* lists what each export needs beyond them (onnxsim folds the run-time "
        "shape arithmetic into constants); a file that needs none can still be refused by onnx-ir "
        "or for a configuration (the *error* column says which).",
        "",
        "Weights are random (`weights=None`, seed 0, BatchNorm calibrated on random batches, then "
        "`eval()`); the TorchScript exporter (`dynamo=False`) with constant folding; input "
        f"224x224 (Inception v3 299x299), the centre of `{rel(args.image)}` as PNG, ImageNet "
        "normalization. *top-5 = onnxruntime*: feedbacknet's five best classes in the same order "
        "as onnxruntime's (*tie order*: the same logits within 1e-3, another order); *max |Δ|*: "
        "the largest logit difference over them.",
        "",
        *scope(args),
        "| architecture | params (M) | opset | onnxsim | loads? | refused operator / error | "
        "missing operators | top-5 = onnxruntime? | max \\|Δ\\| | gate sites | soft feedback (s) |",
        "|---|---:|---:|---|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        params = f"{r['params'] / 1e6:.1f}" if r["params"] else ""
        missing = ", ".join(r["missing"]) if r["missing"] else ("none" if r["missing"] == [] else "")
        diff = f"{r['diff']:.1e}" if r["diff"] is not None else ""
        simplified = {True: "yes", False: "no", None: ""}[r["simplified"]]
        opset = r["opset"] or ""
        sites = r["sites"] if r["sites"] is not None else ""
        feedback = f"{r['feedback_s']:.1f}" if r["feedback_s"] is not None else ""
        lines.append(
            f"| {r['name']} | {params} | {opset} | {simplified} | {r['loads']} | "
            f"{r['error'].replace('|', '/')} | {missing} | {r['match']} | {diff} | "
            f"{sites} | {feedback} |"
        )
    lines += ["", *summary(rows)]
    return "\n".join(lines) + "\n"


def scope(args):
    """What this run left to other runs, as sentences (with a blank line after)."""
    notes = []
    if args.no_cli:
        notes.append("The CLI did not run (`--no-cli`): operators and onnxruntime only.")
    elif args.cli_max_params:
        notes.append(f"The CLI ran on the nets up to {args.cli_max_params:g}M parameters; the larger "
                     "ones list their missing operators only.")  # fmt: skip
    if args.max_params:
        notes.append(f"Nets over {args.max_params:g}M parameters were not exported (`--max-params`).")
    return [" ".join(notes), ""] if notes else []


def summary(rows):
    exported = [r for r in rows if r["missing"] is not None]
    counts = collections.Counter(op for r in exported for op in r["missing"])
    blocked = collections.defaultdict(set)
    for r in exported:
        for op in r["missing"]:
            blocked[op].add(r["name"])
    lines = ["## Missing operators, by how many exports need them", ""]
    lines += ["| operator | exports | architectures |", "|---|---:|---|"]
    for op, n in counts.most_common():
        lines.append(f"| {op} | {n} | {', '.join(sorted(blocked[op]))} |")
    loads = sorted({r["name"] for r in rows if r["loads"] == "yes"})
    ready = sorted({r["name"] for r in exported if not r["missing"]})
    lines += ["", f"Exports with no missing operator: {len([r for r in exported if not r['missing']])} "
              f"of {len(exported)} ({', '.join(ready) or 'none'})."]  # fmt: skip
    if any(r["loads"] for r in rows):
        lines.append(f"Architectures that load in at least one form: {', '.join(loads) or 'none'}.")
    return lines


def rel(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT.parent))
    except ValueError:
        return str(path)


def versions():
    import onnx
    import onnxruntime
    import onnxsim
    import torch
    import torchvision

    return (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnx {onnx.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, onnxsim {onnxsim.__version__}"
    )


def parse():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cli", nargs="?", type=Path, help="the feedbacknet binary")
    parser.add_argument("--opsets", type=int, nargs="+", default=[13, 17])
    parser.add_argument("--simplify", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--only", nargs="+", help="these architectures only (in this order)")
    parser.add_argument("--skip", nargs="*", default=sorted(TOO_BIG), help="architectures left out")
    parser.add_argument("--max-params", type=float, help="leave out nets above this many million parameters")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--export-timeout", type=int, default=120, help="seconds per export")
    parser.add_argument("--infer-timeout", type=int, default=300, help="seconds per CLI run")
    parser.add_argument("--out", type=Path, help="the markdown file (default: standard output)")
    parser.add_argument(
        "--workdir", type=Path,
        help="folder for the exports, kept and reused by the next run with the same settings "
        "(export now, run the CLI later); default: a new temporary folder, removed at the end",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the ONNX files")
    parser.add_argument("--no-cli", action="store_true", help="operators and onnxruntime only")
    parser.add_argument("--cli-max-params", type=float, help="run the CLI on nets up to this many million parameters only")
    parser.add_argument("--feedback-max-params", type=float, help="time soft feedback on nets up to this many million parameters only")
    parser.add_argument("--export-one", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--crop", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.export_one and not args.no_cli and args.cli is None:
        parser.error("give the feedbacknet binary (or --no-cli)")
    return args


def params_of(name):
    """Parameter count without building the net: torchvision's weight metadata."""
    import torchvision

    weights = torchvision.models.get_model_weights(name)
    return next(iter(weights)).meta["num_params"]


def main():
    args = parse()
    if args.export_one:
        export_one(args.export_one, args.opsets, SIMPLIFY_MODES[args.simplify], args.dir, args.crop)
        return
    import torchvision

    started = datetime.datetime.now(datetime.timezone.utc)
    if args.cli:
        args.cli = args.cli.resolve()
    if args.workdir:
        args.keep = True
        folder = args.workdir.resolve()
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="feedbacknet_zoo_"))
    if folder.resolve().is_relative_to(ROOT.resolve()):
        raise SystemExit(f"{folder} lies inside the repository: give --workdir outside it")
    names = args.only or torchvision.models.list_models(module=torchvision.models)
    crops = {size: make_crop(args.image, size, folder) for size in {224, *INPUT_SIZE.values()}}
    rows = []
    for name in names:
        t = time.time()
        if name in (args.skip or []):
            rows.append(row(name, params_of(name), None, None, "skipped: " + TOO_BIG.get(name, "--skip")))
        elif args.max_params and params_of(name) > args.max_params * 1e6:
            rows.append(row(name, params_of(name), None, None, f"left out: over {args.max_params:g}M parameters"))
        else:
            rows.extend(survey(name, args, folder, crops))
        print(f"{name:24} {time.time() - t:6.1f} s", file=sys.stderr, flush=True)
    text = markdown(rows, args, started, versions())
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
