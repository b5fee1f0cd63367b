/** Seeded parameter initialisation (PyTorch's defaults), computed on the CPU so it is identical everywhere. */
import { affine } from "../ops/elementwise.ts";
import { rand } from "../ops/random.ts";
import { Tensor, type DType } from "../tensor/tensor.ts";

/** A small seeded generator (mulberry32); `next()` is uniform in [0, 1). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(this.s ^ (this.s >>> 15), this.s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(n: number, bound: number): Float32Array {
    return Float32Array.from({ length: n }, () => (this.next() * 2 - 1) * bound);
  }
  normal(n: number, std = 1): Float32Array {
    return Float32Array.from(
      { length: n },
      () => std * Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next()),
    );
  }
}

/**
 * How new parameters are filled: "cpu" (seeded, identical everywhere; the default), "gpu" (seeded Philox on
 * the device: fast for SD-sized random models in benchmarks) or "none" (left as allocated: for models whose
 * weights are loaded right after construction, where initialising 1 G parameters would be wasted work).
 */
export type InitMode = "cpu" | "gpu" | "none";
let mode: InitMode = "cpu";
let gpuStream = 0;

export function withInitMode<T>(m: InitMode, build: () => T): T {
  const prev = mode;
  mode = m;
  try {
    return build();
  } finally {
    mode = prev;
  }
}

let dtype: DType = "f32";

/**
 * Builds modules whose parameters are stored as `d`: "f16" for frozen weights at half the memory (diffusers'
 * `torch_dtype=torch.float16` for the parts that are not trained). Uninitialised parameters are allocated as f16
 * directly, so loading a model never holds its f32 copy.
 */
export function withParamDtype<T>(d: DType, build: () => T): T {
  const prev = dtype;
  dtype = d;
  try {
    return build();
  } finally {
    dtype = prev;
  }
}

export const paramDtype = (): DType => dtype;

/** U(−1/√fan_in, 1/√fan_in): what nn.Linear and nn.Conv2d use for weights and biases. */
export function uniformInit(rng: Rng, shape: readonly number[], fanIn: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1),
    bound = 1 / Math.sqrt(fanIn);
  if (mode === "none") return Tensor.empty(shape, false, dtype);
  if (mode === "gpu") {
    const u = rand(shape, rng.next() * 2 ** 32, gpuStream);
    gpuStream += n;
    const t = affine(u, 2 * bound, -bound);
    u.dispose();
    return t;
  }
  return Tensor.from(rng.uniform(n, bound), shape);
}

export const onesInit = (shape: readonly number[]) => Tensor.full(shape, 1);
export const zerosInit = (shape: readonly number[]) => Tensor.zeros(shape);
