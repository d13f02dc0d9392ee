#!/usr/bin/env bash
# Loading time and peak memory: feedbacknet's loader against an onnxruntime session, on the same
# files, side by side (issue 22, "Loading speed"). Exports VGG16, ResNet-50 and ViT-B/16
# (unsimplified: its reshape targets computed at run time) with random weights (torchvision,
# weights=None, opset 17) into a temporary folder unless files are given.
#
#   pip install torch torchvision onnx onnxruntime
#   bash scripts/load_speed.sh [model.onnx ...]
#
# Each loader loads each file three times; the fastest load is printed, with the peak resident
# memory of the process (Linux VmHWM / ru_maxrss).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p feedbacknet-onnx --example load_time
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  python3 - "$dir" <<'PY'
import sys, warnings, torch, torchvision
warnings.filterwarnings("ignore")
torch.manual_seed(0)
for name in ("vgg16", "resnet50", "vit_b_16"):
    net = getattr(torchvision.models, name)(weights=None).eval()
    torch.onnx.export(net, torch.randn(1, 3, 224, 224), f"{sys.argv[1]}/{name}.onnx", opset_version=17,
                      dynamo=False, input_names=["input"], output_names=["logits"])
PY
  files=("$dir/vgg16.onnx" "$dir/resnet50.onnx" "$dir/vit_b_16.onnx")
fi
for f in "${files[@]}"; do
  python3 - "$f" <<'PY'
import resource, sys, time, onnxruntime as ort
best = min(
    (lambda t: (ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"]), time.perf_counter() - t)[1])(time.perf_counter())
    for _ in range(3)
)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{sys.argv[1]}: onnxruntime session min {best:.2f} s, peak RSS {peak:.0f} MiB")
PY
  target/release/examples/load_time "$f"
done
