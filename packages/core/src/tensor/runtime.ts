/**
 * The process-wide runtime that tensors use: one device, its kernel runner and its buffer pool.
 * Ops take no device argument (as in PyTorch); `useDevice` binds one before any tensor is made.
 */
import { KernelRunner } from "@textcraftor/webgpu-kernels";
import { openDevice, type Gpu, type OpenDeviceOptions } from "../device/index.ts";
import { envVar } from "../device/open-device.ts";
import { BufferPool } from "./pool.ts";

export interface Runtime { gpu: Gpu; runner: KernelRunner; pool: BufferPool }

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
  if (choice !== "gpu" && choice !== "cpu") throw new Error(`TEXTCRAFTOR_KERNELS is "${choice}": use "gpu" (tiled kernels) or "cpu" (CPU-driver kernels), or unset it to choose by device.`);
  return choice;
}

export function useDevice(gpu: Gpu, { kernels }: { kernels?: KernelFamily } = {}): Runtime {
  const runner = new KernelRunner(gpu.device, gpu.info.limits, gpu.info.features, { cpu: kernelFamily(gpu, kernels) === "cpu" });
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
