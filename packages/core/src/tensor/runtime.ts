/**
 * The process-wide runtime that tensors use: one device, its kernel runner and its buffer pool.
 * Ops take no device argument (as in PyTorch); `useDevice` binds one before any tensor is made.
 */
import { KernelRunner, type F16Mode } from "@textcraftor/webgpu-kernels";
import { openDevice, type Gpu, type OpenDeviceOptions } from "../device/index.ts";
import { envVar } from "../device/open-device.ts";
import { BufferPool } from "./pool.ts";

export interface Runtime {
  gpu: Gpu;
  runner: KernelRunner;
  pool: BufferPool;
}

let current: Runtime | null = null;

/** Which kernel variants to run: "cpu" (no workgroup barriers, for CPU drivers) or "gpu" (tiled). */
export type KernelFamily = "gpu" | "cpu";

/**
 * CPU drivers get the kernel variants made for them, GPUs the tiled ones. `kernels` (or TEXTCRAFTOR_KERNELS)
 * overrides the choice: to check the GPU kernels inside whole models on lavapipe, or for a software GPU that
 * reports itself as a discrete one.
 */
export function kernelFamily(gpu: Gpu, kernels?: KernelFamily): KernelFamily {
  const choice = kernels ?? envVar("TEXTCRAFTOR_KERNELS");
  if (choice === undefined || choice === "") return gpu.info.isCPU ? "cpu" : "gpu";
  if (choice !== "gpu" && choice !== "cpu")
    throw new Error(
      `TEXTCRAFTOR_KERNELS is "${choice}": use "gpu" (tiled kernels) or "cpu" (CPU-driver kernels), or unset it to choose by device.`,
    );
  return choice;
}

export interface RuntimeOptions {
  kernels?: KernelFamily;
  /**
   * Bind at most this many bytes of a buffer per binding (or TEXTCRAFTOR_MAX_BINDING_BYTES): larger tensors
   * are bound in windows, as on an adapter with that limit. Tests and users emulating a browser's 128 MiB use it.
   */
  maxBindingBytes?: number;
  /** How kernels read f16 weights: "native" (`shader-f16`) or "packed" (unpack2x16float); by default native where the device has it. */
  f16Reads?: F16Mode;
}

export function useDevice(gpu: Gpu, options: RuntimeOptions = {}): Runtime {
  current = createRuntime(gpu, options);
  return current;
}

/** A runtime for `gpu` without binding it (see `withRuntime`). */
export function createRuntime(gpu: Gpu, { kernels, maxBindingBytes, f16Reads }: RuntimeOptions = {}): Runtime {
  const limits = { ...gpu.info.limits };
  const cap = maxBindingBytes ?? bindingCap();
  if (cap !== undefined) limits.maxStorageBufferBindingSize = Math.min(limits.maxStorageBufferBindingSize ?? cap, cap);
  const runner = new KernelRunner(gpu.device, limits, gpu.info.features, {
    cpu: kernelFamily(gpu, kernels) === "cpu",
    f16Mode: f16Reads,
  });
  const profile = envVar("TEXTCRAFTOR_PROFILE_COMPILE");
  if (profile && gpu.device.label !== "meta") writePipelinesAtExit(runner, profile);
  return { gpu, runner, pool: new BufferPool(runner) };
}

const profiled: KernelRunner[] = [];

/** The part of Node's and Bun's `process` the profile needs (Deno and browsers have none: no profile there). */
interface ExitingProcess {
  on(event: "exit", listener: () => void): void;
  getBuiltinModule(id: "node:fs"): { writeFileSync(file: string, data: string): void };
}

/**
 * TEXTCRAFTOR_PROFILE_COMPILE=FILE.json: at exit, every pipeline the process created (key, WGSL, creation
 * seconds) goes to FILE, for `bun bench/shader-jit.ts FILE` to time each shader's creation and first dispatch.
 */
function writePipelinesAtExit(runner: KernelRunner, file: string) {
  if (profiled.push(runner) > 1) return;
  const process = (globalThis as { process?: ExitingProcess }).process;
  process?.on("exit", () => {
    const pipelines = new Map(profiled.flatMap((r) => r.pipelineSources()).map((p) => [p.key, p]));
    process.getBuiltinModule("node:fs").writeFileSync(file, JSON.stringify([...pipelines.values()], null, 1));
    const seconds = [...pipelines.values()].reduce((s, p) => s + p.createSeconds, 0);
    console.error(`${pipelines.size} pipelines (created in ${seconds.toFixed(1)} s) written to ${file}`);
  });
}

function bindingCap(): number | undefined {
  const v = envVar("TEXTCRAFTOR_MAX_BINDING_BYTES");
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 4096)
    throw new Error(
      `TEXTCRAFTOR_MAX_BINDING_BYTES is "${v}": give a whole number of bytes, at least 4096, or unset it`,
    );
  return n;
}

/**
 * Runs `fn` with `rt` as the current runtime and puts the previous one back afterwards (a memory plan runs
 * whole models on a meta device this way while the real runtime waits).
 */
export async function withRuntime<T>(rt: Runtime, fn: () => Promise<T>): Promise<T> {
  const previous = current;
  current = rt;
  try {
    return await fn();
  } finally {
    current = previous;
  }
}

/** Opens the default device once and binds it (convenience for scripts and tests). */
export async function initRuntime(options?: OpenDeviceOptions): Promise<Runtime> {
  return current ?? useDevice(await openDevice(options));
}

export function runtime(): Runtime {
  if (!current)
    throw new Error(
      "No device bound: call `await initRuntime()` (or useDevice(await openDevice())) before making tensors.",
    );
  return current;
}

/** Live and peak bytes of tensor memory, for benchmarks and leak tests. */
export function memoryStats() {
  const { pool } = runtime();
  return { liveBytes: pool.liveBytes, peakBytes: pool.peakBytes, pooledBytes: pool.pooledBytes };
}
