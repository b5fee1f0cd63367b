#!/bin/bash
# Ours against PyTorch on this machine's CPU, one table per command, both sides' threads and PyTorch's BLAS above it:
#   bash bench/vs-torch.sh kernels   (bun run bench:torch)         kernels at SD and CLIP shapes a 2-core CPU finishes
#   bash bench/vs-torch.sh models    (bun run bench:torch:models)  SD 1.5 UNet at 16² latents, ViT-L/14 at 224 px
#   bash bench/vs-torch.sh train     (bun run bench:torch:train)   the tiny model's training step, our dispatches
# Options: --samples N (models/train: timed runs after one warm-up run; default 1 for models, 5 for train),
# --threads N (torch's intra-op threads; default every core, as lavapipe), --allow-reference-blas, --only unet|vit
# (models: one of the two, to split the table over two runs).
# Both sides' JSON, their logs and the table (table.md) go to $OUT/<suite> or /tmp/bench-vs-torch/<suite>.
set -eu
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
suite=${1:-}
case "$suite" in kernels | models | train) shift ;; *)
  echo "usage: bash bench/vs-torch.sh kernels|models|train [--samples N] [--threads N] [--allow-reference-blas]" >&2
  exit 2
  ;;
esac
ours_args=() torch_args=()
while [ $# -gt 0 ]; do
  case "$1" in
  --samples) ours_args+=(--samples "$2") torch_args+=(--samples "$2") && shift 2 ;;
  --threads) torch_args+=(--threads "$2") && shift 2 ;;
  --allow-reference-blas) torch_args+=("$1") && shift ;;
  --tiny) ours_args+=("$1") torch_args+=("$1") && shift ;; # models at tiny widths: checks the harness, not speed
  --only) ours_args+=(--only "$2") torch_args+=(--only "$2") && shift 2 ;;
  *) echo "bench/vs-torch.sh: unknown option $1 (see the header of bench/vs-torch.sh)" >&2 && exit 2 ;;
  esac
done
if [ "$suite" = kernels ] && [ ${#ours_args[@]} -gt 0 ]; then
  echo "bench/vs-torch.sh kernels takes --threads and --allow-reference-blas only" >&2
  exit 2
fi
source bench/torch-python.sh
out=${OUT:-/tmp/bench-vs-torch}/$suite
mkdir -p "$out"
read -r load _ </proc/loadavg
cores=$(nproc)
if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > c / 2) }'; then
  echo "note: load average $load on $cores cores: other work shares the CPU, so take these numbers as a smoke check" >&2
fi
# PyTorch first: it refuses the reference BLAS in seconds, before our side spends minutes.
if [ "$suite" = kernels ]; then
  $py bench/torch_baseline.py "$out/torch.json" --size small "${torch_args[@]}" >"$out/torch.log" 2>&1 || { cat "$out/torch.log" >&2; exit 1; }
  bun bench/kernels-json.ts small >"$out/ours.json" 2>"$out/ours.log" || { cat "$out/ours.log" >&2; exit 1; }
  bun bench/compare.ts "$out/ours.json" "$out/torch.json" | tee "$out/table.md"
else
  $py bench/torch_models.py "$suite" "$out/torch.json" "${torch_args[@]}" 2>"$out/torch.log" || { cat "$out/torch.log" >&2; exit 1; }
  bun bench/vs-torch-json.ts "$suite" "${ours_args[@]}" >"$out/ours.json" 2>"$out/ours.log" || { cat "$out/ours.log" >&2; exit 1; }
  bun bench/compare-models.ts "$out/ours.json" "$out/torch.json" | tee "$out/table.md"
fi
