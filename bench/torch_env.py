"""What the PyTorch side of a benchmark runs on: which BLAS torch really calls and how many threads each part uses.

Debian's python3-torch links the generic libblas.so.3, and the alternatives system decides which library that is:
the reference BLAS (about 6 GFLOP/s for a 512³ f32 matmul on 2 cores) or OpenBLAS (about 10× that). Its
`torch.__config__.show()` says `BLAS_INFO=generic` either way, so the library is read from the process's memory map
after a matmul has run. torch is imported inside the functions: the classification is tested without it.

Import this module before torch: OpenMP reads OMP_WAIT_POLICY when torch loads it, and its default, spinning
while it waits, made a 2-thread step 25× slower than 1 thread when other work shared the 2 cores (PASSIVE: as
fast as on a quiet machine). An OMP_WAIT_POLICY already set is kept, and the table states the one in force.
"""
import ctypes
import os
import re
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

INSTALL = "apt-get install libopenblas0-pthread"
REFERENCE_WARNING = ("PyTorch runs on the REFERENCE BLAS (--allow-reference-blas): its matmul is about 10x slower than "
                     "with OpenBLAS, so every ratio against it flatters our side")

# Checked in order: a path naming several (e.g. openblas-pthread/libblas.so.3) is the first kind that matches.
KINDS = [
    ("openblas", re.compile(r"openblas", re.I)),
    ("mkl", re.compile(r"libmkl", re.I)),
    ("blis", re.compile(r"blis", re.I)),
    ("atlas", re.compile(r"atlas", re.I)),
    ("reference", re.compile(r"/blas/libblas\.so|/libblas\.so|/librefblas", re.I)),
]
BLAS_FILE = re.compile(r"(?:blas|mkl|blis|atlas)[^/]*\.so", re.I)


def blas_from_maps(maps):
    """(kind, path) of the BLAS mapped into a process, from the text of /proc/<pid>/maps; (None, None) if none."""
    paths = []
    for line in maps.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and BLAS_FILE.search(os.path.basename(fields[5])) and fields[5] not in paths:
            paths.append(fields[5])
    for kind, pattern in KINDS:
        for path in paths:
            if pattern.search(path):
                return kind, path
    return (None, None) if not paths else ("unknown", paths[0])


def check_blas(kind, allow_reference):
    """Refuses a baseline on the reference BLAS (or on none found) unless the caller allowed it; returns a warning or None."""
    if kind in ("reference", None):
        what = "the reference BLAS" if kind == "reference" else "no BLAS library that could be identified"
        if not allow_reference:
            sys.exit(f"error: PyTorch runs on {what}, which is about 10x slower than OpenBLAS on matmul, so a table "
                     f"against it would flatter our kernels. Install OpenBLAS (`{INSTALL}`, or `bash bench/setup.sh`) and "
                     f"run again; --allow-reference-blas runs anyway and marks the table.")
        return REFERENCE_WARNING
    return None


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def openblas_threads(path):
    try:
        return ctypes.CDLL(path).openblas_get_num_threads()
    except (OSError, AttributeError):
        return None


def prepare(threads=None, allow_reference=False, cuda=False):
    """Sets torch's intra-op threads (default: every core this process may use, as lavapipe does), finds the BLAS
    after a matmul, refuses the reference BLAS unless allowed (on CUDA the BLAS is not what is timed); returns what the table states about this side."""
    import torch

    n = threads or cores()
    torch.set_num_threads(n)
    a = torch.ones(64, 64)
    _ = a @ a  # loads the BLAS where torch loads it lazily
    with open("/proc/self/maps") as f:
        kind, path = blas_from_maps(f.read())
    if kind is None:  # PyPI wheels link MKL or OpenBLAS statically, and their build settings name it
        built = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        if built and built.group(1) != "generic":
            kind, path = built.group(1), "built in"
    warning = None if cuda else check_blas(kind, allow_reference)
    return dict(torch=torch.__version__, blas=kind, blasPath=path, intraOpThreads=torch.get_num_threads(),
                openblasThreads=openblas_threads(path) if kind == "openblas" else None, cores=cores(),
                ompWaitPolicy=os.environ["OMP_WAIT_POLICY"], warning=warning)


def describe(env):
    blas = f"{env['blas']} ({os.path.basename(env['blasPath'])})" if env["blasPath"] else "no BLAS found"
    threads = f", OpenBLAS threads {env['openblasThreads']}" if env.get("openblasThreads") is not None else ""
    return (f"PyTorch {env['torch']} on {blas}: intra-op threads {env['intraOpThreads']}{threads}, "
            f"OMP_WAIT_POLICY {env['ompWaitPolicy']}, {env['cores']} cores")


def add_arguments(parser):
    parser.add_argument("--threads", type=int, help="torch intra-op threads; default: every core, as lavapipe uses")
    parser.add_argument("--allow-reference-blas", action="store_true",
                        help="run on the reference BLAS anyway (the table says so loudly)")
