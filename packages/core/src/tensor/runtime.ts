/**
 * The process-wide runtime that tensors use: one device, its kernel runner and its buffer pool.
 * Ops take no device argument (as in PyTorch); `useDevice` binds one before any tensor is made.
 */
import { KernelRunner } from "@textcraftor/webgpu-kernels";
import { openDevice, type Gpu, type OpenDeviceOptions } from "../device/index.ts";
import { BufferPool } from "./pool.ts";

export interface Runtime { gpu: Gpu; runner: KernelRunner; pool: BufferPool }

let current: Runtime | null = null;

export function useDevice(gpu: Gpu): Runtime {
  const runner = new KernelRunner(gpu.device, gpu.info.limits, gpu.info.features, { cpu: gpu.info.isCPU });
  current = { gpu, runner, pool: new BufferPool(runner) };
  return current;
}

/** Opens the default device once and binds it (convenience for scripts and tests). */
export async function initRuntime(options?: OpenDeviceOptions): Promise<Runtime> {
  return current ?? useDevice(await openDevice(options));
}

export function runtime(): Runtime {
  if (!current) throw new Error("No device bound: call `await initRuntime()` (or useDevice(await openDevice())) before making tensors.");
  return current;
}

/** Live and peak bytes of tensor memory, for benchmarks and leak tests. */
export function memoryStats() {
  const { pool } = runtime();
  return { liveBytes: pool.liveBytes, peakBytes: pool.peakBytes, pooledBytes: pool.pooledBytes };
}
