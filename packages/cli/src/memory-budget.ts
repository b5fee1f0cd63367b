/** What a memory plan is checked against: the user's --memory-budget, or the machine's memory on a CPU adapter. */
import { totalmem } from "node:os";
import type { Gpu } from "@textcraftor/core";

export function memoryBudget(gpu: Gpu, gib?: number): { bytes: number; what: string } | undefined {
  if (gib !== undefined) {
    if (!(gib > 0)) throw new Error(`--memory-budget must be a positive number of GiB (got ${gib})`);
    return { bytes: gib * 2 ** 30, what: "--memory-budget" };
  }
  // A CPU driver keeps its buffers in this machine's memory; a GPU's own memory is not reported by WebGPU.
  return gpu.info.isCPU ? { bytes: totalmem(), what: "this machine's memory, which the CPU adapter uses" } : undefined;
}
