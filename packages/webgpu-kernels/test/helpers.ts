/** Shared test helpers for kernels: one device per test process, uploads, seeded data, tolerances. */
import { expect } from "bun:test";
import { Rng, openDevice } from "@textcraftor/core";
import { KernelRunner } from "../src/runner.ts";

let runner: Promise<KernelRunner> | undefined;

/** One runner per test file (Bun runs each file in its own module scope). */
export function getRunner(): Promise<KernelRunner> {
  return (runner ??= openDevice().then((g) => new KernelRunner(g.device, g.info.limits, g.info.features)));
}

export function upload(r: KernelRunner, data: Float32Array | Uint32Array | Int32Array): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = r.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  r.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
  return buf;
}

export function empty(r: KernelRunner, length: number): GPUBuffer {
  return r.device.createBuffer({ size: Math.max(16, Math.ceil((length * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
}

export const download = (r: KernelRunner, buf: GPUBuffer, length: number) => r.readF32(buf, length);

/** Deterministic uniform(-scale, scale) data: the project's seeded generator (mulberry32). */
export const random = (length: number, seed = 1, scale = 1): Float32Array => new Rng(seed).uniform(length, scale);

/** ‖a − b‖ / max(‖b‖, tiny): the relative error used across the project's numeric tests. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5, what = "result") {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(actual[i]!) && Number.isFinite(expected[i]!)) throw new Error(`${what}[${i}] = ${actual[i]} but expected ${expected[i]}`);
  }
  const err = relError(actual, expected);
  if (!(err <= tol)) throw new Error(`${what}: relative error ${err.toExponential(3)} > ${tol}`);
}
