#!/usr/bin/env bash
# The CPU kernels' unit tests under valgrind's memcheck: invalid reads and writes, reads of
# uninitialised memory (what the kernels' `unsafe` writes into uninitialised buffers could cause)
# and mismatched frees. Exits non-zero on the first error memcheck reports.
#
#   bash scripts/memcheck.sh            # every kernel unit test (debug build, flex fast paths on)
#   bash scripts/memcheck.sh winograd   # only the tests whose name contains "winograd"
#
# Needs valgrind (Debian: apt-get install valgrind). Valgrind emulates a CPU without AVX-512,
# so the kernels run their AVX2 paths here (the AVX-512 ones are the same code, compiled twice
# by `multiversion`). Report: docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

# The test binary of the workspace build (`cargo test --workspace`, so the kernels are built
# with the features the workspace gives them, flex's fast paths included).
binary=$(cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and m["target"]["name"] == "feedbacknet_kernels" and m["profile"]["test"]):
        print(m["executable"])')
[ -n "$binary" ] || { echo "could not build the kernel tests" >&2; exit 2; }

echo "memcheck on $binary ${1:+(tests matching \"$1\")}" >&2
# Two pool threads, so the parallel paths (disjoint writes through shared pointers) run too.
RAYON_NUM_THREADS=2 valgrind --tool=memcheck --error-exitcode=99 --leak-check=no \
    --track-origins=yes --num-callers=30 \
    "$binary" --test-threads=1 ${1:+"$1"}
