// The workgroup reductions' two forms side by side on this adapter: the barrier tree, and subgroups (one
// partial per subgroup, two barriers). Each case runs in both forms, interleaved and alternating which goes
// first, so a busy machine slows both alike; the median of the rounds is printed.
//   bun bench/reduction-forms.ts [rounds=5]
import { initRuntime } from "@textcraftor/core";
import * as K from "@textcraftor/webgpu-kernels";

const rounds = Number(process.argv[2] ?? 5);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`reduction-forms: rounds must be a whole number ≥ 1, got ${process.argv[2]}`);
const { runner } = await initRuntime();
if (!runner.features.has("subgroups")) throw new Error("reduction-forms: this adapter has no `subgroups` feature");
const forms = [false, true].map(
  (subgroups) => new K.KernelRunner(runner.device, runner.limits, runner.features, { cpu: runner.cpu, subgroups }),
);

function buffer(r: K.KernelRunner, length: number, seed = 0): GPUBuffer {
  const b = r.device.createBuffer({
    size: Math.max(16, length * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  const data = Float32Array.from({ length }, (_, i) => Math.sin(i * 0.7 + seed) * 0.5);
  r.device.queue.writeBuffer(b, 0, data);
  return b;
}

async function drain(r: K.KernelRunner) {
  r.flush();
  await r.device.queue.onSubmittedWorkDone();
}

/** Median milliseconds of one run, after a compiling run; samples repeat the run to last ≥ 30 ms. */
async function time(r: K.KernelRunner, run: () => void): Promise<number> {
  run();
  await drain(r);
  let start = performance.now();
  run();
  await drain(r);
  const reps = Math.max(1, Math.min(200, Math.ceil(30 / Math.max(performance.now() - start, 0.01))));
  const samples: number[] = [];
  for (let s = 0; s < 5; s++) {
    start = performance.now();
    for (let i = 0; i < reps; i++) run();
    await drain(r);
    samples.push((performance.now() - start) / reps);
  }
  return median(samples);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Case = [name: string, setup: (r: K.KernelRunner) => () => void];

const groupNorm = (batch: number, channels: number, hw: number, backward: boolean): Case => [
  `groupNorm${backward ? " backward" : ""} ${batch}×${channels}×${hw}², 32 groups, SiLU`,
  (r) => {
    const n = batch * channels * hw * hw,
      o = { batch, channels, spatial: hw * hw, groups: 32, eps: 1e-5, silu: true };
    const [x, w, b, gy] = [buffer(r, n), buffer(r, channels, 1), buffer(r, channels, 2), buffer(r, n, 3)];
    const [y, mean, rstd, gx, gw, gb] = [n, batch * 32, batch * 32, n, channels, channels].map((l) => buffer(r, l));
    K.groupNorm(r, x, w, b, y!, mean!, rstd!, o);
    return backward
      ? () => K.groupNormBackward(r, x, w, b, mean!, rstd!, gy, gx!, gw!, gb!, o)
      : () => K.groupNorm(r, x, w, b, y!, mean!, rstd!, o);
  },
];

const layerNorm = (rows: number, cols: number, backward: boolean): Case => [
  `layerNorm${backward ? " backward" : ""} ${rows}×${cols}`,
  (r) => {
    const n = rows * cols,
      o = { rows, cols, eps: 1e-5 };
    const [x, w, b, gy] = [buffer(r, n), buffer(r, cols, 1), buffer(r, cols, 2), buffer(r, n, 3)];
    const [y, mean, rstd, gx, gw, gb] = [n, rows, rows, n, cols, cols].map((l) => buffer(r, l));
    K.layerNorm(r, x, w, b, y!, mean!, rstd!, o);
    return backward
      ? () => K.layerNormBackward(r, x, w, mean!, rstd!, gy, gx!, gw!, gb!, o)
      : () => K.layerNorm(r, x, w, b, y!, mean!, rstd!, o);
  },
];

const softmax = (rows: number, cols: number): Case => [
  `softmax ${rows}×${cols}`,
  (r) => {
    const x = buffer(r, rows * cols),
      y = buffer(r, rows * cols);
    return () => K.softmax(r, x, y, { rows, cols });
  },
];

const sumAll = (n: number): Case => [
  `sumAll ${n}`,
  (r) => {
    const x = buffer(r, n),
      y = buffer(r, 1);
    return () => K.sumAll(r, x, y, n);
  },
];

// SD's resnet norms (the kernels bench's row and a smaller map), CLIP's layer norm (2 prompts × 77 tokens × 768),
// CLIP's attention probabilities (12 heads × 77) and a ViT's (16 heads × 257), a loss over 1e6 values.
const cases: Case[] = [
  groupNorm(1, 320, 64, false),
  groupNorm(1, 320, 64, true),
  groupNorm(2, 320, 32, false),
  layerNorm(154, 768, false),
  layerNorm(154, 768, true),
  softmax(12 * 77, 77),
  softmax(16 * 257, 257),
  sumAll(1_000_000),
];

const results = cases.map(() => [[], []] as number[][]);
for (let round = 0; round < rounds; round++)
  for (const [c, [, setup]] of cases.entries())
    for (const f of round % 2 ? [1, 0] : [0, 1]) results[c]![f]!.push(await time(forms[f]!, setup(forms[f]!)));

console.log(`${runner.cpu ? "CPU adapter" : "GPU"}, ${rounds} rounds, median ms per run`);
console.log(`${"case".padEnd(44)} ${"tree".padStart(9)} ${"subgroups".padStart(10)}  ratio`);
for (const [c, [name]] of cases.entries()) {
  const [tree, sub] = results[c]!.map(median) as [number, number];
  console.log(
    `${name.padEnd(44)} ${tree.toFixed(2).padStart(9)} ${sub.toFixed(2).padStart(10)}  ${(sub / tree).toFixed(2)}`,
  );
}
process.exit(0);
