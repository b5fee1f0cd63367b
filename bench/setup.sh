#!/bin/bash
# Set-up of the PyTorch baseline (CI does not need it, so scripts/setup.sh leaves it out): Debian's python3-torch
# for the system Python, and OpenBLAS, without which that torch runs on the reference BLAS (~10× slower matmul,
# which bench/torch_baseline.py refuses). Idempotent; prints what it did.
#   bash bench/setup.sh
set -eu
need=()
/usr/bin/python3 -c "import torch" 2>/dev/null || need+=(python3-torch)
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || need+=(libopenblas0-pthread)
if [ ${#need[@]} -eq 0 ]; then
  echo "bench setup: python3-torch and libopenblas0-pthread already installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "bench setup: apt-get install ${need[*]}"
$sudo apt-get install -y "${need[@]}" || { $sudo apt-get update && $sudo apt-get install -y "${need[@]}"; }
