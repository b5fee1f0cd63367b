/**
 * Shared test helpers for kernels: one device per test process, uploads, seeded data, tolerances. The kernels
 * package sits below core, so its tests open their device themselves (Bun's binding) rather than through core.
 */
import { expect } from "bun:test";
import { KernelRunner } from "../src/runner.ts";

let runner: Promise<KernelRunner> | undefined;

/** One runner per test file (Bun runs each file in its own module scope). */
export function getRunner(): Promise<KernelRunner> {
  return (runner ??= openTestDevice().then(
    ({ device, limits }) => new KernelRunner(device, limits, [...device.features].map(String)),
  ));
}

/**
 * The workgroup reductions' two forms (tree; subgroups where the adapter has them), each with its own runner
 * on the shared device, so a test runs both whatever the adapter's default.
 */
let reductionRunners: Promise<{ form: string; r: KernelRunner }[]> | undefined;
export function reductionForms(): Promise<{ form: string; r: KernelRunner }[]> {
  return (reductionRunners ??= getRunner().then((r) =>
    [false, ...(r.features.has("subgroups") ? [true] : [])].map((subgroups) => ({
      form: subgroups ? "subgroups" : "tree",
      r: new KernelRunner(r.device, r.limits, r.features, { subgroups }),
    })),
  ));
}

/** The optional features kernels have variants for, requested when the adapter has them. */
const FEATURES = ["shader-f16", "subgroups", "timestamp-query", "subgroup-size-control"];

async function openTestDevice(): Promise<{ device: GPUDevice; limits: Record<string, number> }> {
  const binding = await import("bun-webgpu");
  await binding.setupGlobals();
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter)
    throw new Error(
      "kernel tests: no WebGPU adapter; run `bash scripts/setup.sh` (it installs a CPU Vulkan driver where none works)",
    );
  // bun-webgpu rejects a partial requiredLimits ("Value must be between 0 and 0"): pass every numeric limit.
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const value = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof value === "number") limits[key] = value;
  }
  const requiredFeatures = FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  return { device: await adapter.requestDevice({ requiredFeatures, requiredLimits: limits }), limits };
}

export function upload(r: KernelRunner, data: Float32Array | Uint32Array | Int32Array): GPUBuffer {
  const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
  const buf = r.device.createBuffer({
    size,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  r.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
  return buf;
}

export function empty(r: KernelRunner, length: number): GPUBuffer {
  return r.device.createBuffer({
    size: Math.max(16, Math.ceil((length * 4) / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
}

export const download = (r: KernelRunner, buf: GPUBuffer, length: number) => r.readF32(buf, length);

/** Deterministic uniform(-scale, scale) data from mulberry32, the generator core's Rng also uses. */
export function random(length: number, seed = 1, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  });
}

/** ‖a − b‖ / max(‖b‖, tiny): the relative error used across the project's numeric tests. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5, what = "result") {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(actual[i]!) && Number.isFinite(expected[i]!))
      throw new Error(`${what}[${i}] = ${actual[i]} but expected ${expected[i]}`);
  }
  const err = relError(actual, expected);
  if (!(err <= tol)) throw new Error(`${what}: relative error ${err.toExponential(3)} > ${tol}`);
}
