/** Seeded parameter initialisation (PyTorch's defaults), computed on the CPU so it is identical everywhere. */
import { Tensor } from "../tensor/tensor.ts";

/** A small seeded generator (mulberry32); `next()` is uniform in [0, 1). */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
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
    return Float32Array.from({ length: n }, () => std * Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next()));
  }
}

/** U(−1/√fan_in, 1/√fan_in): what nn.Linear and nn.Conv2d use for weights and biases. */
export function uniformInit(rng: Rng, shape: readonly number[], fanIn: number): Tensor {
  return Tensor.from(rng.uniform(shape.reduce((a, b) => a * b, 1), 1 / Math.sqrt(fanIn)), shape);
}

export const onesInit = (shape: readonly number[]) => Tensor.full(shape, 1);
export const zerosInit = (shape: readonly number[]) => Tensor.zeros(shape);
