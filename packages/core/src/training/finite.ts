/** One readback that tells whether any gradient holds NaN or ±Inf (the trainer then skips the update). */
import * as K from "@textcraftor/webgpu-kernels";
import { runtime } from "../tensor/runtime.ts";
import type { Tensor } from "../tensor/tensor.ts";

export async function anyNonFinite(tensors: readonly Tensor[]): Promise<boolean> {
  const { runner, pool } = runtime();
  const flag = pool.acquire(4);
  runner.commandEncoder().clearBuffer(flag, 0, 4);
  for (const t of tensors) K.hasNonFinite(runner, t.buffer, flag, t.size);
  const value = new Uint32Array(await runner.read(flag, 4))[0]!;
  pool.release(flag);
  return value !== 0;
}

/**
 * Refuses to checkpoint weights that hold NaN or ±Inf: finite gradients can still make them so (an update
 * too large for f32), and such a checkpoint must never be called the last good one.
 */
export async function checkFiniteWeights(params: readonly Tensor[], step: number, lastGood: string | null): Promise<void> {
  if (!(await anyNonFinite(params))) return;
  throw new Error(`after step ${step} the trained weights hold NaN or ±Inf, so they were not saved; ` +
    `the last good checkpoint is ${lastGood ?? "(none yet)"}. Lower the learning rate and resume from that checkpoint or start over.`);
}
