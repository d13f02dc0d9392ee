#!/usr/bin/env bash
# Throughput of `feedbacknet eval --batch B` on every backend this machine can run, for each
# method and batch size (issue 26: batches of images). Prints images/s and the peak memory.
#
#   bash scripts/gpu_bench.sh [IMAGES]            # default 64 images of the shared dev set
#   BATCHES="1 4 16 64" METHODS="gradient gradcam feedback" MODEL=squeezenet1.1.onnx \
#     bash scripts/gpu_bench.sh 256
#   BIN=target/debug/feedbacknet BACKENDS=flex bash scripts/gpu_bench.sh 4   # no build
#
# Builds the CLI in release with `--features wgpu` (flex, the CPU backend, is in the same
# binary), then tries `--features cuda` and says so when it cannot be built (its build
# downloads LLVM). Backends run: flex always; wgpu when a Vulkan driver is installed (a GPU's,
# or Mesa's software lavapipe, /usr/share/vulkan/icd.d/lvp_icd*.json, which is slow: use a
# small IMAGES there); cuda when it built and `nvidia-smi` sees a GPU. Each run is one
# `eval --batch B --max-batch 2B --workers 1` (one image's true class and top-1 guess are two
# samples, so a call of B images is one batch of at most 2B samples; one worker feeds the
# device) on the first IMAGES images, soft feedback with its default 30 iterations.
#
# Columns: wall images/s (the whole command: model load, first-call warm-up such as shader
# compilation, decoding), explain images/s (images over the sum of the records' times: the
# explainer calls and scoring only), and the peak memory: for NVIDIA GPUs the peak of
# `nvidia-smi --query-gpu=memory.used` polled every 100 ms, above its value before the run; for
# flex the peak resident set size of the process (GNU time); n/a otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FEEDBACKNET_SHARED:-../shared}
images=${1:-64}
batches=${BATCHES:-"1 4 16 64"}
methods=${METHODS:-"gradient gradcam feedback"}
model=${MODEL:-squeezenet1.1.onnx}
out=$(mktemp -d)
poller=
trap '[ -n "$poller" ] && kill "$poller" 2>/dev/null; rm -rf "$out"' EXIT

cuda_bin=
if [ -n "${BIN:-}" ]; then
  # A binary built before: only the backends named in BACKENDS (default flex).
  cp "$BIN" "$out/feedbacknet-wgpu"
  case " ${BACKENDS:-flex} " in *" cuda "*) cuda_bin="$out/feedbacknet-wgpu" ;; esac
else
  echo "== building (release, --features wgpu)"
  cargo build --release -q -p feedbacknet-cli --features wgpu
  cp target/release/feedbacknet "$out/feedbacknet-wgpu"
  echo "== building (release, --features cuda)"
  if cargo build --release -q -p feedbacknet-cli --features cuda 2> "$out/cuda-build.log"; then
    cp target/release/feedbacknet "$out/feedbacknet-cuda"
    cuda_bin="$out/feedbacknet-cuda"
  else
    echo "   cuda: cannot be built here (last lines of the build log):"
    tail -n 5 "$out/cuda-build.log" | sed 's/^/   | /'
  fi
fi

nvidia=false
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  nvidia=true
  nvidia-smi -L | sed 's/^/   /'
fi
runs=("flex $out/feedbacknet-wgpu")
if [ -n "${BIN:-}" ] && [[ " ${BACKENDS:-flex} " != *" wgpu "* ]]; then
  :
elif $nvidia || compgen -G "/usr/share/vulkan/icd.d/*.json" > /dev/null; then
  runs+=("wgpu $out/feedbacknet-wgpu")
else
  echo "   wgpu: no Vulkan driver (/usr/share/vulkan/icd.d is empty): skipped"
fi
if [ -n "$cuda_bin" ]; then
  if $nvidia; then runs+=("cuda $cuda_bin"); else echo "   cuda: built, but no NVIDIA GPU: skipped"; fi
fi

# Peak of nvidia-smi's memory.used (MiB) while "$@" runs, minus its value before.
gpu_peak() {
  local before
  before=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$out/poll" &
  poller=$!
  "$@"
  kill "$poller" 2>/dev/null || true
  wait "$poller" 2>/dev/null || true
  poller=
  local peak
  peak=$(sort -n "$out/poll" | tail -n 1)
  echo "$(( ${peak:-$before} - before )) MiB"
}

# Field of the summary JSON's "timings" (the last number after "KEY":).
field() { grep -o "\"$1\": *[0-9.e+-]*" "$2" | tail -n 1 | sed 's/.*: *//'; }

printf '%-5s %-9s %5s %7s %8s %10s %12s  %s\n' backend method batch images wall_s "wall img/s" "explain img/s" "peak memory"
for run in "${runs[@]}"; do
  read -r backend bin <<< "$run"
  for method in $methods; do
    for batch in $batches; do
      rm -f "$out/r.jsonl" "$out/s.json"
      cmd=("$bin" eval --models-dir "$shared/models" --model "$model" --data "$shared/data/imagenet-val"
        --method "$method" --backend "$backend" --limit "$images" --batch "$batch"
        --max-batch $((2 * batch)) --workers 1 --sweep 0 --results "$out/r.jsonl" --json "$out/s.json")
      start=$(date +%s.%N)
      if [ "$backend" = flex ] && [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%M" -o "$out/rss" "${cmd[@]}" > "$out/stdout" 2> "$out/stderr" || { cat "$out/stderr"; exit 1; }
        memory="$(( $(tail -n 1 "$out/rss") / 1024 )) MiB RSS"
      elif $nvidia && [ "$backend" != flex ]; then
        memory=$(gpu_peak "${cmd[@]}" > "$out/mem" 2> "$out/stderr" && tail -n 1 "$out/mem") || { cat "$out/stderr"; exit 1; }
      else
        "${cmd[@]}" > "$out/stdout" 2> "$out/stderr" || { cat "$out/stderr"; exit 1; }
        memory=n/a
      fi
      wall=$(echo "$(date +%s.%N) - $start" | bc -l)
      timed=$(field images "$out/s.json")
      total_ms=$(field total_ms "$out/s.json")
      printf '%-5s %-9s %5d %7d %8.1f %10.2f %12.2f  %s\n' "$backend" "$method" "$batch" "$timed" "$wall" \
        "$(echo "$timed / $wall" | bc -l)" "$(echo "1000 * $timed / $total_ms" | bc -l)" "$memory"
    done
  done
done
