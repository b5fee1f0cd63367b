/**
 * `bun run bench kernels`: the kernels at Stable Diffusion 1.5 shapes (or scaled-down shapes on a CPU
 * adapter, where the full ones take minutes), with median time, throughput and peak tensor memory.
 */
import * as K from "@textcraftor/webgpu-kernels";
import { Tensor, memoryStats, runtime, scopeAsync } from "@textcraftor/core";
import { timeGpu } from "./timing.ts";

export interface BenchRow {
  family: string;
  shape: string;
  medianMs: number;
  rate: number;
  unit: "GFLOP/s" | "GB/s";
  peakMiB: number;
}

interface Case {
  family: string;
  shape: string;
  work: number;
  unit: BenchRow["unit"];
  setup: () => () => void;
}

const rand = (shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.7) * 0.5;
  return Tensor.from(data, shape);
};

function matmulCase(m: number, n: number, k: number): Case {
  return {
    family: "matmul",
    shape: `${m}×${n}×${k}`,
    work: 2 * m * n * k,
    unit: "GFLOP/s",
    setup: () => {
      const a = rand([m, k]),
        b = rand([k, n]),
        c = Tensor.empty([m, n]);
      return () => K.matmul(runtime().runner, a.buffer, b.buffer, c.buffer, { m, n, k });
    },
  };
}

function convCase(batch: number, cin: number, cout: number, hw: number, k: number): Case {
  const o: K.Conv2dShape = {
    batch,
    inChannels: cin,
    outChannels: cout,
    height: hw,
    width: hw,
    kernelH: k,
    kernelW: k,
    padH: (k - 1) / 2,
    padW: (k - 1) / 2,
  };
  return {
    family: "conv2d",
    shape: `${batch}×${cin}×${hw}² → ${cout}, ${k}×${k}`,
    work: 2 * batch * cout * hw * hw * cin * k * k,
    unit: "GFLOP/s",
    setup: () => {
      const x = rand([batch, cin, hw, hw]),
        w = rand([cout, cin, k, k]),
        b = rand([cout]),
        y = Tensor.empty([batch, cout, hw, hw]);
      return () => K.conv2d(runtime().runner, x.buffer, w.buffer, y.buffer, { ...o, bias: b.buffer });
    },
  };
}

function attentionCase(bh: number, l: number, d: number, causal: boolean): Case {
  const work = (causal ? 2 : 4) * bh * l * l * d; // QKᵀ and PV; causal skips about half
  return {
    family: "attention",
    shape: `${bh} heads × ${l} tokens × ${d}${causal ? " causal" : ""}`,
    work,
    unit: "GFLOP/s",
    setup: () => {
      const q = rand([bh, l, d]),
        k = rand([bh, l, d]),
        v = rand([bh, l, d]),
        out = Tensor.empty([bh, l, d]),
        lse = Tensor.empty([bh, l]);
      return () =>
        K.attention(runtime().runner, q.buffer, k.buffer, v.buffer, out.buffer, lse.buffer, {
          bh,
          lq: l,
          lk: l,
          d,
          dv: d,
          causal,
        });
    },
  };
}

function groupNormCase(batch: number, channels: number, hw: number): Case {
  const n = batch * channels * hw * hw;
  return {
    family: "groupNorm",
    shape: `${batch}×${channels}×${hw}², 32 groups`,
    work: 2 * 4 * n,
    unit: "GB/s", // one read, one write
    setup: () => {
      const x = rand([batch, channels, hw, hw]),
        w = rand([channels]),
        b = rand([channels]),
        y = Tensor.empty(x.shape);
      const mean = Tensor.empty([batch * 32]),
        rstd = Tensor.empty([batch * 32]);
      return () =>
        K.groupNorm(runtime().runner, x.buffer, w.buffer, b.buffer, y.buffer, mean.buffer, rstd.buffer, {
          batch,
          channels,
          spatial: hw * hw,
          groups: 32,
          eps: 1e-5,
          silu: true,
        });
    },
  };
}

/** SD 1.5 shapes: UNet at 64×64 latents with CFG batch 2, VAE decoder at 512×512, CLIP text encoder. */
export function sdCases(): Case[] {
  return [
    matmulCase(4096, 320, 320),
    matmulCase(4096, 1280, 1280),
    matmulCase(77, 3072, 768),
    matmulCase(4096, 4096, 4096),
    convCase(2, 320, 320, 64, 3),
    convCase(2, 640, 640, 32, 3),
    convCase(2, 1280, 1280, 16, 3),
    convCase(2, 320, 320, 64, 1),
    convCase(1, 512, 512, 128, 3),
    convCase(1, 256, 256, 256, 3),
    attentionCase(16, 4096, 40, false),
    attentionCase(12, 77, 64, true),
    groupNormCase(2, 320, 64),
    groupNormCase(1, 256, 256),
  ];
}

/**
 * SD and CLIP shapes a 2-core CPU finishes (bench/torch_baseline.py --size small has the same list): the UNet's
 * matmuls at 64² latents (4096 tokens) and CLIP's (77 text tokens, ViT-L/14's 257 patches), convolutions at SD's
 * channel counts on smaller maps, attention as the text encoder (77, causal), the reward's ViT (257) and the
 * UNet's first block (4096 tokens, d 40, one head of 8) run it.
 */
export function smallCases(): Case[] {
  return [
    matmulCase(4096, 320, 320),
    matmulCase(77, 768, 768),
    matmulCase(77, 3072, 768),
    matmulCase(257, 1024, 1024),
    matmulCase(512, 512, 512),
    convCase(1, 320, 320, 32, 3),
    convCase(1, 640, 640, 16, 3),
    convCase(1, 320, 320, 32, 1),
    attentionCase(12, 77, 64, true),
    attentionCase(16, 257, 64, false),
    attentionCase(1, 4096, 40, false),
    groupNormCase(1, 320, 64),
  ];
}

export async function runKernelBench(cases: Case[], onRow?: (row: BenchRow) => void): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const { pool } = runtime();
    pool.trim();
    pool.resetPeak();
    const t = await scopeAsync(() => timeGpu(c.setup()));
    const row: BenchRow = {
      family: c.family,
      shape: c.shape,
      medianMs: t.medianMs,
      rate: c.work / (t.medianMs * 1e-3) / 1e9,
      unit: c.unit,
      peakMiB: memoryStats().peakBytes / 2 ** 20,
    };
    rows.push(row);
    onRow?.(row);
  }
  return rows;
}

export function formatRow(r: BenchRow): string {
  const rate = r.rate >= 1000 ? `${(r.rate / 1000).toFixed(2)} T${r.unit.slice(1)}` : `${r.rate.toFixed(1)} ${r.unit}`;
  return `${r.family.padEnd(10)} ${r.shape.padEnd(34)} ${r.medianMs.toFixed(3).padStart(10)} ms  ${rate.padStart(16)}  ${r.peakMiB.toFixed(1).padStart(8)} MiB`;
}
