#!/usr/bin/env python3
"""PyTorch baseline for `bun run bench kernels`: the same cases, f32 with TF32 off (like-for-like), on CUDA
when present. Prints a table and writes JSON to the path given as the first argument (or stdout). On the CPU it
refuses the reference BLAS (see torch_env.py) and uses every core, as lavapipe does; both are stated.
  python3 bench/torch_baseline.py [out.json] [--size sd|small] [--threads N] [--allow-reference-blas]
"""
import argparse
import json
import math
import statistics
import time

import torch_env  # before torch: it sets OpenMP's wait policy

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("out", nargs="?", help="JSON file to write")
parser.add_argument("--size", choices=["sd", "small"], help="default: sd on CUDA, small on the CPU")
torch_env.add_arguments(parser)
args = parser.parse_args()

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda" if torch.cuda.is_available() else "cpu"
size = args.size or ("sd" if dev == "cuda" else "small")
out_path = args.out
env = torch_env.prepare(args.threads, args.allow_reference_blas, cuda=dev == "cuda")


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, samples=7, min_sample_ms=30):
    fn(); sync()
    t0 = time.perf_counter(); fn(); sync()
    once = max((time.perf_counter() - t0) * 1e3, 0.01)
    reps = max(1, min(200, math.ceil(min_sample_ms / once)))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3 / reps)
    return statistics.median(times)


def rnd(*shape):
    return torch.randn(*shape, device=dev)


def matmul(m, n, k):
    a, b = rnd(m, k), rnd(k, n)
    return "matmul", f"{m}×{n}×{k}", 2 * m * n * k, "GFLOP/s", lambda: a @ b


def conv(batch, cin, cout, hw, k):
    x, w, b = rnd(batch, cin, hw, hw), rnd(cout, cin, k, k), rnd(cout)
    return "conv2d", f"{batch}×{cin}×{hw}² → {cout}, {k}×{k}", 2 * batch * cout * hw * hw * cin * k * k, "GFLOP/s", lambda: F.conv2d(x, w, b, padding=(k - 1) // 2)


def attention(bh, l, d, causal):
    q, k, v = rnd(1, bh, l, d), rnd(1, bh, l, d), rnd(1, bh, l, d)
    if hasattr(F, "scaled_dot_product_attention"):
        fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    else:  # torch < 2.0: the attention CLIP's and diffusers' plain-torch paths run
        mask = torch.ones(l, l, dtype=torch.bool, device=dev).triu(1) if causal else None
        fn = lambda: (((q @ k.transpose(-1, -2)) / math.sqrt(d)).masked_fill(mask, float("-inf")) if causal
                      else (q @ k.transpose(-1, -2)) / math.sqrt(d)).softmax(-1) @ v
    return "attention", f"{bh} heads × {l} tokens × {d}{' causal' if causal else ''}", (2 if causal else 4) * bh * l * l * d, "GFLOP/s", fn


def group_norm(batch, c, hw):
    x, w, b = rnd(batch, c, hw, hw), rnd(c), rnd(c)
    return "groupNorm", f"{batch}×{c}×{hw}², 32 groups", 2 * 4 * batch * c * hw * hw, "GB/s", lambda: F.silu(F.group_norm(x, 32, w, b))


SD = [lambda: matmul(4096, 320, 320), lambda: matmul(4096, 1280, 1280), lambda: matmul(77, 3072, 768), lambda: matmul(4096, 4096, 4096),
      lambda: conv(2, 320, 320, 64, 3), lambda: conv(2, 640, 640, 32, 3), lambda: conv(2, 1280, 1280, 16, 3), lambda: conv(2, 320, 320, 64, 1),
      lambda: conv(1, 512, 512, 128, 3), lambda: conv(1, 256, 256, 256, 3),
      lambda: attention(16, 4096, 40, False), lambda: attention(12, 77, 64, True),
      lambda: group_norm(2, 320, 64), lambda: group_norm(1, 256, 256)]
# SD and CLIP shapes a 2-core CPU finishes: the attention and MLP matmuls of SD's UNet at 64² latents (4096 tokens)
# and of CLIP (77 text tokens, ViT-L/14's 257 patches), convolutions at SD's channel counts on smaller maps, and
# attention as the text encoder (77, causal), the reward's ViT (257) and the UNet's first block (4096, d 40, 1 head
# of 8) run it.
SMALL = [lambda: matmul(4096, 320, 320), lambda: matmul(77, 768, 768), lambda: matmul(77, 3072, 768),
         lambda: matmul(257, 1024, 1024), lambda: matmul(512, 512, 512),
         lambda: conv(1, 320, 320, 32, 3), lambda: conv(1, 640, 640, 16, 3), lambda: conv(1, 320, 320, 32, 1),
         lambda: attention(12, 77, 64, True), lambda: attention(16, 257, 64, False), lambda: attention(1, 4096, 40, False),
         lambda: group_norm(1, 320, 64)]

rows = []
name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
print(f"PyTorch {torch.__version__} on {name}, f32 (TF32 off), {size} shapes")
print(torch_env.describe(env))
if env["warning"]:
    print(f"WARNING: {env['warning']}")
for make in SD if size == "sd" else SMALL:
    with torch.no_grad():
        family, shape, work, unit, fn = make()
        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        ms = median_ms(fn)
        peak = torch.cuda.max_memory_allocated() / 2**20 if dev == "cuda" else None
    rate = work / (ms * 1e-3) / 1e9
    rows.append(dict(family=family, shape=shape, medianMs=ms, rate=rate, unit=unit, peakMiB=peak))
    print(f"{family:<10} {shape:<34} {ms:10.3f} ms  {rate:12.1f} {unit}  " + (f"{peak:8.1f} MiB" if peak is not None else ""))
    del fn
doc = dict(torch=torch.__version__, device=name, shapes=size, env=env, rows=rows)
if out_path:
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2)
