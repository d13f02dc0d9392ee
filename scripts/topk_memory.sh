#!/usr/bin/env bash
# Peak memory of `feedbacknet infer --top-k K` for K = 1, 5, 50, 1000 on SqueezeNet 1.1 and
# MobileNet v2 (issue 23: bounded memory for any request). Classes run in batches of at most
# --max-batch samples (default 16), so the peak stops growing once K passes the batch.
#
#   bash scripts/topk_memory.sh [--method gradient|feedback|...] [--max-batch N]
#
# Prints K, the wall time and the peak resident set size (GNU time's "Maximum resident set
# size") per net. Writes its overlays into a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p feedbacknet-cli
shared=${FEEDBACKNET_SHARED:-../shared}
image="$shared/data/demo/darknet_dog.jpg"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--method gradient)
for model in squeezenet1.1.onnx mobilenet_v2_1.0_224.onnx; do
  for k in 1 5 50 1000; do
    /usr/bin/time -f "%e %M" -o "$out/time" target/release/feedbacknet infer \
      --models-dir "$shared/models" --model "$model" --image "$image" --top-k "$k" \
      --out "$out/k$k" "${args[@]}" > /dev/null 2> "$out/stderr" || { cat "$out/stderr"; exit 1; }
    read -r seconds kib < "$out/time"
    printf '%-28s top-k %4d: %6.1f s, peak RSS %5d MiB\n' "$model" "$k" "$seconds" $((kib / 1024))
  done
done
