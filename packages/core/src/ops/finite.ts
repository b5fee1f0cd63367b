/** Whether tensors hold NaN or ±Inf, in one readback however many there are (the trainer skips such steps). */
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
