/** Seeded random tensors from the counter-based Philox generator: the same numbers on every device. */
import * as K from "@textcraftor/webgpu-kernels";
import { runtime } from "../tensor/runtime.ts";
import { Tensor } from "../tensor/tensor.ts";

/** Standard normal samples; `offset` continues one seed's stream (draw n, then n more at offset n). */
export function randn(shape: readonly number[], seed: number, offset = 0): Tensor {
  const out = Tensor.empty(shape);
  K.randomNormal(runtime().runner, out.buffer, { n: out.size, seed, offset });
  return out;
}

export function rand(shape: readonly number[], seed: number, offset = 0): Tensor {
  const out = Tensor.empty(shape);
  K.randomUniform(runtime().runner, out.buffer, { n: out.size, seed, offset });
  return out;
}
