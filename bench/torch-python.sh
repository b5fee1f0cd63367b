# Sourced by the benchmark scripts: sets $py to a Python with torch, Debian's system Python first (its torch is the
# CPU baseline). On Debian without the baseline's packages it runs bench/setup.sh first, unless another python3
# has torch (the GPU machine's pip torch, which brings its own BLAS).
if command -v apt-get >/dev/null && ! python3 -c "import torch" 2>/dev/null &&
  ! { /usr/bin/python3 -c "import torch" 2>/dev/null && dpkg -s libopenblas0-pthread >/dev/null 2>&1; }; then
  bash "$(dirname "${BASH_SOURCE[0]}")/setup.sh" >&2
fi
py=python3
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && py=/usr/bin/python3
