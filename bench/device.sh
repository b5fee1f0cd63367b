#!/bin/bash
# Our kernels and the PyTorch f32 baseline in one run on one machine, then the comparison table; then the
# whole-model benchmarks (UNet, VAE decode, text encoder; text-to-image and a TextCraftor training step),
# which have no PyTorch baseline here (bash bench/vs-torch.sh models|train has one on the CPU).
#   bash bench/device.sh [sd|small]      (sd: SD 1.5 shapes, needs a GPU; small: CPU-sized)
# On the lent GPU machine it runs as the bench stage of scripts/device-check.sh (its header has the set-up).
set -u
size=${1:-sd}
out=${OUT:-/tmp/bench}; mkdir -p "$out"
[ "$size" = sd ] && export TEXTCRAFTOR_REQUIRE_GPU=1
bun bench/kernels-json.ts "$size" > "$out/kernels.json" 2> "$out/kernels.log" || { cat "$out/kernels.log"; exit 1; }
source bench/torch-python.sh # installs the CPU baseline's torch and OpenBLAS where missing (bench/setup.sh)
# Refuses PyTorch on the reference BLAS; the table states both sides' threads above it.
$py bench/torch_baseline.py "$out/torch.json" --size "$size" > "$out/torch.log" 2>&1 || { cat "$out/torch.log"; exit 1; }
bun bench/compare.ts "$out/kernels.json" "$out/torch.json" | tee "$out/table.md"
bun bench/models-json.ts "$size" models > "$out/models.json" 2> "$out/models.log" || { cat "$out/models.log"; exit 1; }
# A failed training step (e.g. out of memory) is reported in its table and does not hide the others.
bun bench/models-json.ts "$size" train > "$out/train.json" 2> "$out/train.log" || echo "(bench train failed: the error is above)" >> "$out/train.log"
{
  printf '\nModels (random weights):\n\n'
  cat "$out/models.log"
  printf '\nText-to-image and one TextCraftor training step (random weights):\n\n'
  cat "$out/train.log"
  # A like-for-like baseline needs SD 1.5's UNet, VAE and CLIP in torch: diffusers/transformers are not on
  # the GPU machine, and nothing here rewrites them in plain torch.
  printf '\nNo PyTorch baseline for the models: diffusers is not installed on the GPU machine.\n'
} | tee -a "$out/table.md"
